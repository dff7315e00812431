//! Helpers shared by the end-to-end and handler tests.

use std::path::PathBuf;

use leadflow_core::config::CompiledConfig;

/// The test configuration folder (`tests/config`): reps available around the clock.
pub fn config_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config")
}

pub fn test_config() -> CompiledConfig {
    match leadflow_infra::config_files::load(Some(&config_dir())) {
        Ok(c) => c,
        Err(e) => panic!("the test configuration does not load: {e}"),
    }
}
