//! Configuration: settings, scoring rules, routing, campaigns and templates, parsed from TOML
//! text and compiled once (regexes, time zones, templates) so the hot path does no parsing.
//! Reading the files is the caller's job; this module sees only their text.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::campaign::{Campaign, CompiledCampaign};
use crate::email::Templates;
use crate::error::ConfigError;
use crate::ports::Mailbox;
use crate::routing::{CompiledRouting, RoutingConfig};
use crate::scoring::{CompiledScoring, ScoringRules};
use crate::validate::ValidationSettings;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    /// The From of every email.
    pub sender: Mailbox,
    /// Where people reach this deployment (links in emails).
    pub public_url: String,
    /// The sender's postal address, printed in marketing emails.
    #[serde(default)]
    pub postal_address: String,
    #[serde(default)]
    pub capture: CaptureSettings,
    /// Per-form settings, by the `form` field the page posts.
    #[serde(default)]
    pub forms: BTreeMap<String, FormSettings>,
    #[serde(default)]
    pub validation: ValidationSettings,
    /// Signs unsubscribe links. Never in a file: the loader fills it from the environment
    /// (`LEADFLOW_UNSUBSCRIBE_SECRET`) or, in the local stack, from the data folder.
    #[serde(skip)]
    pub unsubscribe_secret: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CaptureSettings {
    /// Origins allowed to post (CORS and the Origin check); `*` allows any.
    pub allowed_origins: Vec<String>,
    /// A field humans never fill: when it has a value the submission is answered and dropped.
    pub honeypot_field: String,
    pub max_custom_fields: usize,
    pub max_body_bytes: usize,
    /// Hours an Idempotency-Key keeps answering with the same lead id.
    pub idempotency_hours: u32,
}

impl Default for CaptureSettings {
    fn default() -> Self {
        Self {
            allowed_origins: Vec::new(),
            honeypot_field: "_gotcha".into(),
            max_custom_fields: 20,
            max_body_bytes: 16 * 1024,
            idempotency_hours: 24,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct FormSettings {
    /// Thank-you page a plain HTML form is sent to (303) after a submission.
    pub redirect: Option<String>,
}

/// The texts configuration is made of.
#[derive(Debug, Clone, Default)]
pub struct ConfigSources {
    pub settings: String,
    pub scoring: String,
    pub routing: String,
    /// `(file name, text)` of each campaign.
    pub campaigns: Vec<(String, String)>,
    pub assignment_subject: String,
    pub assignment_text: String,
    pub assignment_html: String,
}

#[derive(Debug)]
pub struct CompiledConfig {
    pub settings: Settings,
    pub scoring: CompiledScoring,
    pub routing: CompiledRouting,
    pub campaigns: Vec<CompiledCampaign>,
    pub templates: Templates,
}

fn parse<T: serde::de::DeserializeOwned>(file: &str, text: &str) -> Result<T, ConfigError> {
    toml::from_str(text).map_err(|e| ConfigError::Parse { file: file.to_string(), message: e.to_string() })
}

impl CompiledConfig {
    pub fn compile(src: &ConfigSources) -> Result<Self, ConfigError> {
        let settings: Settings = parse("leadflow.toml", &src.settings)?;
        let scoring: ScoringRules = parse("scoring.toml", &src.scoring)?;
        let routing: RoutingConfig = parse("routing.toml", &src.routing)?;
        let mut campaigns = Vec::new();
        for (file, text) in &src.campaigns {
            let c: Campaign = parse(file, text)?;
            if campaigns.iter().any(|k: &CompiledCampaign| k.campaign.id == c.id) {
                return Err(ConfigError::Invalid {
                    what: file.clone(),
                    message: format!("campaign id {} is used twice", c.id),
                });
            }
            campaigns.push(c.compile()?);
        }
        let templates = Templates::new(src, &campaigns)?;
        Ok(Self { settings, scoring: scoring.compile()?, routing: routing.compile()?, campaigns, templates })
    }

    pub fn campaign(&self, id: &str) -> Option<&CompiledCampaign> {
        self.campaigns.iter().find(|c| c.campaign.id == id)
    }
}
