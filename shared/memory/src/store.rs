//! The in-memory lead store: one mutex over maps, with the real stores' conditional-write
//! semantics. Each role of [`leadflow_core::ports::LeadStore`] is in the file of that name.

mod assignments;
mod documents;
mod effects;
mod enrollments;
mod leads;
mod listings;
mod suppressions;
mod trails;

use std::collections::{BTreeMap, HashMap};
use std::future::{Ready, ready};
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use leadflow_core::erasure::is_erased;
use leadflow_core::error::StoreError;
use leadflow_core::funnel::LeadFacts;
use leadflow_core::model::{
    Activity, Document, Enrollment, EnrollmentState, Lead, LeadId, RepId, SalesStatus, Suppression, TeamCursor,
};
use leadflow_core::normalize::email_key;
use leadflow_core::ports::{
    AssignOutcome, AssignmentWrite, CreateOutcome, EffectClaim, EnrollmentPage, FactsPage, IdempotencyClaim, LeadPage,
    SuppressionPage, SuppressionPosition, WriteOutcome,
};

fn poisoned<T>(_: T) -> StoreError {
    StoreError::Unavailable("in-memory store lock poisoned".into())
}

#[derive(Default)]
struct Inner {
    idempotency: HashMap<String, (LeadId, DateTime<Utc>)>,
    leads: HashMap<LeadId, Lead>,
    email_keys: HashMap<String, LeadId>,
    aliases: HashMap<LeadId, LeadId>,
    activities: BTreeMap<(LeadId, String), Activity>,
    cursors: HashMap<String, TeamCursor>,
    effects: HashMap<String, Effect>,
    enrollments: BTreeMap<(LeadId, String), Enrollment>,
    suppressions: HashMap<String, Suppression>,
    /// By name, then version: the last of a name's range is its latest.
    documents: BTreeMap<(String, u32), Document>,
}

impl Inner {
    /// Trail entries ride along with a write and replace an entry of the same id, as in the real
    /// stores.
    fn write_trail(&mut self, trail: &[Activity]) {
        for a in trail {
            self.activities.insert((a.lead_id, a.id.clone()), a.clone());
        }
    }
}

#[derive(Clone)]
enum Effect {
    Claimed { lease_until: DateTime<Utc> },
    Done(String),
}

#[derive(Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> Ready<Result<T, StoreError>> {
        ready(self.inner.lock().map(|mut g| f(&mut g)).map_err(poisoned))
    }

    pub fn lead_count(&self) -> usize {
        self.inner.lock().map(|g| g.leads.len()).unwrap_or(0)
    }

    pub fn all_leads(&self) -> Vec<Lead> {
        self.inner.lock().map(|g| g.leads.values().cloned().collect()).unwrap_or_default()
    }
}

/// A lead's activities, oldest first.
fn trail_of(s: &Inner, lead_id: LeadId) -> Vec<Activity> {
    let mut v: Vec<Activity> = s
        .activities
        .range((lead_id, String::new())..)
        .take_while(|((l, _), _)| *l == lead_id)
        .map(|(_, a)| a.clone())
        .collect();
    v.sort_by(|a, b| a.at.cmp(&b.at).then_with(|| a.id.cmp(&b.id)));
    v
}

fn latest_version(documents: &BTreeMap<(String, u32), Document>, name: &str) -> Option<u32> {
    documents.range((name.to_string(), 0)..=(name.to_string(), u32::MAX)).next_back().map(|((_, v), _)| *v)
}
