//! A store that fails one write on purpose, to show that a handler leaves nothing half done
//! whatever moment the process dies.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

use leadflow_core::error::StoreError;
use leadflow_core::ports::LeadStore;

use crate::gated::{Access, Gated, StoreCall, StoreGate};

/// When the chosen write fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Crash {
    /// The write never reaches the store: a process that died just before it.
    Before,
    /// The write is stored, then the caller gets an error: a process that died just after the
    /// commit, before its next step. The queue delivers the message again, as it would then.
    After,
}

/// Wraps a store and fails its `n`-th write (1-based; reads are not counted), once.
pub type FaultyStore<S> = Gated<S, NthWrite>;

/// The gate of a [`FaultyStore`]: counts writes, fails the chosen one.
pub struct NthWrite {
    writes: AtomicU32,
    fault: Option<(u32, Crash)>,
    /// The write that failed, by method name.
    failed: Mutex<Option<&'static str>>,
}

impl<S: LeadStore> FaultyStore<S> {
    /// A store that fails nothing: it counts the writes, to learn how many a scenario makes.
    pub fn counting(inner: S) -> Self {
        Gated { inner, gate: NthWrite { writes: AtomicU32::new(0), fault: None, failed: Mutex::new(None) } }
    }

    pub fn failing(inner: S, nth_write: u32, crash: Crash) -> Self {
        Gated {
            inner,
            gate: NthWrite { writes: AtomicU32::new(0), fault: Some((nth_write, crash)), failed: Mutex::new(None) },
        }
    }

    /// How many writes were asked of the store so far, the failed one included.
    pub fn writes(&self) -> u32 {
        self.gate.writes.load(Ordering::SeqCst)
    }

    /// The method whose call failed, once it has.
    pub fn failed(&self) -> Option<&'static str> {
        self.gate.failed.lock().map(|g| *g).unwrap_or(None)
    }
}

impl StoreGate for NthWrite {
    async fn pass<T: Send, F: Future<Output = Result<T, StoreError>> + Send>(
        &self,
        call: StoreCall<'_>,
        run: impl FnOnce() -> F + Send,
    ) -> Result<T, StoreError> {
        if call.access == Access::Read {
            return run().await;
        }
        let n = self.writes.fetch_add(1, Ordering::SeqCst) + 1;
        let crash = match self.fault {
            Some((at, crash)) if at == n => crash,
            _ => return run().await,
        };
        if let Ok(mut failed) = self.failed.lock() {
            *failed = Some(call.method);
        }
        let method = call.method;
        let died = || Err(StoreError::Unavailable(format!("injected crash {crash:?} {method}")));
        match crash {
            Crash::Before => died(),
            Crash::After => {
                run().await?;
                died()
            }
        }
    }
}
