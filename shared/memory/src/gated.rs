//! One wrapper for every store that stands in front of another ([`Gated`]): the fault
//! injectors and the store that is down differ only in what they do around a call
//! ([`StoreGate`]), so the 33 delegations of [`LeadStore`] are written once, here.

use std::collections::BTreeMap;
use std::future::Future;

use chrono::{DateTime, Utc};
use leadflow_core::error::StoreError;
use leadflow_core::model::{Activity, Document, Enrollment, Lead, LeadId, RepId, Suppression, TeamCursor};
use leadflow_core::ports::{
    AssignOutcome, AssignmentWrite, Assignments, CreateOutcome, Documents, EffectClaim, Effects, EnrollmentPage,
    Enrollments, FactsPage, IdempotencyClaim, LeadPage, LeadStore, Leads, Listings, SuppressionPage, Suppressions,
    Trails, WriteOutcome,
};

/// Whether a call may change what the store holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
}

/// One call of the wrapped store, as its gate sees it.
#[derive(Debug, Clone, Copy)]
pub struct StoreCall<'a> {
    /// The [`LeadStore`] method's name.
    pub method: &'static str,
    pub access: Access,
    /// `finish_effect`'s key: the fault audit follows which effects were recorded.
    pub effect_key: Option<&'a str>,
}

impl StoreCall<'static> {
    fn read(method: &'static str) -> Self {
        Self { method, access: Access::Read, effect_key: None }
    }

    fn write(method: &'static str) -> Self {
        Self { method, access: Access::Write, effect_key: None }
    }
}

/// What a wrapper does around each call of the store it wraps.
pub trait StoreGate: Send + Sync + 'static {
    /// Runs `call` (`run` makes the wrapped store's future; not calling it means the call never
    /// reached the store), or fails it, or both. A maker rather than the future itself, so that
    /// the wrapped store's future (large, for an SDK call) is laid out once, not once per layer.
    fn pass<T: Send, F: Future<Output = Result<T, StoreError>> + Send>(
        &self,
        call: StoreCall<'_>,
        run: impl FnOnce() -> F + Send,
    ) -> impl Future<Output = Result<T, StoreError>> + Send;
}

/// A store whose every call goes through `gate`.
#[derive(Default)]
pub struct Gated<S, G> {
    pub(crate) inner: S,
    pub(crate) gate: G,
}

impl<S, G> Gated<S, G> {
    /// The wrapped store itself, for a test's own reads (not counted, never failed).
    pub fn inner(&self) -> &S {
        &self.inner
    }
}

/// Every call fails as an unreachable database's would.
#[derive(Default)]
pub struct Down;

impl StoreGate for Down {
    async fn pass<T: Send, F: Future<Output = Result<T, StoreError>> + Send>(
        &self,
        _: StoreCall<'_>,
        _: impl FnOnce() -> F + Send,
    ) -> Result<T, StoreError> {
        Err(StoreError::Unavailable("connection refused".into()))
    }
}

impl<S: LeadStore, G: StoreGate> Leads for Gated<S, G> {
    fn claim_idempotency_key(
        &self,
        key: &str,
        lead_id: LeadId,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> impl Future<Output = Result<IdempotencyClaim, StoreError>> + Send {
        self.gate.pass(StoreCall::write("claim_idempotency_key"), move || {
            self.inner.claim_idempotency_key(key, lead_id, now, expires_at)
        })
    }
    fn create_lead(
        &self,
        lead: &Lead,
        trail: &[Activity],
    ) -> impl Future<Output = Result<CreateOutcome, StoreError>> + Send {
        self.gate.pass(StoreCall::write("create_lead"), move || self.inner.create_lead(lead, trail))
    }
    fn update_lead(
        &self,
        lead: &Lead,
        expected_version: u64,
        trail: &[Activity],
    ) -> impl Future<Output = Result<WriteOutcome, StoreError>> + Send {
        self.gate.pass(StoreCall::write("update_lead"), move || self.inner.update_lead(lead, expected_version, trail))
    }
    fn record_alias(&self, alias: LeadId, into: LeadId) -> impl Future<Output = Result<bool, StoreError>> + Send {
        self.gate.pass(StoreCall::write("record_alias"), move || self.inner.record_alias(alias, into))
    }
    fn resolve_lead(&self, id: LeadId) -> impl Future<Output = Result<Option<LeadId>, StoreError>> + Send {
        self.gate.pass(StoreCall::read("resolve_lead"), move || self.inner.resolve_lead(id))
    }
    fn get_lead(&self, id: LeadId) -> impl Future<Output = Result<Option<Lead>, StoreError>> + Send {
        self.gate.pass(StoreCall::read("get_lead"), move || self.inner.get_lead(id))
    }
    fn find_by_email_key(&self, email_key: &str) -> impl Future<Output = Result<Option<LeadId>, StoreError>> + Send {
        self.gate.pass(StoreCall::read("find_by_email_key"), move || self.inner.find_by_email_key(email_key))
    }
    fn erase_lead(
        &self,
        tombstone: &Lead,
        email_key: Option<&str>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.gate.pass(StoreCall::write("erase_lead"), move || self.inner.erase_lead(tombstone, email_key))
    }
}

impl<S: LeadStore, G: StoreGate> Trails for Gated<S, G> {
    fn record_activity(&self, activity: &Activity) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.gate.pass(StoreCall::write("record_activity"), move || self.inner.record_activity(activity))
    }
    fn activities(&self, lead_id: LeadId) -> impl Future<Output = Result<Vec<Activity>, StoreError>> + Send {
        self.gate.pass(StoreCall::read("activities"), move || self.inner.activities(lead_id))
    }
    fn trails(&self, lead_ids: &[LeadId]) -> impl Future<Output = Result<Vec<Vec<Activity>>, StoreError>> + Send {
        self.gate.pass(StoreCall::read("trails"), move || self.inner.trails(lead_ids))
    }
}

impl<S: LeadStore, G: StoreGate> Assignments for Gated<S, G> {
    fn team_cursor(&self, team_id: &str) -> impl Future<Output = Result<TeamCursor, StoreError>> + Send {
        self.gate.pass(StoreCall::read("team_cursor"), move || self.inner.team_cursor(team_id))
    }
    fn rep_loads(&self) -> impl Future<Output = Result<BTreeMap<RepId, u32>, StoreError>> + Send {
        self.gate.pass(StoreCall::read("rep_loads"), move || self.inner.rep_loads())
    }
    fn assign(&self, write: &AssignmentWrite) -> impl Future<Output = Result<AssignOutcome, StoreError>> + Send {
        self.gate.pass(StoreCall::write("assign"), move || self.inner.assign(write))
    }
    fn due_slas(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<LeadId>, StoreError>> + Send {
        self.gate.pass(StoreCall::read("due_slas"), move || self.inner.due_slas(now, limit))
    }
}

impl<S: LeadStore, G: StoreGate> Effects for Gated<S, G> {
    fn claim_effect(
        &self,
        lead: LeadId,
        key: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> impl Future<Output = Result<EffectClaim, StoreError>> + Send {
        self.gate.pass(StoreCall::write("claim_effect"), move || self.inner.claim_effect(lead, key, now, lease_until))
    }
    fn finish_effect(
        &self,
        lead: LeadId,
        key: &str,
        detail: &str,
        trail: &[Activity],
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.gate.pass(StoreCall { effect_key: Some(key), ..StoreCall::write("finish_effect") }, move || {
            self.inner.finish_effect(lead, key, detail, trail)
        })
    }
    fn release_effect(
        &self,
        key: &str,
        lease_until: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.gate.pass(StoreCall::write("release_effect"), move || self.inner.release_effect(key, lease_until))
    }
}

impl<S: LeadStore, G: StoreGate> Enrollments for Gated<S, G> {
    fn enroll(
        &self,
        enrollment: &Enrollment,
        trail: &[Activity],
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        self.gate.pass(StoreCall::write("enroll"), move || self.inner.enroll(enrollment, trail))
    }
    fn enrollments(&self, lead_id: LeadId) -> impl Future<Output = Result<Vec<Enrollment>, StoreError>> + Send {
        self.gate.pass(StoreCall::read("enrollments"), move || self.inner.enrollments(lead_id))
    }
    fn due_enrollments(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Enrollment>, StoreError>> + Send {
        self.gate.pass(StoreCall::read("due_enrollments"), move || self.inner.due_enrollments(now, limit))
    }
    fn update_enrollment(
        &self,
        enrollment: &Enrollment,
        expected_version: u64,
        trail: &[Activity],
    ) -> impl Future<Output = Result<WriteOutcome, StoreError>> + Send {
        self.gate.pass(StoreCall::write("update_enrollment"), move || {
            self.inner.update_enrollment(enrollment, expected_version, trail)
        })
    }
    fn campaign_enrollments(
        &self,
        campaign_id: &str,
        cursor: Option<String>,
        limit: usize,
    ) -> impl Future<Output = Result<EnrollmentPage, StoreError>> + Send {
        self.gate.pass(StoreCall::read("campaign_enrollments"), move || {
            self.inner.campaign_enrollments(campaign_id, cursor, limit)
        })
    }
}

impl<S: LeadStore, G: StoreGate> Suppressions for Gated<S, G> {
    fn suppress(
        &self,
        entry: &Suppression,
        trail: &[Activity],
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        self.gate.pass(StoreCall::write("suppress"), move || self.inner.suppress(entry, trail))
    }
    fn suppression(&self, email_key: &str) -> impl Future<Output = Result<Option<Suppression>, StoreError>> + Send {
        self.gate.pass(StoreCall::read("suppression"), move || self.inner.suppression(email_key))
    }
    fn suppressions(
        &self,
        cursor: Option<String>,
        limit: usize,
    ) -> impl Future<Output = Result<SuppressionPage, StoreError>> + Send {
        self.gate.pass(StoreCall::read("suppressions"), move || self.inner.suppressions(cursor, limit))
    }
}

impl<S: LeadStore, G: StoreGate> Documents for Gated<S, G> {
    fn put_document(&self, doc: &Document) -> impl Future<Output = Result<WriteOutcome, StoreError>> + Send {
        self.gate.pass(StoreCall::write("put_document"), move || self.inner.put_document(doc))
    }
    fn document(
        &self,
        name: &str,
        version: Option<u32>,
    ) -> impl Future<Output = Result<Option<Document>, StoreError>> + Send {
        self.gate.pass(StoreCall::read("document"), move || self.inner.document(name, version))
    }
    fn latest_documents(&self, prefix: &str) -> impl Future<Output = Result<Vec<Document>, StoreError>> + Send {
        self.gate.pass(StoreCall::read("latest_documents"), move || self.inner.latest_documents(prefix))
    }
}

impl<S: LeadStore, G: StoreGate> Listings for Gated<S, G> {
    fn list_leads(
        &self,
        cursor: Option<String>,
        limit: usize,
    ) -> impl Future<Output = Result<LeadPage, StoreError>> + Send {
        self.gate.pass(StoreCall::read("list_leads"), move || self.inner.list_leads(cursor, limit))
    }
    fn funnel_facts(
        &self,
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
        cursor: Option<String>,
        limit: usize,
    ) -> impl Future<Output = Result<FactsPage, StoreError>> + Send {
        self.gate.pass(StoreCall::read("funnel_facts"), move || self.inner.funnel_facts(since, until, cursor, limit))
    }
    fn open_leads_of(
        &self,
        rep_id: &str,
        cursor: Option<String>,
        limit: usize,
    ) -> impl Future<Output = Result<LeadPage, StoreError>> + Send {
        self.gate.pass(StoreCall::read("open_leads_of"), move || self.inner.open_leads_of(rep_id, cursor, limit))
    }
    fn leads_before(
        &self,
        before: Option<LeadId>,
        limit: usize,
    ) -> impl Future<Output = Result<LeadPage, StoreError>> + Send {
        self.gate.pass(StoreCall::read("leads_before"), move || self.inner.leads_before(before, limit))
    }
}
