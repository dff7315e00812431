//! The `leadflow` binary's library: the local stack (`leadflow dev`) and configuration loading.

pub mod cli;
pub mod client;
pub mod dev;

pub use leadflow_app::config_files;
