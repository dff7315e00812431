//! The admin API's errors: the one error shape of every surface, `leadflow_app`'s [`ApiError`]
//! (`{"error": {"code", "message", "field"}}`), and the admin-specific ways into it.
//!
//! A failed store or stage answers 503 through the `From` conversions, which live with the
//! type in `leadflow_app` (Rust allows them nowhere else) so that `?` works in every handler.

use leadflow_core::error::ConfigError;

pub use leadflow_app::api_error::ApiError;

/// A configuration that does not compile, with the field named as well as `what` allows.
pub fn config_error(e: &ConfigError) -> ApiError {
    match e {
        ConfigError::Parse { file, message } => ApiError::invalid(file.clone(), message.clone()),
        ConfigError::Invalid { what, message } => ApiError::invalid(field_of(what), format!("{what}: {message}")),
    }
}

/// The field path a `ConfigError`'s `what` stands for: `rep anna` → `reps.anna`,
/// `fit rule senior` → `fit.senior`, anything else as it is.
fn field_of(what: &str) -> String {
    for (prefix, field) in [
        ("rep ", "reps"),
        ("team ", "teams"),
        ("fit rule ", "fit"),
        ("behaviour rule ", "behaviour"),
        ("campaign ", "campaign"),
    ] {
        if let Some(id) = what.strip_prefix(prefix) {
            return format!("{field}.{id}");
        }
    }
    match what {
        "scoring thresholds" => "thresholds".into(),
        other => other.to_string(),
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
