//! Helpers shared by the end-to-end and handler tests.

pub mod browser;
pub mod harness;

use std::path::PathBuf;

use leadflow_core::config::CompiledConfig;

/// The test configuration folder (`tests/config`): reps available around the clock.
pub fn config_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config")
}

/// Signs the unsubscribe links of handler tests.
pub const UNSUBSCRIBE_SECRET: &str = "test-secret-of-the-handler-tests-0123456789";

pub fn test_config() -> CompiledConfig {
    match leadflow_infra::config_files::load(Some(&config_dir())) {
        Ok(mut c) => {
            c.settings.signing_keys = UNSUBSCRIBE_SECRET.into();
            c
        }
        Err(e) => panic!("the test configuration does not load: {e}"),
    }
}
