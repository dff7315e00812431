//! The `leadflow` binary's library: the local stack (`leadflow dev`) and configuration loading.

pub mod cli;
pub mod config_files;
pub mod dev;
