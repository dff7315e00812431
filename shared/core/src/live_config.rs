//! The configuration in force, as every handler holds it: swapped whole when a document is
//! applied, with the campaign versions enrolled leads still finish.

use std::collections::HashMap;
use std::ops::Deref;
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use chrono::{DateTime, Utc};

use crate::campaign::CompiledCampaign;
use crate::config::CompiledConfig;
use crate::settings::{ConfigSources, Settings};
use crate::signing::SigningKeys;

/// The configuration in force, swappable at run time: documents applied through the admin API
/// replace parts of it (see `leadflow_app::live`).
#[derive(Clone)]
pub struct ConfigHandle(Arc<RwLock<InForce>>, Arc<Mutex<LiveState>>);

enum InForce {
    Compiled(Arc<CompiledConfig>),
    Deferred(Arc<Deferred>),
}

/// Texts compiled the first time the configuration is read. A function that never reads it
/// (ses-events) then links no TOML parser, template engine or regex compiler, and no function
/// spends its cold start compiling.
struct Deferred {
    sources: ConfigSources,
    overrides: SettingsOverrides,
    compiled: OnceLock<Arc<CompiledConfig>>,
    /// The settings alone, for a function that reads nothing else (capture, unsubscribe): so it
    /// links no compiler of rules, campaigns or email templates either.
    settings: OnceLock<Arc<Settings>>,
}

/// The settings in force, and the `leadflow.toml` text they were read from. Applied documents
/// never change them (see `leadflow_app::live`).
pub struct SettingsInForce(Held);

enum Held {
    Whole(Arc<CompiledConfig>),
    Alone(Arc<Deferred>, Arc<Settings>),
}

impl Deref for SettingsInForce {
    type Target = Settings;
    fn deref(&self) -> &Settings {
        match &self.0 {
            Held::Whole(config) => &config.settings,
            Held::Alone(_, settings) => settings,
        }
    }
}

impl SettingsInForce {
    /// `leadflow.toml` as written, for tables the shared settings do not read (capture's
    /// `[thanks]`).
    pub fn text(&self) -> &str {
        match &self.0 {
            Held::Whole(config) => &config.sources.settings,
            Held::Alone(deferred, _) => &deferred.sources.settings,
        }
    }
}

/// The settings a deployment gives outside the configuration files (its environment, its
/// secret), validated by whoever read them, applied over the files' own.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SettingsOverrides {
    pub sender: Option<String>,
    pub allowed_origins: Option<Vec<String>>,
    pub public_url: Option<String>,
    pub signing_keys: Option<SigningKeys>,
}

impl SettingsOverrides {
    /// Safe after compiling: templates read these settings when they render.
    pub fn apply(&self, settings: &mut Settings) {
        if let Some(sender) = &self.sender {
            settings.sender.email.clone_from(sender);
        }
        if let Some(origins) = &self.allowed_origins {
            settings.capture.allowed_origins.clone_from(origins);
        }
        if let Some(public_url) = &self.public_url {
            settings.public_url.clone_from(public_url);
        }
        if let Some(keys) = &self.signing_keys {
            settings.signing_keys = keys.clone();
        }
    }
}

/// What the live configuration was built from, and campaign versions compiled on demand.
#[derive(Debug, Default)]
pub struct LiveState {
    /// When the store's documents were last looked at.
    pub checked_at: Option<DateTime<Utc>>,
    /// `(name, version)` of the documents the current configuration was built with.
    pub applied: Vec<(String, u32)>,
    /// Older campaign versions that enrolled leads still finish.
    pub versions: HashMap<(String, u32), Arc<CompiledCampaign>>,
}

impl ConfigHandle {
    pub fn new(config: CompiledConfig) -> Self {
        Self::holding(InForce::Compiled(Arc::new(config)))
    }

    /// A configuration compiled from `sources` when it is first read, with `overrides` applied.
    /// For texts built into the program, whose compiling a test proves (a text a person gave
    /// is compiled with [`CompiledConfig::compile`], so its error can be shown): if they did not
    /// compile, the first read would panic.
    pub fn deferred(sources: ConfigSources, overrides: SettingsOverrides) -> Self {
        let settings = OnceLock::new();
        Self::holding(InForce::Deferred(Arc::new(Deferred { sources, overrides, compiled: OnceLock::new(), settings })))
    }

    fn holding(in_force: InForce) -> Self {
        Self(Arc::new(RwLock::new(in_force)), Arc::new(Mutex::new(LiveState::default())))
    }

    /// Runs `f` on the live state; a panic elsewhere cannot leave it half-written in a way that
    /// matters (it is a cache), so a poisoned lock is used as it is.
    pub fn live<T>(&self, f: impl FnOnce(&mut LiveState) -> T) -> T {
        match self.1.lock() {
            Ok(mut guard) => f(&mut guard),
            Err(poisoned) => f(&mut poisoned.into_inner()),
        }
    }

    pub fn current(&self) -> Arc<CompiledConfig> {
        match self.in_force() {
            InForce::Compiled(config) => config,
            // Compiled outside the lock; a second reader meanwhile waits for the same result.
            InForce::Deferred(deferred) => Arc::clone(deferred.compiled.get_or_init(|| deferred.compile())),
        }
    }

    /// The settings, without compiling the rest of a deferred configuration.
    pub fn settings(&self) -> SettingsInForce {
        SettingsInForce(match self.in_force() {
            InForce::Compiled(config) => Held::Whole(config),
            InForce::Deferred(deferred) => match deferred.compiled.get() {
                Some(config) => Held::Whole(Arc::clone(config)),
                None => {
                    let settings = Arc::clone(deferred.settings.get_or_init(|| deferred.settings_alone()));
                    Held::Alone(deferred, settings)
                }
            },
        })
    }

    fn in_force(&self) -> InForce {
        match self.0.read() {
            Ok(guard) => guard.share(),
            // A writer panicked mid-swap; the value inside is still a whole one.
            Err(poisoned) => poisoned.into_inner().share(),
        }
    }

    pub fn replace(&self, config: CompiledConfig) {
        let fresh = InForce::Compiled(Arc::new(config));
        match self.0.write() {
            Ok(mut guard) => *guard = fresh,
            Err(poisoned) => *poisoned.into_inner() = fresh,
        }
    }
}

impl InForce {
    fn share(&self) -> Self {
        match self {
            Self::Compiled(config) => Self::Compiled(Arc::clone(config)),
            Self::Deferred(deferred) => Self::Deferred(Arc::clone(deferred)),
        }
    }
}

impl Deferred {
    fn compile(&self) -> Arc<CompiledConfig> {
        let mut config = built_in(CompiledConfig::compile(&self.sources));
        self.overrides.apply(&mut config.settings);
        Arc::new(config)
    }

    fn settings_alone(&self) -> Arc<Settings> {
        let mut settings = built_in(crate::config::settings_of(&self.sources));
        self.overrides.apply(&mut settings);
        Arc::new(settings)
    }
}

/// Only built-in texts are deferred (see `ConfigHandle::deferred`).
fn built_in<T>(compiled: Result<T, crate::error::ConfigError>) -> T {
    match compiled {
        Ok(value) => value,
        Err(e) => panic!("the configuration built into this program does not compile: {e}"),
    }
}
