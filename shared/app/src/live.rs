//! The configuration in force: the files built into the binary, with the documents applied
//! through the admin API (campaigns, routing, scoring) in place of theirs. Every function looks
//! at the store's documents at most every [`REFRESH_EVERY`], so an applied change reaches every
//! function within that time; the process that applied it refreshes at once.

use std::sync::Arc;

use chrono::Duration;
use leadflow_core::campaign::{Campaign, CompiledCampaign};
use leadflow_core::config::{CompiledConfig, Overrides};
use leadflow_core::model::Document;
use leadflow_core::ports::{Clock, Ports};
use tracing::warn;

use crate::StageError;
use leadflow_core::ports::Documents;

pub const REFRESH_EVERY: Duration = Duration::seconds(30);

/// Document names.
pub const ROUTING: &str = "routing";
pub const SCORING: &str = "scoring";
pub const CAMPAIGN_PREFIX: &str = "campaign:";

pub fn campaign_document(id: &str) -> String {
    format!("{CAMPAIGN_PREFIX}{id}")
}

/// The configuration in force, refreshed from the store's documents when the last look is older
/// than [`REFRESH_EVERY`] (or `force`). A store that cannot be read, or a document that does not
/// compile, leaves the configuration as it was: the pipeline keeps running on the last good one.
pub async fn refresh<P: Ports>(ports: &P, force: bool) -> Arc<CompiledConfig> {
    let handle = ports.config_handle();
    let now = ports.clock().now();
    let fresh = handle.live(|s| s.checked_at.is_some_and(|at| now - at < REFRESH_EVERY && now >= at));
    if fresh && !force {
        return handle.current();
    }
    let docs = match ports.store().latest_documents("").await {
        Ok(d) => d,
        Err(e) => {
            warn!(error = %e, "applied documents could not be read; keeping the configuration in force");
            return handle.current();
        }
    };
    let applied: Vec<(String, u32)> = docs.iter().map(|d| (d.name.clone(), d.version)).collect();
    if handle.live(|s| s.applied == applied) {
        handle.live(|s| s.checked_at = Some(now));
        return handle.current();
    }
    let current = handle.current();
    match compile(&current, &docs) {
        Ok(next) => {
            handle.replace(next);
            handle.live(|s| {
                s.applied = applied;
                s.checked_at = Some(now);
            });
        }
        Err(e) => {
            warn!(error = %e, "an applied document does not compile; keeping the configuration in force");
            handle.live(|s| s.checked_at = Some(now));
        }
    }
    handle.current()
}

fn compile(current: &CompiledConfig, docs: &[Document]) -> Result<CompiledConfig, String> {
    let mut overrides = Overrides::default();
    for doc in docs {
        let what = format!("document {} v{}", doc.name, doc.version);
        if doc.name == ROUTING {
            overrides.routing = Some(serde_json::from_str(&doc.body).map_err(|e| format!("{what}: {e}"))?);
        } else if doc.name == SCORING {
            overrides.scoring = Some(serde_json::from_str(&doc.body).map_err(|e| format!("{what}: {e}"))?);
        } else if doc.name.starts_with(CAMPAIGN_PREFIX) {
            overrides.campaigns.push(campaign_of(doc)?);
        }
    }
    let mut next = CompiledConfig::compile_with(&current.sources, &overrides).map_err(|e| e.to_string())?;
    // Documents replace rules and campaigns only. The settings in force may have been set after
    // the files were compiled (on Lambda the sender, origins, public URL and signing keys come
    // from the environment and the secret): compiling the files again would lose them, and the
    // first rule change would send every email from the sample's sender.
    next.settings = current.settings.clone();
    Ok(next)
}

/// The campaign a document holds, with the document's version.
pub fn campaign_of(doc: &Document) -> Result<Campaign, String> {
    let mut c: Campaign =
        serde_json::from_str(&doc.body).map_err(|e| format!("document {} v{}: {e}", doc.name, doc.version))?;
    c.version = doc.version;
    Ok(c)
}

/// Version `version` of a campaign, for a lead enrolled in it: the one in force, or an older
/// one read from the store (and kept, since a stored version never changes). `None` when
/// neither the configuration nor the store has it.
pub async fn campaign_version<P: Ports>(
    ports: &P,
    config: &CompiledConfig,
    id: &str,
    version: u32,
) -> Result<Option<Arc<CompiledCampaign>>, StageError> {
    if let Some(c) = config.campaign(id).filter(|c| c.campaign.version == version) {
        return Ok(Some(Arc::clone(c)));
    }
    let handle = ports.config_handle();
    let key = (id.to_string(), version);
    if let Some(c) = handle.live(|s| s.versions.get(&key).cloned()) {
        return Ok(Some(c));
    }
    let Some(doc) = ports.store().document(&campaign_document(id), Some(version)).await? else {
        return Ok(None);
    };
    let compiled = campaign_of(&doc)
        .and_then(|c| c.compile().map_err(|e| e.to_string()))
        .map_err(|e| StageError::Permanent(format!("campaign {id} v{version} cannot be used: {e}")))?;
    let compiled = Arc::new(compiled);
    handle.live(|s| s.versions.insert(key, Arc::clone(&compiled)));
    Ok(Some(compiled))
}

#[cfg(test)]
mod tests {
    use super::*;
    use leadflow_core::live_config::{ConfigHandle, SettingsOverrides};

    #[test]
    fn applying_documents_keeps_the_settings_set_after_start() {
        let mut current = CompiledConfig::compile(&crate::config_files::sample()).unwrap_or_else(|e| panic!("{e}"));
        current.settings.sender.email = "leads@deployed.example".into();
        current.settings.public_url = "https://leads.deployed.example".into();
        current.settings.capture.allowed_origins = vec!["https://www.deployed.example".into()];
        let next = compile(&current, &[]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(next.settings.sender.email, "leads@deployed.example");
        assert_eq!(next.settings.public_url, "https://leads.deployed.example");
        assert_eq!(next.settings.capture.allowed_origins, ["https://www.deployed.example"]);
    }

    fn deployed() -> SettingsOverrides {
        SettingsOverrides {
            sender: Some("leads@deployed.example".into()),
            allowed_origins: Some(vec!["https://www.deployed.example".into()]),
            public_url: Some("https://leads.deployed.example".into()),
            signing_keys: None,
        }
    }

    #[test]
    fn a_deferred_configuration_is_compiled_once_when_first_read_with_the_deployment_settings() {
        let handle = ConfigHandle::deferred(crate::config_files::sample(), deployed());
        let readers: Vec<_> = (0..4)
            .map(|_| {
                let handle = handle.clone();
                std::thread::spawn(move || handle.current())
            })
            .collect();
        let read: Vec<_> =
            readers.into_iter().map(|r| r.join().unwrap_or_else(|_| panic!("a reader panicked"))).collect();
        assert!(read.iter().all(|c| Arc::ptr_eq(c, &read[0])), "every reader gets the one compiled configuration");
        let settings = &read[0].settings;
        assert_eq!(settings.sender.email, "leads@deployed.example");
        assert_eq!(settings.public_url, "https://leads.deployed.example");
        assert_eq!(settings.capture.allowed_origins, ["https://www.deployed.example"]);
        let sample = CompiledConfig::compile(&crate::config_files::sample()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(settings.sender.name, sample.settings.sender.name, "what the deployment does not set stays");
        assert_eq!(read[0].campaigns.len(), sample.campaigns.len());
    }

    #[test]
    fn a_deferred_configuration_is_not_compiled_until_read_and_a_replaced_one_never() {
        let mut broken = crate::config_files::sample();
        broken.scoring = "this is = = not toml".into();
        // Made without compiling: the broken text is not noticed yet.
        let handle = ConfigHandle::deferred(broken.clone(), deployed());
        let read = std::panic::catch_unwind(|| handle.current());
        let message = read.err().and_then(|p| p.downcast_ref::<String>().cloned()).unwrap_or_default();
        assert!(message.contains("does not compile"), "{message:?}");

        let replaced = ConfigHandle::deferred(broken, deployed());
        let sample = CompiledConfig::compile(&crate::config_files::sample()).unwrap_or_else(|e| panic!("{e}"));
        replaced.replace(sample);
        assert_eq!(replaced.current().settings.sender.email, "sales@acme.example");
    }

    #[test]
    fn the_settings_of_a_deferred_configuration_are_read_without_compiling_the_rest() {
        let mut broken = crate::config_files::sample();
        broken.scoring = "this is = = not toml".into();
        let handle = ConfigHandle::deferred(broken.clone(), deployed());
        let settings = handle.settings();
        assert_eq!(settings.sender.email, "leads@deployed.example");
        assert_eq!(settings.capture.allowed_origins, ["https://www.deployed.example"]);
        assert_eq!(
            settings.sender.name.as_deref(),
            Some("Acme Sales"),
            "the file's own where the deployment is silent"
        );
        assert_eq!(settings.text(), broken.settings);
        assert!(std::panic::catch_unwind(|| handle.current()).is_err(), "the rest was never compiled");

        // Once the whole is compiled, the settings are its own, and the same.
        let whole = ConfigHandle::deferred(crate::config_files::sample(), deployed());
        let alone = whole.settings().clone();
        let compiled = whole.current();
        assert_eq!(*whole.settings(), compiled.settings);
        assert_eq!(alone, compiled.settings);
    }
}
