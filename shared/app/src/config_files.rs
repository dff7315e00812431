//! Reads a configuration folder into [`ConfigSources`]. The folder `shared/app/config/` (the
//! sample configuration, in this crate so that it builds alone) is built into every binary: `leadflow dev` uses it as its sample, and each Lambda function deploys with it.

use std::path::{Path, PathBuf};

use leadflow_core::config::{CompiledConfig, ConfigSources};

#[derive(Debug, thiserror::Error)]
pub enum ConfigLoadError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("configuration in {dir}: {source}")]
    Invalid { dir: String, source: leadflow_core::error::ConfigError },
}

/// The sample configuration of `shared/app/config/`.
pub fn sample() -> ConfigSources {
    ConfigSources {
        settings: include_str!("../config/leadflow.toml").into(),
        scoring: include_str!("../config/scoring.toml").into(),
        routing: include_str!("../config/routing.toml").into(),
        campaigns: vec![("campaigns/welcome.toml".into(), include_str!("../config/campaigns/welcome.toml").into())],
        assignment_subject: include_str!("../config/templates/assignment.subject").into(),
        assignment_text: include_str!("../config/templates/assignment.txt").into(),
        assignment_html: include_str!("../config/templates/assignment.html").into(),
    }
}

fn read(path: PathBuf) -> Result<String, ConfigLoadError> {
    std::fs::read_to_string(&path).map_err(|source| ConfigLoadError::Read { path, source })
}

/// Reads `leadflow.toml`, `scoring.toml`, `routing.toml`, `campaigns/*.toml` and
/// `templates/assignment.{subject,txt,html}` from `dir`.
pub fn read_dir(dir: &Path) -> Result<ConfigSources, ConfigLoadError> {
    let mut campaigns = Vec::new();
    let campaign_dir = dir.join("campaigns");
    if campaign_dir.is_dir() {
        let entries = std::fs::read_dir(&campaign_dir)
            .map_err(|source| ConfigLoadError::Read { path: campaign_dir.clone(), source })?;
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        paths.sort();
        for p in paths {
            let name = format!("campaigns/{}", p.file_name().map(|n| n.to_string_lossy()).unwrap_or_default());
            campaigns.push((name, read(p)?));
        }
    }
    Ok(ConfigSources {
        settings: read(dir.join("leadflow.toml"))?,
        scoring: read(dir.join("scoring.toml"))?,
        routing: read(dir.join("routing.toml"))?,
        campaigns,
        assignment_subject: read(dir.join("templates/assignment.subject"))?,
        assignment_text: read(dir.join("templates/assignment.txt"))?,
        assignment_html: read(dir.join("templates/assignment.html"))?,
    })
}

/// The compiled configuration of `dir`, or of the built-in sample.
pub fn load(dir: Option<&Path>) -> Result<CompiledConfig, ConfigLoadError> {
    let (sources, name) = match dir {
        Some(d) => (read_dir(d)?, d.display().to_string()),
        None => (sample(), "the built-in sample".to_string()),
    };
    CompiledConfig::compile(&sources).map_err(|source| ConfigLoadError::Invalid { dir: name, source })
}
