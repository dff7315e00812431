//! Configuration: settings, scoring rules, routing, campaigns and templates, parsed from TOML
//! text and compiled once (regexes, time zones, templates) so the hot path does no parsing.
//! Reading the files is the caller's job; this module sees only their text.

use std::sync::Arc;

use crate::campaign::{Campaign, CompiledCampaign};
use crate::email::Templates;
use crate::error::ConfigError;
use crate::routing::{CompiledRouting, RoutingConfig};
use crate::scoring::{CompiledScoring, ScoringRules};
// The settings are their own module (below campaigns and templates, which render with them);
// named here too, where configuration is looked for.
pub use crate::settings::{
    CaptchaProvider, CaptchaSettings, CaptureSettings, ConfigSources, ConsoleSettings, FormSettings, NurtureSettings,
    Settings,
};

#[derive(Debug)]
pub struct CompiledConfig {
    pub settings: Settings,
    pub scoring: CompiledScoring,
    pub routing: CompiledRouting,
    /// The latest version of every campaign: the files' own, replaced by applied documents.
    pub campaigns: Vec<Arc<CompiledCampaign>>,
    pub templates: Templates,
    /// The texts this was compiled from, so that a document applied through the admin API can
    /// replace one of them and the whole be compiled again.
    pub sources: ConfigSources,
}

fn from_toml<T: serde::de::DeserializeOwned>(file: &str, text: &str) -> Result<T, ConfigError> {
    toml::from_str(text).map_err(|e| ConfigError::Parse { file: file.to_string(), message: e.to_string() })
}

fn from_json<T: serde::de::DeserializeOwned>(file: &str, text: &str) -> Result<T, ConfigError> {
    serde_json::from_str(text).map_err(|e| ConfigError::Parse { file: file.to_string(), message: e.to_string() })
}

/// How a configuration's texts are read. The files are TOML. The Lambda functions that never
/// show or edit them carry the built-in files as JSON made from the TOML when they are built
/// (`shared/app/build.rs`), and read them with `JSON`: a function that never names `TOML` links
/// no TOML parser, about 140 KB of its zip (docs/performance.md, "Function size").
/// Function pointers rather than a flag, so that the choice is made where the sources are made,
/// and a program links the readers it names, used or not.
#[derive(Clone, Copy)]
pub struct SourceReader {
    settings: fn(&str, &str) -> Result<Settings, ConfigError>,
    /// `None` for a program that reads its settings alone (capture, validate, unsubscribe,
    /// ses-events): it links no reader of the scoring, routing or campaign files, 35–80 KB of
    /// its zip, and compiling its whole configuration is refused.
    rules: Option<RulesReader>,
}

#[derive(Clone, Copy)]
struct RulesReader {
    scoring: fn(&str, &str) -> Result<ScoringRules, ConfigError>,
    routing: fn(&str, &str) -> Result<RoutingConfig, ConfigError>,
    campaign: fn(&str, &str) -> Result<Campaign, ConfigError>,
}

impl SourceReader {
    pub const TOML: Self = Self {
        settings: from_toml,
        rules: Some(RulesReader { scoring: from_toml, routing: from_toml, campaign: from_toml }),
    };
    pub const JSON: Self = Self {
        settings: from_json,
        rules: Some(RulesReader { scoring: from_json, routing: from_json, campaign: from_json }),
    };
    pub const SETTINGS_ALONE_TOML: Self = Self { settings: from_toml, rules: None };
    pub const SETTINGS_ALONE_JSON: Self = Self { settings: from_json, rules: None };
}

impl Default for SourceReader {
    fn default() -> Self {
        Self::TOML
    }
}

impl std::fmt::Debug for SourceReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SourceReader")
    }
}

/// Documents applied through the admin API, in force over the files' own.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub routing: Option<RoutingConfig>,
    pub scoring: Option<ScoringRules>,
    /// The latest version of each applied campaign; it replaces a file campaign of the same id.
    pub campaigns: Vec<Campaign>,
}

/// The settings of `src` alone, checked as [`CompiledConfig::compile`] checks them.
pub fn settings_of(src: &ConfigSources) -> Result<Settings, ConfigError> {
    let settings = (src.reader.settings)("leadflow.toml", &src.settings)?;
    if let Some(captcha) = &settings.capture.captcha {
        captcha.check()?;
    }
    Ok(settings)
}

impl CompiledConfig {
    pub fn compile(src: &ConfigSources) -> Result<Self, ConfigError> {
        Self::compile_with(src, &Overrides::default())
    }

    pub fn compile_with(src: &ConfigSources, overrides: &Overrides) -> Result<Self, ConfigError> {
        let Some(reader) = src.reader.rules else {
            return Err(ConfigError::Invalid {
                what: "the configuration".into(),
                message: "this program was built to read its settings alone, without the readers of the scoring, \
                          routing and campaign files"
                    .into(),
            });
        };
        let settings = settings_of(src)?;
        let scoring: ScoringRules = match &overrides.scoring {
            Some(s) => s.clone(),
            None => (reader.scoring)("scoring.toml", &src.scoring)?,
        };
        let routing: RoutingConfig = match &overrides.routing {
            Some(r) => r.clone(),
            None => (reader.routing)("routing.toml", &src.routing)?,
        };
        let mut campaigns = Vec::new();
        for (file, text) in &src.campaigns {
            let c = (reader.campaign)(file, text)?;
            if c.version != 1 {
                return Err(ConfigError::Invalid {
                    what: format!("{file}: version"),
                    message: "a campaign file is version 1; newer versions are applied through the admin API \
                              (`leadflow campaign apply`)"
                        .into(),
                });
            }
            let c = c.compile().map_err(|e| match e {
                ConfigError::Invalid { what, message } => {
                    ConfigError::Invalid { what: format!("{file}: {what}"), message }
                }
                other => other,
            })?;
            if campaigns.iter().any(|k: &Arc<CompiledCampaign>| k.campaign.id == c.campaign.id) {
                return Err(ConfigError::Invalid {
                    what: file.clone(),
                    message: format!("campaign id {} is used twice", c.campaign.id),
                });
            }
            campaigns.push(Arc::new(c));
        }
        for applied in &overrides.campaigns {
            let compiled = Arc::new(applied.compile()?);
            match campaigns.iter_mut().find(|k| k.campaign.id == applied.id) {
                Some(slot) => *slot = compiled,
                None => campaigns.push(compiled),
            }
        }
        let templates = Templates::new(src)?;
        Ok(Self {
            settings,
            scoring: scoring.compile()?,
            routing: routing.compile()?,
            campaigns,
            templates,
            sources: src.clone(),
        })
    }

    pub fn campaign(&self, id: &str) -> Option<&Arc<CompiledCampaign>> {
        self.campaigns.iter().find(|c| c.campaign.id == id)
    }
}
