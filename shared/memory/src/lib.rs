//! In-memory adapters: the fakes that handler tests run on. They keep the same conditional-write
//! semantics as the real stores, so a test of a handler's idempotency means something.

pub mod faults;
pub mod faulty;
pub mod fixtures;

pub use faulty::{Crash, FaultyStore};

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::future::{Ready, ready};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

use chrono::{DateTime, Duration, Utc};
use leadflow_core::erasure::is_erased;
use leadflow_core::error::{BusError, MailError, QueueError, StoreError};
use leadflow_core::funnel::LeadFacts;
use leadflow_core::model::{
    Activity, Document, Enrollment, EnrollmentState, Lead, LeadId, RepId, SalesStatus, Suppression, TeamCursor,
};
use leadflow_core::normalize::email_key;
use leadflow_core::ports::{
    AssignOutcome, AssignmentWrite, Clock, CreateOutcome, DomainEvent, EffectClaim, EnrollmentPage, EventBus,
    FactsPage, IdempotencyClaim, LeadPage, LeadStore, Mailer, OutgoingEmail, Stage, StageQueue, SuppressionPage,
    SuppressionPosition, WriteOutcome,
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

impl LeadStore for MemoryStore {
    fn claim_idempotency_key(
        &self,
        key: &str,
        lead_id: LeadId,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> impl Future<Output = Result<IdempotencyClaim, StoreError>> + Send {
        let key = key.to_string();
        self.with(move |s| match s.idempotency.get(&key) {
            Some((id, exp)) if *exp > now => IdempotencyClaim::Seen(*id),
            _ => {
                s.idempotency.insert(key, (lead_id, expires_at));
                IdempotencyClaim::Claimed
            }
        })
    }

    fn create_lead(
        &self,
        lead: &Lead,
        trail: &[Activity],
    ) -> impl Future<Output = Result<CreateOutcome, StoreError>> + Send {
        self.with(|s| {
            if s.leads.contains_key(&lead.id) {
                return CreateOutcome::AlreadyExists;
            }
            if lead.is_valid() {
                let key = email_key(&lead.contact.email);
                if let Some(existing) = s.email_keys.get(&key) {
                    return CreateOutcome::EmailTaken(*existing);
                }
                s.email_keys.insert(key, lead.id);
            }
            s.leads.insert(lead.id, lead.clone());
            s.write_trail(trail);
            CreateOutcome::Created
        })
    }

    fn update_lead(
        &self,
        lead: &Lead,
        expected: u64,
        trail: &[Activity],
    ) -> impl Future<Output = Result<WriteOutcome, StoreError>> + Send {
        self.with(|s| match s.leads.get_mut(&lead.id) {
            Some(stored) if stored.version == expected => {
                *stored = lead.clone();
                stored.version = expected + 1;
                s.write_trail(trail);
                WriteOutcome::Written
            }
            _ => WriteOutcome::VersionConflict,
        })
    }

    fn record_alias(&self, alias: LeadId, into: LeadId) -> impl Future<Output = Result<bool, StoreError>> + Send {
        self.with(|s| {
            if let std::collections::hash_map::Entry::Vacant(slot) = s.aliases.entry(alias) {
                slot.insert(into);
                true
            } else {
                false
            }
        })
    }

    fn resolve_lead(&self, id: LeadId) -> impl Future<Output = Result<Option<LeadId>, StoreError>> + Send {
        self.with(|s| if s.leads.contains_key(&id) { Some(id) } else { s.aliases.get(&id).copied() })
    }

    fn get_lead(&self, id: LeadId) -> impl Future<Output = Result<Option<Lead>, StoreError>> + Send {
        self.with(|s| s.leads.get(&id).cloned())
    }

    fn find_by_email_key(&self, key: &str) -> impl Future<Output = Result<Option<LeadId>, StoreError>> + Send {
        self.with(|s| s.email_keys.get(key).copied())
    }

    fn record_activity(&self, a: &Activity) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.with(|s| {
            s.activities.entry((a.lead_id, a.id.clone())).or_insert_with(|| a.clone());
        })
    }

    fn activities(&self, lead_id: LeadId) -> impl Future<Output = Result<Vec<Activity>, StoreError>> + Send {
        self.with(|s| trail_of(s, lead_id))
    }

    fn trails(&self, lead_ids: &[LeadId]) -> impl Future<Output = Result<Vec<Vec<Activity>>, StoreError>> + Send {
        self.with(|s| lead_ids.iter().map(|id| trail_of(s, *id)).collect())
    }

    fn team_cursor(&self, team_id: &str) -> impl Future<Output = Result<TeamCursor, StoreError>> + Send {
        self.with(|s| s.cursors.get(team_id).cloned().unwrap_or_default())
    }

    fn rep_loads(&self) -> impl Future<Output = Result<BTreeMap<RepId, u32>, StoreError>> + Send {
        self.with(|s| {
            let mut loads = BTreeMap::new();
            for lead in s.leads.values() {
                if let Some(owner) = &lead.owner
                    && !matches!(lead.status, SalesStatus::Won | SalesStatus::Lost)
                    && !is_erased(lead)
                {
                    *loads.entry(owner.rep_id.clone()).or_insert(0) += 1;
                }
            }
            loads
        })
    }

    fn assign(&self, w: &AssignmentWrite) -> impl Future<Output = Result<AssignOutcome, StoreError>> + Send {
        self.with(|s| {
            let lead_ok = s.leads.get(&w.lead.id).is_some_and(|l| l.version == w.expected_lead_version);
            let cursor_ok = match &w.team_cursor {
                Some((team, c)) => s.cursors.get(team).map_or(0, |k| k.version) == c.version,
                None => true,
            };
            if !(lead_ok && cursor_ok) {
                return AssignOutcome::Conflict;
            }
            let mut lead = w.lead.clone();
            lead.version = w.expected_lead_version + 1;
            s.leads.insert(lead.id, lead);
            if let Some((team, c)) = &w.team_cursor {
                let mut c = c.clone();
                c.version += 1;
                s.cursors.insert(team.clone(), c);
            }
            s.write_trail(&w.trail);
            AssignOutcome::Assigned
        })
    }

    fn claim_effect(
        &self,
        key: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> impl Future<Output = Result<EffectClaim, StoreError>> + Send {
        let key = key.to_string();
        self.with(move |s| match s.effects.get(&key) {
            Some(Effect::Done(d)) => EffectClaim::Done(d.clone()),
            Some(Effect::Claimed { lease_until: l }) if *l > now => EffectClaim::Busy,
            _ => {
                s.effects.insert(key, Effect::Claimed { lease_until });
                EffectClaim::Claimed
            }
        })
    }

    fn finish_effect(
        &self,
        key: &str,
        detail: &str,
        trail: &[Activity],
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.with(|s| {
            s.effects.insert(key.to_string(), Effect::Done(detail.to_string()));
            s.write_trail(trail);
        })
    }

    fn release_effect(&self, key: &str) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.with(|s| {
            if matches!(s.effects.get(key), Some(Effect::Claimed { .. })) {
                s.effects.remove(key);
            }
        })
    }

    fn enroll(&self, e: &Enrollment, trail: &[Activity]) -> impl Future<Output = Result<bool, StoreError>> + Send {
        self.with(|s| {
            if let std::collections::btree_map::Entry::Vacant(slot) =
                s.enrollments.entry((e.lead_id, e.campaign_id.clone()))
            {
                slot.insert(e.clone());
                s.write_trail(trail);
                true
            } else {
                false
            }
        })
    }

    fn enrollments(&self, lead_id: LeadId) -> impl Future<Output = Result<Vec<Enrollment>, StoreError>> + Send {
        self.with(|s| s.enrollments.values().filter(|e| e.lead_id == lead_id).cloned().collect())
    }

    fn due_enrollments(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Enrollment>, StoreError>> + Send {
        self.with(|s| {
            let mut due: Vec<Enrollment> = s
                .enrollments
                .values()
                .filter(|e| e.state == EnrollmentState::Active && e.next_due_at.is_some_and(|d| d <= now))
                .cloned()
                .collect();
            due.sort_by_key(|e| e.next_due_at);
            due.truncate(limit);
            due
        })
    }

    fn update_enrollment(
        &self,
        e: &Enrollment,
        expected: u64,
        trail: &[Activity],
    ) -> impl Future<Output = Result<WriteOutcome, StoreError>> + Send {
        self.with(|s| match s.enrollments.get_mut(&(e.lead_id, e.campaign_id.clone())) {
            Some(stored) if stored.version == expected => {
                *stored = e.clone();
                stored.version = expected + 1;
                s.write_trail(trail);
                WriteOutcome::Written
            }
            _ => WriteOutcome::VersionConflict,
        })
    }

    fn campaign_enrollments(
        &self,
        campaign_id: &str,
        cursor: Option<String>,
        limit: usize,
    ) -> impl Future<Output = Result<EnrollmentPage, StoreError>> + Send {
        let after = match cursor.map(|c| c.parse::<LeadId>()).transpose() {
            Ok(after) => after,
            Err(_) => {
                return ready(Err(StoreError::Corrupt(
                    "the campaign enrollment cursor is not one this store handed out".into(),
                )));
            }
        };
        let limit = limit.max(1);
        self.with(|s| {
            // Like SQLite's pages: in lead id order, a cursor only when more enrollments follow.
            let mut page: Vec<Enrollment> = s
                .enrollments
                .values()
                .filter(|e| e.campaign_id == campaign_id && after.is_none_or(|a| e.lead_id > a))
                .cloned()
                .collect();
            page.sort_unstable_by_key(|e| e.lead_id);
            let next = if page.len() > limit { page.get(limit - 1).map(|e| e.lead_id.to_string()) } else { None };
            page.truncate(limit);
            EnrollmentPage { enrollments: page, next }
        })
    }

    fn suppress(
        &self,
        entry: &Suppression,
        trail: &[Activity],
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        self.with(|s| {
            let fresh = if let std::collections::hash_map::Entry::Vacant(slot) =
                s.suppressions.entry(entry.email_key.clone())
            {
                slot.insert(entry.clone());
                true
            } else {
                false
            };
            for a in trail {
                s.activities.entry((a.lead_id, a.id.clone())).or_insert_with(|| a.clone());
            }
            fresh
        })
    }

    fn suppression(&self, email_key: &str) -> impl Future<Output = Result<Option<Suppression>, StoreError>> + Send {
        self.with(|s| s.suppressions.get(email_key).cloned())
    }

    fn put_document(&self, doc: &Document) -> impl Future<Output = Result<WriteOutcome, StoreError>> + Send {
        self.with(|s| {
            let latest = latest_version(&s.documents, &doc.name).unwrap_or(0);
            if latest.checked_add(1) == Some(doc.version) {
                s.documents.insert((doc.name.clone(), doc.version), doc.clone());
                WriteOutcome::Written
            } else {
                WriteOutcome::VersionConflict
            }
        })
    }

    fn document(
        &self,
        name: &str,
        version: Option<u32>,
    ) -> impl Future<Output = Result<Option<Document>, StoreError>> + Send {
        self.with(|s| {
            let version = version.or_else(|| latest_version(&s.documents, name))?;
            s.documents.get(&(name.to_string(), version)).cloned()
        })
    }

    fn latest_documents(&self, prefix: &str) -> impl Future<Output = Result<Vec<Document>, StoreError>> + Send {
        self.with(|s| {
            let mut latest: BTreeMap<&str, &Document> = BTreeMap::new();
            for ((name, _), doc) in s.documents.range((prefix.to_string(), 0)..) {
                if !name.starts_with(prefix) {
                    break;
                }
                // Versions ascend within a name: the last one seen is the latest.
                latest.insert(name, doc);
            }
            latest.into_values().cloned().collect()
        })
    }

    fn list_leads(
        &self,
        cursor: Option<String>,
        limit: usize,
    ) -> impl Future<Output = Result<LeadPage, StoreError>> + Send {
        let after = match cursor.map(|c| c.parse::<LeadId>()).transpose() {
            Ok(after) => after,
            Err(_) => {
                return ready(Err(StoreError::Corrupt(
                    "the lead listing cursor is not one this store handed out".into(),
                )));
            }
        };
        let limit = limit.max(1);
        self.with(|s| {
            let mut ids: Vec<LeadId> = s.leads.keys().copied().filter(|id| after.is_none_or(|a| *id > a)).collect();
            ids.sort_unstable();
            // Like SQLite's pages: a cursor only when more leads follow.
            let next = if ids.len() > limit { ids.get(limit - 1).map(LeadId::to_string) } else { None };
            ids.truncate(limit);
            let leads = ids.iter().filter_map(|id| s.leads.get(id).cloned()).collect();
            LeadPage { leads, next }
        })
    }

    /// The leads in range by id, the cursor being the last id handed out, as `list_leads`.
    fn funnel_facts(
        &self,
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
        cursor: Option<String>,
        limit: usize,
    ) -> impl Future<Output = Result<FactsPage, StoreError>> + Send {
        let after = match cursor.map(|c| c.parse::<LeadId>()).transpose() {
            Ok(after) => after,
            Err(_) => {
                return ready(Err(StoreError::Corrupt("the funnel cursor is not one this store handed out".into())));
            }
        };
        let limit = limit.max(1);
        self.with(|s| {
            let mut facts: Vec<LeadFacts> = s
                .leads
                .values()
                .filter(|l| after.is_none_or(|a| l.id > a))
                .map(LeadFacts::of)
                .filter(|f| f.in_range(since, until))
                .collect();
            facts.sort_unstable_by_key(|f| f.id);
            let next = if facts.len() > limit { facts.get(limit - 1).map(|f| f.id.to_string()) } else { None };
            facts.truncate(limit);
            FactsPage { facts, next }
        })
    }

    fn open_leads_of(
        &self,
        rep_id: &str,
        cursor: Option<String>,
        limit: usize,
    ) -> impl Future<Output = Result<LeadPage, StoreError>> + Send {
        let before = match cursor.map(|c| c.parse::<LeadId>()).transpose() {
            Ok(before) => before,
            Err(_) => {
                return ready(Err(StoreError::Corrupt("the open-lead cursor is not one this store handed out".into())));
            }
        };
        let limit = limit.max(1);
        self.with(|s| {
            let mut open: Vec<&Lead> = s
                .leads
                .values()
                .filter(|l| l.owner.as_ref().is_some_and(|o| o.rep_id == rep_id))
                .filter(|l| !matches!(l.status, SalesStatus::Won | SalesStatus::Lost) && !is_erased(l))
                .filter(|l| before.is_none_or(|b| l.id < b))
                .collect();
            open.sort_unstable_by_key(|l| std::cmp::Reverse(l.id));
            // Like SQLite's pages: a cursor only when more leads follow.
            let next = if open.len() > limit { open.get(limit - 1).map(|l| l.id.to_string()) } else { None };
            open.truncate(limit);
            LeadPage { leads: open.into_iter().cloned().collect(), next }
        })
    }

    fn leads_before(
        &self,
        before: Option<LeadId>,
        limit: usize,
    ) -> impl Future<Output = Result<LeadPage, StoreError>> + Send {
        let limit = limit.max(1);
        self.with(|s| {
            let mut recent: Vec<&Lead> =
                s.leads.values().filter(|l| before.is_none_or(|b| l.id < b) && !is_erased(l)).collect();
            recent.sort_unstable_by_key(|l| std::cmp::Reverse(l.id));
            // Like SQLite's pages: a cursor only when more leads follow.
            let next = if recent.len() > limit { recent.get(limit - 1).map(|l| l.id.to_string()) } else { None };
            recent.truncate(limit);
            LeadPage { leads: recent.into_iter().cloned().collect(), next }
        })
    }

    fn suppressions(
        &self,
        cursor: Option<String>,
        limit: usize,
    ) -> impl Future<Output = Result<SuppressionPage, StoreError>> + Send {
        let after = match cursor.map(|c| SuppressionPosition::parse(&c)) {
            None => None,
            Some(Some(position)) => Some(position),
            Some(None) => {
                return ready(Err(StoreError::Corrupt(
                    "the suppression list cursor is not one this store handed out".into(),
                )));
            }
        };
        let limit = limit.max(1);
        self.with(|s| {
            let mut entries: Vec<(SuppressionPosition, &Suppression)> = s
                .suppressions
                .values()
                .map(|e| (SuppressionPosition::of(e), e))
                .filter(|(position, _)| after.as_ref().is_none_or(|a| position < a))
                .collect();
            entries.sort_unstable_by(|a, b| b.0.cmp(&a.0));
            let next = if entries.len() > limit { entries.get(limit - 1).map(|(p, _)| p.cursor()) } else { None };
            entries.truncate(limit);
            SuppressionPage { entries: entries.into_iter().map(|(_, e)| e.clone()).collect(), next }
        })
    }

    fn due_slas(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<LeadId>, StoreError>> + Send {
        self.with(|s| {
            let mut due: Vec<(DateTime<Utc>, LeadId)> = s
                .leads
                .values()
                .filter(|l| l.is_valid() && l.status == SalesStatus::New && !is_erased(l))
                .filter_map(|l| l.owner.as_ref().map(|o| (o.sla_due_at, l.id)))
                .filter(|(at, _)| *at <= now)
                .collect();
            due.sort_unstable();
            due.into_iter().take(limit).map(|(_, id)| id).collect()
        })
    }

    fn erase_lead(
        &self,
        tombstone: &Lead,
        email_key: Option<&str>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.with(|s| {
            // As in SQLite: one version past the stored one, even if a write came in since the
            // tombstone was made; a lead that is not there is not created.
            if let Some(stored) = s.leads.get_mut(&tombstone.id) {
                let version = stored.version.saturating_add(1);
                *stored = tombstone.clone();
                stored.version = version;
            }
            if let Some(key) = email_key
                && s.email_keys.get(key) == Some(&tombstone.id)
            {
                s.email_keys.remove(key);
            }
            s.activities.retain(|(lead, _), _| *lead != tombstone.id);
        })
    }
}

fn latest_version(documents: &BTreeMap<(String, u32), Document>, name: &str) -> Option<u32> {
    documents.range((name.to_string(), 0)..=(name.to_string(), u32::MAX)).next_back().map(|((_, v), _)| *v)
}

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
/// handlers answer then (503, retry later), never a 500.
pub struct DownStore;

fn down<T>() -> Result<T, StoreError> {
    Err(StoreError::Unavailable("connection refused".into()))
}

impl LeadStore for DownStore {
    async fn claim_idempotency_key(
        &self,
        _: &str,
        _: LeadId,
        _: DateTime<Utc>,
        _: DateTime<Utc>,
    ) -> Result<IdempotencyClaim, StoreError> {
        down()
    }
    async fn create_lead(&self, _: &Lead, _: &[Activity]) -> Result<CreateOutcome, StoreError> {
        down()
    }
    async fn update_lead(&self, _: &Lead, _: u64, _: &[Activity]) -> Result<WriteOutcome, StoreError> {
        down()
    }
    async fn record_alias(&self, _: LeadId, _: LeadId) -> Result<bool, StoreError> {
        down()
    }
    async fn resolve_lead(&self, _: LeadId) -> Result<Option<LeadId>, StoreError> {
        down()
    }
    async fn get_lead(&self, _: LeadId) -> Result<Option<Lead>, StoreError> {
        down()
    }
    async fn find_by_email_key(&self, _: &str) -> Result<Option<LeadId>, StoreError> {
        down()
    }
    async fn record_activity(&self, _: &Activity) -> Result<(), StoreError> {
        down()
    }
    async fn activities(&self, _: LeadId) -> Result<Vec<Activity>, StoreError> {
        down()
    }
    async fn trails(&self, _: &[LeadId]) -> Result<Vec<Vec<Activity>>, StoreError> {
        down()
    }
    async fn team_cursor(&self, _: &str) -> Result<TeamCursor, StoreError> {
        down()
    }
    async fn rep_loads(&self) -> Result<BTreeMap<RepId, u32>, StoreError> {
        down()
    }
    async fn assign(&self, _: &AssignmentWrite) -> Result<AssignOutcome, StoreError> {
        down()
    }
    async fn claim_effect(&self, _: &str, _: DateTime<Utc>, _: DateTime<Utc>) -> Result<EffectClaim, StoreError> {
        down()
    }
    async fn finish_effect(&self, _: &str, _: &str, _: &[Activity]) -> Result<(), StoreError> {
        down()
    }
    async fn release_effect(&self, _: &str) -> Result<(), StoreError> {
        down()
    }
    async fn enroll(&self, _: &Enrollment, _: &[Activity]) -> Result<bool, StoreError> {
        down()
    }
    async fn enrollments(&self, _: LeadId) -> Result<Vec<Enrollment>, StoreError> {
        down()
    }
    async fn due_enrollments(&self, _: DateTime<Utc>, _: usize) -> Result<Vec<Enrollment>, StoreError> {
        down()
    }
    async fn update_enrollment(&self, _: &Enrollment, _: u64, _: &[Activity]) -> Result<WriteOutcome, StoreError> {
        down()
    }
    async fn campaign_enrollments(&self, _: &str, _: Option<String>, _: usize) -> Result<EnrollmentPage, StoreError> {
        down()
    }
    async fn suppress(&self, _: &Suppression, _: &[Activity]) -> Result<bool, StoreError> {
        down()
    }
    async fn suppression(&self, _: &str) -> Result<Option<Suppression>, StoreError> {
        down()
    }
    async fn put_document(&self, _: &Document) -> Result<WriteOutcome, StoreError> {
        down()
    }
    async fn document(&self, _: &str, _: Option<u32>) -> Result<Option<Document>, StoreError> {
        down()
    }
    async fn latest_documents(&self, _: &str) -> Result<Vec<Document>, StoreError> {
        down()
    }
    async fn list_leads(&self, _: Option<String>, _: usize) -> Result<LeadPage, StoreError> {
        down()
    }
    async fn open_leads_of(&self, _: &str, _: Option<String>, _: usize) -> Result<LeadPage, StoreError> {
        down()
    }
    async fn funnel_facts(
        &self,
        _: Option<DateTime<Utc>>,
        _: Option<DateTime<Utc>>,
        _: Option<String>,
        _: usize,
    ) -> Result<FactsPage, StoreError> {
        down()
    }
    async fn leads_before(&self, _: Option<LeadId>, _: usize) -> Result<LeadPage, StoreError> {
        down()
    }
    async fn suppressions(&self, _: Option<String>, _: usize) -> Result<SuppressionPage, StoreError> {
        down()
    }
    async fn due_slas(&self, _: DateTime<Utc>, _: usize) -> Result<Vec<LeadId>, StoreError> {
        down()
    }
    async fn erase_lead(&self, _: &Lead, _: Option<&str>) -> Result<(), StoreError> {
        down()
    }
}
