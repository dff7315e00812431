//! A store that fails one write on purpose, to show that a handler leaves nothing half done
//! whatever moment the process dies.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

use chrono::{DateTime, Utc};
use leadflow_core::error::StoreError;
use leadflow_core::model::{Activity, Document, Enrollment, Lead, LeadId, RepId, Suppression, TeamCursor};
use leadflow_core::ports::{
    AssignOutcome, AssignmentWrite, CreateOutcome, EffectClaim, EnrollmentPage, FactsPage, IdempotencyClaim, LeadPage,
    LeadStore, SuppressionPage, WriteOutcome,
};

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
pub struct FaultyStore<S> {
    inner: S,
    writes: AtomicU32,
    fault: Option<(u32, Crash)>,
    /// The write that failed, by method name.
    failed: Mutex<Option<&'static str>>,
}

impl<S: LeadStore> FaultyStore<S> {
    /// A store that fails nothing: it counts the writes, to learn how many a scenario makes.
    pub fn counting(inner: S) -> Self {
        Self { inner, writes: AtomicU32::new(0), fault: None, failed: Mutex::new(None) }
    }

    pub fn failing(inner: S, nth_write: u32, crash: Crash) -> Self {
        Self { inner, writes: AtomicU32::new(0), fault: Some((nth_write, crash)), failed: Mutex::new(None) }
    }

    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// How many writes were asked of the store so far, the failed one included.
    pub fn writes(&self) -> u32 {
        self.writes.load(Ordering::SeqCst)
    }

    /// The method whose call failed, once it has.
    pub fn failed(&self) -> Option<&'static str> {
        self.failed.lock().map(|g| *g).unwrap_or(None)
    }

    async fn write<T, F: Future<Output = Result<T, StoreError>>>(
        &self,
        method: &'static str,
        run: impl FnOnce() -> F,
    ) -> Result<T, StoreError> {
        let n = self.writes.fetch_add(1, Ordering::SeqCst) + 1;
        let crash = match self.fault {
            Some((at, crash)) if at == n => crash,
            _ => return run().await,
        };
        if let Ok(mut failed) = self.failed.lock() {
            *failed = Some(method);
        }
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

impl<S: LeadStore> LeadStore for FaultyStore<S> {
    async fn claim_idempotency_key(
        &self,
        key: &str,
        lead_id: LeadId,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<IdempotencyClaim, StoreError> {
        self.write("claim_idempotency_key", || self.inner.claim_idempotency_key(key, lead_id, now, expires_at)).await
    }
    async fn create_lead(&self, lead: &Lead, trail: &[Activity]) -> Result<CreateOutcome, StoreError> {
        self.write("create_lead", || self.inner.create_lead(lead, trail)).await
    }
    async fn update_lead(&self, lead: &Lead, expected: u64, trail: &[Activity]) -> Result<WriteOutcome, StoreError> {
        self.write("update_lead", || self.inner.update_lead(lead, expected, trail)).await
    }
    async fn record_alias(&self, alias: LeadId, into: LeadId) -> Result<bool, StoreError> {
        self.write("record_alias", || self.inner.record_alias(alias, into)).await
    }
    async fn resolve_lead(&self, id: LeadId) -> Result<Option<LeadId>, StoreError> {
        self.inner.resolve_lead(id).await
    }
    async fn get_lead(&self, id: LeadId) -> Result<Option<Lead>, StoreError> {
        self.inner.get_lead(id).await
    }
    async fn find_by_email_key(&self, key: &str) -> Result<Option<LeadId>, StoreError> {
        self.inner.find_by_email_key(key).await
    }
    async fn record_activity(&self, activity: &Activity) -> Result<(), StoreError> {
        self.write("record_activity", || self.inner.record_activity(activity)).await
    }
    async fn activities(&self, lead_id: LeadId) -> Result<Vec<Activity>, StoreError> {
        self.inner.activities(lead_id).await
    }
    async fn trails(&self, lead_ids: &[LeadId]) -> Result<Vec<Vec<Activity>>, StoreError> {
        self.inner.trails(lead_ids).await
    }
    async fn team_cursor(&self, team_id: &str) -> Result<TeamCursor, StoreError> {
        self.inner.team_cursor(team_id).await
    }
    async fn rep_loads(&self) -> Result<BTreeMap<RepId, u32>, StoreError> {
        self.inner.rep_loads().await
    }
    async fn assign(&self, write: &AssignmentWrite) -> Result<AssignOutcome, StoreError> {
        self.write("assign", || self.inner.assign(write)).await
    }
    async fn claim_effect(
        &self,
        key: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<EffectClaim, StoreError> {
        self.write("claim_effect", || self.inner.claim_effect(key, now, lease_until)).await
    }
    async fn finish_effect(&self, key: &str, detail: &str, trail: &[Activity]) -> Result<(), StoreError> {
        self.write("finish_effect", || self.inner.finish_effect(key, detail, trail)).await
    }
    async fn release_effect(&self, key: &str) -> Result<(), StoreError> {
        self.write("release_effect", || self.inner.release_effect(key)).await
    }
    async fn enroll(&self, enrollment: &Enrollment, trail: &[Activity]) -> Result<bool, StoreError> {
        self.write("enroll", || self.inner.enroll(enrollment, trail)).await
    }
    async fn enrollments(&self, lead_id: LeadId) -> Result<Vec<Enrollment>, StoreError> {
        self.inner.enrollments(lead_id).await
    }
    async fn due_enrollments(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<Enrollment>, StoreError> {
        self.inner.due_enrollments(now, limit).await
    }
    async fn update_enrollment(
        &self,
        enrollment: &Enrollment,
        expected: u64,
        trail: &[Activity],
    ) -> Result<WriteOutcome, StoreError> {
        self.write("update_enrollment", || self.inner.update_enrollment(enrollment, expected, trail)).await
    }
    async fn campaign_enrollments(
        &self,
        campaign_id: &str,
        cursor: Option<String>,
        limit: usize,
    ) -> Result<EnrollmentPage, StoreError> {
        self.inner.campaign_enrollments(campaign_id, cursor, limit).await
    }
    async fn suppress(&self, entry: &Suppression, trail: &[Activity]) -> Result<bool, StoreError> {
        self.write("suppress", || self.inner.suppress(entry, trail)).await
    }
    async fn suppression(&self, email_key: &str) -> Result<Option<Suppression>, StoreError> {
        self.inner.suppression(email_key).await
    }
    async fn put_document(&self, doc: &Document) -> Result<WriteOutcome, StoreError> {
        self.write("put_document", || self.inner.put_document(doc)).await
    }
    async fn document(&self, name: &str, version: Option<u32>) -> Result<Option<Document>, StoreError> {
        self.inner.document(name, version).await
    }
    async fn latest_documents(&self, prefix: &str) -> Result<Vec<Document>, StoreError> {
        self.inner.latest_documents(prefix).await
    }
    async fn list_leads(&self, cursor: Option<String>, limit: usize) -> Result<LeadPage, StoreError> {
        self.inner.list_leads(cursor, limit).await
    }
    async fn open_leads_of(&self, rep_id: &str, cursor: Option<String>, limit: usize) -> Result<LeadPage, StoreError> {
        self.inner.open_leads_of(rep_id, cursor, limit).await
    }
    async fn funnel_facts(
        &self,
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
        cursor: Option<String>,
        limit: usize,
    ) -> Result<FactsPage, StoreError> {
        self.inner.funnel_facts(since, until, cursor, limit).await
    }
    async fn leads_before(&self, before: Option<LeadId>, limit: usize) -> Result<LeadPage, StoreError> {
        self.inner.leads_before(before, limit).await
    }
    async fn suppressions(&self, cursor: Option<String>, limit: usize) -> Result<SuppressionPage, StoreError> {
        self.inner.suppressions(cursor, limit).await
    }
    async fn due_slas(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<LeadId>, StoreError> {
        self.inner.due_slas(now, limit).await
    }
    async fn erase_lead(&self, tombstone: &Lead, email_key: Option<&str>) -> Result<(), StoreError> {
        self.write("erase_lead", || self.inner.erase_lead(tombstone, email_key)).await
    }
}
