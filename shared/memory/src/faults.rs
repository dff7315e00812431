//! Faults on purpose, over a whole run: [`WithFaults`] wraps any adapter of a port (the lead
//! store, the stage queue, the mailer, the event bus) and makes its calls fail as the real one
//! fails, at random but reproducibly from a seed ([`FaultPlan`]).
//!
//! Three kinds of fault, each with the error the real adapter gives, all of them retryable:
//!
//! - **failed**: the call never reaches the adapter (a refused connection, throttling);
//! - **timed out**: the call is carried out, then its answer is lost — the hard case, e.g. a
//!   `PutItem` that succeeded or an email SES accepted, which the caller must treat as failed;
//! - **crash after send**: the mail provider accepted an email and the process dies before the
//!   send is recorded. From then on every call of the process fails without reaching anything
//!   ([`Faults::revive`] tells the driver the invocation died, so that it deletes none of the
//!   batch's messages: they come back as SQS gives back a dead invocation's batch).
//!
//! Whether the `n`-th call fails depends only on the seed and `n`, so a driver that makes its
//! calls in a fixed order (one invocation at a time, a settable clock) replays a failing run
//! exactly. [`Faults`] also keeps what a run's checks need ([`audit`]): how many calls of each
//! port failed and how, and every email and event the adapters accepted, each marked with
//! whether its send had been recorded already — the line between the at-least-once window
//! documented on `leadflow_app::send_once` and a real double send.

pub mod audit;
mod driver;
#[cfg(test)]
mod tests;
mod wrappers;

pub use driver::Driver;
pub use wrappers::WithFaults;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use leadflow_core::ports::{DomainEvent, OutgoingEmail};

/// The effect key prefix `leadflow_app::send_once` claims and finishes: an email sent again after
/// its key was finished is outside the at-least-once window. The audit checks every accepted
/// send was finished under this name, so a change there fails loudly. Events have no effect key:
/// `leadflow_app::publish` keeps no record, and their consumers drop repeats by the event's id.
pub const EMAIL_EFFECT_PREFIX: &str = "email:";

/// How often each kind of fault happens.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FaultPlan {
    pub seed: u64,
    /// Of all calls, the share refused before it reaches the adapter.
    pub fail: f64,
    /// Of all calls, the share carried out whose answer is then lost.
    pub time_out: f64,
    /// Of the emails the provider accepts, the share after which the process dies.
    pub crash_after_send: f64,
    /// When not 0, each port's `n`-th call fails and its `2n`-th times out, and the `n`-th
    /// email the provider accepts is followed by a crash, whatever the dice say. A short run
    /// (40 leads on moto make about 30 mailer and bus calls, where one in ten failing leaves a
    /// port without a failure one run in ten) then meets every kind of fault on every port, in
    /// whatever order its calls interleave.
    pub each_kind_by: u64,
}

impl FaultPlan {
    /// Issue 9's plan: one call in ten fails (three in four of those before any work, one in
    /// four after it), and one accepted email in twenty is followed by a crash.
    pub fn one_in_ten(seed: u64) -> Self {
        Self { seed, fail: 0.075, time_out: 0.025, crash_after_send: 0.05, each_kind_by: 5 }
    }

    /// No fault at all: the run as it goes when everything works, for comparison.
    pub fn none() -> Self {
        Self { seed: 0, fail: 0.0, time_out: 0.0, crash_after_send: 0.0, each_kind_by: 0 }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Port {
    Store,
    Queue,
    Mailer,
    Bus,
}

impl Port {
    pub const ALL: [Port; 4] = [Port::Store, Port::Queue, Port::Mailer, Port::Bus];

    pub fn as_str(self) -> &'static str {
        match self {
            Port::Store => "store",
            Port::Queue => "queue",
            Port::Mailer => "mailer",
            Port::Bus => "bus",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Fault {
    Failed,
    TimedOut,
    CrashAfterSend,
    /// A call the dead process made after its crash: refused, nothing reached.
    AfterCrash,
}

/// Calls and faults so far, per port.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    pub calls: BTreeMap<Port, u64>,
    pub faults: BTreeMap<(Port, Fault), u64>,
}

impl Tally {
    pub fn calls(&self, port: Port) -> u64 {
        self.calls.get(&port).copied().unwrap_or(0)
    }

    pub fn faults(&self, port: Port, fault: Fault) -> u64 {
        self.faults.get(&(port, fault)).copied().unwrap_or(0)
    }

    pub fn total(&self, fault: Fault) -> u64 {
        Port::ALL.iter().map(|p| self.faults(*p, fault)).sum()
    }

    /// Adds another run's figures (a run made of several deployments).
    pub fn add(&mut self, other: &Tally) {
        for (port, n) in &other.calls {
            *self.calls.entry(*port).or_insert(0) += n;
        }
        for (key, n) in &other.faults {
            *self.faults.entry(*key).or_insert(0) += n;
        }
    }
}

impl fmt::Display for Tally {
    /// A Markdown table: one row per port.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "| port | calls | failed | timed out (done, answer lost) | crash after send | refused after a crash |"
        )?;
        writeln!(f, "|---|---:|---:|---:|---:|---:|")?;
        for port in Port::ALL {
            writeln!(
                f,
                "| {} | {} | {} | {} | {} | {} |",
                port.as_str(),
                self.calls(port),
                self.faults(port, Fault::Failed),
                self.faults(port, Fault::TimedOut),
                self.faults(port, Fault::CrashAfterSend),
                self.faults(port, Fault::AfterCrash),
            )?;
        }
        Ok(())
    }
}

/// What the provider (or the bus) accepted under one key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Accepted {
    /// Times the adapter accepted it: more than one is a duplicate.
    pub times: u32,
    /// Of those, times it was accepted although its send had been recorded before: a duplicate
    /// outside the at-least-once window.
    pub after_record: u32,
    /// The lead it is about (an email's `lead_id` tag; an event's `lead_id` detail).
    pub lead_id: Option<String>,
    pub recipient: Option<String>,
}

/// Why a send was not recorded when it was accepted: what a repeat of it is owed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Unrecorded {
    /// The process died right after the provider accepted it.
    CrashAfterSend,
    /// The provider accepted it and its answer was lost (a timeout): the sender released it.
    AnswerLost,
    /// Accepted, answered, and then the store refused the write that records it.
    RecordNotWritten,
    /// Accepted again with no fault to explain it: a defect, even inside the window.
    Unexplained,
    /// An event published again: events keep no record, so any redelivery of the message that
    /// published it publishes it again (its consumers drop the repeat by its id).
    Republished,
    /// Accepted again after it was recorded: outside the window, a defect.
    AfterRecord,
}

impl Unrecorded {
    pub fn as_str(self) -> &'static str {
        match self {
            Unrecorded::CrashAfterSend => "crash after the send",
            Unrecorded::AnswerLost => "the provider's answer lost",
            Unrecorded::RecordNotWritten => "the record's write refused",
            Unrecorded::Unexplained => "no fault to explain it",
            Unrecorded::Republished => "a redelivery (events keep no record)",
            Unrecorded::AfterRecord => "after the send was recorded",
        }
    }
}

#[derive(Default)]
struct Ledger {
    tally: Tally,
    emails: BTreeMap<String, Accepted>,
    events: BTreeMap<String, Accepted>,
    /// Effect keys whose `finish_effect` was carried out.
    finished: HashSet<String>,
    /// Effect keys accepted and not recorded, and why not.
    pending: HashMap<String, Unrecorded>,
    /// Repeats of emails (`"email"`) and events (`"event"`), by what they are owed to.
    repeats: BTreeMap<(&'static str, Unrecorded), u64>,
}

impl Ledger {
    /// One more acceptance of `key` (an email's key or an event's id); `why` says whether it is
    /// left unrecorded at once (and why).
    fn accept(&mut self, kind: &'static str, key: &str, why: Option<Unrecorded>) -> &mut Accepted {
        let is_email = kind == "email";
        // Events are never finished, so an event's key here only ever holds why it is pending.
        let effect = if is_email { format!("{EMAIL_EFFECT_PREFIX}{key}") } else { format!("event:{key}") };
        let after_record = self.finished.contains(&effect);
        let books = if is_email { &mut self.emails } else { &mut self.events };
        let entry = books.entry(key.to_string()).or_default();
        entry.times += 1;
        if entry.times > 1 {
            let owed_to = if after_record {
                entry.after_record += 1;
                Unrecorded::AfterRecord
            } else {
                let fallback = if is_email { Unrecorded::Unexplained } else { Unrecorded::Republished };
                self.pending.get(&effect).copied().unwrap_or(fallback)
            };
            *self.repeats.entry((kind, owed_to)).or_insert(0) += 1;
        }
        match why {
            Some(why) => self.pending.insert(effect, why),
            None => self.pending.remove(&effect),
        };
        entry
    }
}

/// The dice and the books of one run, shared by every wrapped adapter of the run's process.
pub struct Faults {
    plan: FaultPlan,
    draws: AtomicU64,
    /// Emails the provider accepted, for [`FaultPlan::each_kind_by`].
    sends: AtomicU64,
    dead: AtomicBool,
    /// The outage is over: calls are counted, none fails.
    calm: AtomicBool,
    ledger: Mutex<Ledger>,
}

enum Decision {
    Pass,
    Fail,
    TimeOut,
    Dead,
}

impl Faults {
    pub fn new(plan: FaultPlan) -> Arc<Self> {
        Arc::new(Self {
            plan,
            draws: AtomicU64::new(0),
            sends: AtomicU64::new(0),
            dead: AtomicBool::new(false),
            calm: AtomicBool::new(false),
            ledger: Mutex::default(),
        })
    }

    pub fn plan(&self) -> FaultPlan {
        self.plan
    }

    pub fn wrap<T>(self: &Arc<Self>, inner: T) -> WithFaults<T> {
        crate::gated::Gated { inner, gate: Arc::clone(self) }
    }

    /// Ends the outage: from now on no call fails (an operator redrives the dead letters then).
    pub fn calm_down(&self) {
        self.calm.store(true, Ordering::SeqCst);
    }

    /// Whether the process died since the last call; a new process takes over either way (the
    /// driver's next invocation).
    pub fn revive(&self) -> bool {
        self.dead.swap(false, Ordering::SeqCst)
    }

    pub fn tally(&self) -> Tally {
        self.books(|l| l.tally.clone())
    }

    /// Every email the mailer accepted, by key.
    pub fn emails(&self) -> BTreeMap<String, Accepted> {
        self.books(|l| l.emails.clone())
    }

    /// Every event the bus accepted, by id.
    pub fn events(&self) -> BTreeMap<String, Accepted> {
        self.books(|l| l.events.clone())
    }

    /// Repeated emails (`"email"`) or events (`"event"`), by what each repeat is owed to.
    pub fn repeats(&self, kind: &str) -> BTreeMap<Unrecorded, u64> {
        self.books(|l| l.repeats.iter().filter(|((k, _), _)| *k == kind).map(|((_, why), n)| (*why, *n)).collect())
    }

    /// Whether `finish_effect(key)` was carried out.
    pub fn finished(&self, key: &str) -> bool {
        self.books(|l| l.finished.contains(key))
    }

    fn books<T>(&self, f: impl FnOnce(&mut Ledger) -> T) -> T {
        // A panicking test thread cannot leave the books half-written in a way that matters.
        match self.ledger.lock() {
            Ok(mut g) => f(&mut g),
            Err(poisoned) => f(&mut poisoned.into_inner()),
        }
    }

    /// The next number in `[0, 1)` of the seed's sequence (SplitMix64 of the draw's index).
    fn draw(&self) -> f64 {
        let n = self.draws.fetch_add(1, Ordering::SeqCst);
        let mut z = self.plan.seed.wrapping_add(n.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }

    fn decide(&self, port: Port) -> Decision {
        let dead = self.dead.load(Ordering::SeqCst);
        let calm = self.calm.load(Ordering::SeqCst);
        let x = if dead || calm { 1.0 } else { self.draw() };
        let every = self.plan.each_kind_by;
        // Counting the call and choosing its fault under one lock: the port's `n`-th call is
        // one call even when several run at once.
        self.books(|l| {
            let calls = l.tally.calls.entry(port).or_insert(0);
            *calls += 1;
            let nth = *calls;
            let (decision, fault) = if dead {
                (Decision::Dead, Some(Fault::AfterCrash))
            } else if calm {
                (Decision::Pass, None)
            } else if (every > 0 && nth == every) || x < self.plan.fail {
                (Decision::Fail, Some(Fault::Failed))
            } else if (every > 0 && nth == 2 * every) || x < self.plan.fail + self.plan.time_out {
                (Decision::TimeOut, Some(Fault::TimedOut))
            } else {
                (Decision::Pass, None)
            };
            if let Some(fault) = fault {
                *l.tally.faults.entry((port, fault)).or_insert(0) += 1;
            }
            decision
        })
    }

    /// After the provider accepted an email: whether the process dies now.
    fn crashes_after_send(&self) -> bool {
        if self.calm.load(Ordering::SeqCst) {
            return false;
        }
        let nth = self.sends.fetch_add(1, Ordering::SeqCst) + 1;
        let every = self.plan.each_kind_by;
        if self.draw() >= self.plan.crash_after_send && !(every > 0 && nth == every) {
            return false;
        }
        self.books(|l| *l.tally.faults.entry((Port::Mailer, Fault::CrashAfterSend)).or_insert(0) += 1);
        self.dead.store(true, Ordering::SeqCst);
        true
    }

    fn accepted_email(&self, email: &OutgoingEmail, why: Option<Unrecorded>) {
        let lead_id = email.tags.iter().find(|(k, _)| k == "lead_id").map(|(_, v)| v.clone());
        self.books(|l| {
            let entry = l.accept("email", &email.key, why);
            entry.lead_id = lead_id;
            entry.recipient = Some(email.to.email.clone());
        });
    }

    fn accepted_events(&self, events: &[DomainEvent], why: Option<Unrecorded>) {
        self.books(|l| {
            for event in events {
                let entry = l.accept("event", &event.id, why);
                entry.lead_id = event.detail["lead_id"].as_str().map(str::to_string);
            }
        });
    }

    fn record_not_written(&self, key: &str) {
        self.books(|l| l.pending.insert(key.to_string(), Unrecorded::RecordNotWritten));
    }

    fn finished_effect(&self, key: &str) {
        self.books(|l| {
            l.pending.remove(key);
            l.finished.insert(key.to_string())
        });
    }
}
