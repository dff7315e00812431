//! The configuration in force, as every handler holds it: swapped whole when a document is
//! applied, with the campaign versions enrolled leads still finish.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use chrono::{DateTime, Utc};

use crate::campaign::CompiledCampaign;
use crate::config::CompiledConfig;

/// The configuration in force, swappable at run time: documents applied through the admin API
/// replace parts of it (see `leadflow_app::live`).
#[derive(Clone)]
pub struct ConfigHandle(Arc<RwLock<Arc<CompiledConfig>>>, Arc<Mutex<LiveState>>);

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
        Self(Arc::new(RwLock::new(Arc::new(config))), Arc::new(Mutex::new(LiveState::default())))
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
        match self.0.read() {
            Ok(guard) => Arc::clone(&guard),
            // A writer panicked mid-swap; the Arc inside is still a whole config.
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    pub fn replace(&self, config: CompiledConfig) {
        let fresh = Arc::new(config);
        match self.0.write() {
            Ok(mut guard) => *guard = fresh,
            Err(poisoned) => *poisoned.into_inner() = fresh,
        }
    }
}
