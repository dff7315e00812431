//! In-memory adapters: the fakes that handler tests run on. They keep the same conditional-write
//! semantics as the real stores, so a test of a handler's idempotency means something.

pub mod faults;
pub mod faulty;
pub mod fixtures;

pub use faulty::{Crash, FaultyStore};

pub mod gated;
mod store;

pub use gated::{Down, Gated};
pub use store::MemoryStore;

use std::collections::{HashMap, VecDeque};
use std::future::ready;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

use chrono::{DateTime, Duration, Utc};
use leadflow_core::error::{BusError, MailError, QueueError};
use leadflow_core::model::LeadId;
use leadflow_core::ports::{Clock, DomainEvent, EventBus, Mailer, OutgoingEmail, Stage, StageQueue};

/// Records what was sent per stage; tests drain it to feed the next stage.
#[derive(Default)]
pub struct MemoryQueue {
    sent: Mutex<HashMap<Stage, VecDeque<String>>>,
    fail_next: AtomicU32,
}

impl MemoryQueue {
    pub fn new() -> Self {
        Self::default()
    }

    /// Everything sent to `stage` so far, removed from the queue.
    pub fn drain(&self, stage: Stage) -> Vec<String> {
        self.sent.lock().map(|mut g| g.entry(stage).or_default().drain(..).collect()).unwrap_or_default()
    }

    /// Makes the next `n` sends fail as an unreachable queue would.
    pub fn fail_next(&self, n: u32) {
        self.fail_next.store(n, Ordering::SeqCst);
    }
}

impl StageQueue for MemoryQueue {
    fn send(&self, stage: Stage, bodies: &[String]) -> impl Future<Output = Result<(), QueueError>> + Send {
        let failing = self.fail_next.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok();
        ready(if failing {
            Err(QueueError::Unavailable("injected failure".into()))
        } else {
            self.sent
                .lock()
                .map(|mut g| g.entry(stage).or_default().extend(bodies.iter().cloned()))
                .map_err(|_| QueueError::Unavailable("lock poisoned".into()))
        })
    }
}

/// Keeps every email it is asked to send; can be told to throttle.
#[derive(Default)]
pub struct RecordingMailer {
    sent: Mutex<Vec<OutgoingEmail>>,
    throttle_next: AtomicU32,
}

impl RecordingMailer {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn sent(&self) -> Vec<OutgoingEmail> {
        self.sent.lock().map(|g| g.clone()).unwrap_or_default()
    }
    pub fn throttle_next(&self, n: u32) {
        self.throttle_next.store(n, Ordering::SeqCst);
    }
}

impl Mailer for RecordingMailer {
    fn send(
        &self,
        email: &OutgoingEmail,
        _now: DateTime<Utc>,
    ) -> impl Future<Output = Result<String, MailError>> + Send {
        let throttled =
            self.throttle_next.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok();
        ready(if throttled {
            Err(MailError::Throttled("injected throttling".into()))
        } else {
            match self.sent.lock() {
                Ok(mut g) => {
                    g.push(email.clone());
                    Ok(format!("mem-{}", g.len()))
                }
                Err(_) => Err(MailError::Unavailable("lock poisoned".into())),
            }
        })
    }

    /// Drops the recorded emails whose key names the lead, as the outbox deletes their files.
    fn erase(&self, lead_id: LeadId) -> impl Future<Output = Result<usize, MailError>> + Send {
        let needle = lead_id.to_string();
        ready(match self.sent.lock() {
            Ok(mut g) => {
                let before = g.len();
                g.retain(|e| !e.key.contains(&needle));
                Ok(before - g.len())
            }
            Err(_) => Err(MailError::Unavailable("lock poisoned".into())),
        })
    }
}

#[derive(Default)]
pub struct RecordingBus {
    events: Mutex<Vec<DomainEvent>>,
}

impl RecordingBus {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn events(&self) -> Vec<DomainEvent> {
        self.events.lock().map(|g| g.clone()).unwrap_or_default()
    }
}

impl EventBus for RecordingBus {
    fn publish(&self, events: &[DomainEvent]) -> impl Future<Output = Result<(), BusError>> + Send {
        ready(
            self.events
                .lock()
                .map(|mut g| g.extend(events.iter().cloned()))
                .map_err(|_| BusError::Unavailable("lock poisoned".into())),
        )
    }
}

/// A clock tests move by hand.
pub struct SettableClock(Mutex<DateTime<Utc>>);

impl SettableClock {
    pub fn at(t: DateTime<Utc>) -> Self {
        Self(Mutex::new(t))
    }
    pub fn set(&self, t: DateTime<Utc>) {
        if let Ok(mut g) = self.0.lock() {
            *g = t;
        }
    }
    pub fn advance(&self, d: Duration) {
        if let Ok(mut g) = self.0.lock() {
            *g += d;
        }
    }
}

impl Clock for SettableClock {
    fn now(&self) -> DateTime<Utc> {
        self.0.lock().map(|g| *g).unwrap_or_default()
    }
}

/// A store every call of which fails as an unreachable database would: for tests of what the
/// handlers answer then (503, retry later), never a 500. `DownStore::default()`.
pub type DownStore = Gated<MemoryStore, Down>;
