//! Reads a configuration folder into [`ConfigSources`]. The folder `shared/app/config/` (the
//! sample configuration, in this crate so that it builds alone) is built into every binary: `leadflow dev` uses it as its sample, and each Lambda function deploys with it.

use std::path::{Path, PathBuf};

use leadflow_core::config::{CompiledConfig, ConfigSources, SourceReader};

#[derive(Debug, thiserror::Error)]
pub enum ConfigLoadError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("configuration in {dir}: {source}")]
    Invalid { dir: String, source: leadflow_core::error::ConfigError },
}

/// The sample configuration of `shared/app/config/`.
pub fn sample() -> ConfigSources {
    sample_read_by(SourceReader::TOML, TOML_TEXTS)
}

/// The sample configuration as JSON made from its TOML when this crate was built (`build.rs`), for
/// the Lambda functions that never show or edit the files' text: reading it needs no TOML parser.
/// Its texts are not TOML, so nothing may hand them to one (capture reads `[thanks]` from the
/// settings' text, the admin function edits the rules' text: both take the TOML).
pub fn sample_json() -> ConfigSources {
    sample_read_by(SourceReader::JSON, JSON_TEXTS)
}

/// [`sample`] for a program that reads its settings alone (capture): it then links no reader
/// of the rules' and campaigns' files, and compiling the whole is refused.
pub fn sample_settings_alone() -> ConfigSources {
    sample_read_by(SourceReader::SETTINGS_ALONE_TOML, TOML_TEXTS)
}

/// [`sample_json`] for a program that reads its settings alone (validate, unsubscribe,
/// ses-events).
pub fn sample_json_settings_alone() -> ConfigSources {
    sample_read_by(SourceReader::SETTINGS_ALONE_JSON, JSON_TEXTS)
}

const TOML_TEXTS: [&str; 4] = [
    include_str!("../config/leadflow.toml"),
    include_str!("../config/scoring.toml"),
    include_str!("../config/routing.toml"),
    include_str!("../config/campaigns/welcome.toml"),
];

const JSON_TEXTS: [&str; 4] = [
    include_str!(concat!(env!("OUT_DIR"), "/leadflow.json")),
    include_str!(concat!(env!("OUT_DIR"), "/scoring.json")),
    include_str!(concat!(env!("OUT_DIR"), "/routing.json")),
    include_str!(concat!(env!("OUT_DIR"), "/campaigns/welcome.json")),
];

/// The sample with its settings, scoring, routing and welcome campaign as `reader` reads them;
/// the email templates are the same either way.
fn sample_read_by(reader: SourceReader, [settings, scoring, routing, welcome]: [&str; 4]) -> ConfigSources {
    ConfigSources {
        settings: settings.into(),
        scoring: scoring.into(),
        routing: routing.into(),
        campaigns: vec![("campaigns/welcome.toml".into(), welcome.into())],
        assignment_subject: include_str!("../config/templates/assignment.subject").into(),
        assignment_text: include_str!("../config/templates/assignment.txt").into(),
        assignment_html: include_str!("../config/templates/assignment.html").into(),
        reader,
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
        reader: SourceReader::TOML,
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The JSON the build made from the sample's TOML compiles to the same configuration, part
    /// by part (the texts themselves differ, so `sources` is left out).
    #[test]
    fn the_sample_read_as_json_is_the_sample_read_as_toml() {
        let compile = |sources: ConfigSources| CompiledConfig::compile(&sources).unwrap_or_else(|e| panic!("{e}"));
        let (toml, json) = (compile(sample()), compile(sample_json()));
        assert_eq!(json.settings, toml.settings);
        assert_eq!(format!("{:?}", json.scoring), format!("{:?}", toml.scoring));
        // The reps are a hash map, printed in no fixed order: compared on their own, in order.
        assert_eq!(json.routing.reps(), toml.routing.reps());
        let rest = |r: &leadflow_core::routing::CompiledRouting| {
            let debug = format!("{r:?}");
            let (before, _) = debug.split_once("reps: ").unwrap_or_default();
            let (_, after) = debug.split_once(", teams: ").unwrap_or_default();
            format!("{before}{after}")
        };
        assert_eq!(rest(&json.routing), rest(&toml.routing));
        // A compiled campaign's template engine lists its templates in no fixed order: the
        // campaigns as read are compared. The email templates are not translated at all.
        let campaigns =
            |c: &CompiledConfig| c.campaigns.iter().map(|k| format!("{:?}", k.campaign)).collect::<Vec<_>>();
        assert_eq!(campaigns(&json), campaigns(&toml));
        assert_eq!(json.campaigns.len(), 1);
        assert_ne!(json.sources.settings, toml.sources.settings, "the JSON is not the TOML's text");
    }

    /// The settings-alone samples read the same settings, and refuse to compile the rest, saying
    /// why, instead of reading it some other way.
    #[test]
    fn a_sample_for_the_settings_alone_reads_them_and_refuses_the_rest() {
        let whole = CompiledConfig::compile(&sample()).unwrap_or_else(|e| panic!("{e}"));
        for alone in [sample_settings_alone(), sample_json_settings_alone()] {
            let settings = leadflow_core::config::settings_of(&alone).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(settings, whole.settings);
            let refused = CompiledConfig::compile(&alone).map(|_| ()).unwrap_err().to_string();
            assert!(refused.contains("settings alone"), "{refused}");
        }
    }
}
