//! [`WithFaults`]: each port's calls, failed as [`Faults`] decides.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{DateTime, Utc};
use leadflow_core::error::{BusError, MailError, QueueError, StoreError};
use leadflow_core::model::{Activity, Document, Enrollment, Lead, LeadId, RepId, Suppression, TeamCursor};
use leadflow_core::ports::{
    AssignOutcome, AssignmentWrite, CreateOutcome, DomainEvent, EffectClaim, EnrollmentPage, EventBus, FactsPage,
    IdempotencyClaim, LeadPage, LeadStore, Mailer, OutgoingEmail, Stage, StageQueue, SuppressionPage, WriteOutcome,
};

use super::{Decision, Faults, Port, Unrecorded};

/// An adapter whose calls fail as [`Faults`] decides; it is each port the adapter is.
pub struct WithFaults<T> {
    pub(super) inner: T,
    pub(super) faults: Arc<Faults>,
}

impl<T> WithFaults<T> {
    /// The adapter itself, for a driver's own reads (not counted, never failed).
    pub fn inner(&self) -> &T {
        &self.inner
    }

    pub fn faults(&self) -> &Arc<Faults> {
        &self.faults
    }

    /// `refused` makes the error of a call that never reached the service, `lost` that of one
    /// whose answer never came back.
    async fn call<R, E, F>(
        &self,
        port: Port,
        what: &'static str,
        refused: fn(String) -> E,
        lost: fn(String) -> E,
        run: impl FnOnce() -> F,
    ) -> Result<R, E>
    where
        F: Future<Output = Result<R, E>>,
    {
        match self.faults.decide(port) {
            Decision::Pass => run().await,
            Decision::Fail => Err(refused(format!("{what}: the service refused the request (injected fault)"))),
            Decision::TimeOut => {
                // Carried out, whatever it answered; the caller only learns that it timed out.
                let _ = run().await;
                Err(lost(format!(
                    "{what}: timed out waiting for the answer (injected fault; the call was carried out)"
                )))
            }
            Decision::Dead => Err(lost(format!("{what}: the process died before this call (injected crash)"))),
        }
    }

    async fn store<R, F: Future<Output = Result<R, StoreError>>>(
        &self,
        what: &'static str,
        run: impl FnOnce() -> F,
    ) -> Result<R, StoreError> {
        self.call(Port::Store, what, StoreError::Unavailable, StoreError::Unavailable, run).await
    }
}

impl<S: LeadStore> LeadStore for WithFaults<S> {
    async fn claim_idempotency_key(
        &self,
        key: &str,
        lead_id: LeadId,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<IdempotencyClaim, StoreError> {
        self.store("claim_idempotency_key", || self.inner.claim_idempotency_key(key, lead_id, now, expires_at)).await
    }
    async fn create_lead(&self, lead: &Lead, trail: &[Activity]) -> Result<CreateOutcome, StoreError> {
        self.store("create_lead", || self.inner.create_lead(lead, trail)).await
    }
    async fn update_lead(&self, lead: &Lead, expected: u64, trail: &[Activity]) -> Result<WriteOutcome, StoreError> {
        self.store("update_lead", || self.inner.update_lead(lead, expected, trail)).await
    }
    async fn record_alias(&self, alias: LeadId, into: LeadId) -> Result<bool, StoreError> {
        self.store("record_alias", || self.inner.record_alias(alias, into)).await
    }
    async fn resolve_lead(&self, id: LeadId) -> Result<Option<LeadId>, StoreError> {
        self.store("resolve_lead", || self.inner.resolve_lead(id)).await
    }
    async fn get_lead(&self, id: LeadId) -> Result<Option<Lead>, StoreError> {
        self.store("get_lead", || self.inner.get_lead(id)).await
    }
    async fn find_by_email_key(&self, key: &str) -> Result<Option<LeadId>, StoreError> {
        self.store("find_by_email_key", || self.inner.find_by_email_key(key)).await
    }
    async fn record_activity(&self, activity: &Activity) -> Result<(), StoreError> {
        self.store("record_activity", || self.inner.record_activity(activity)).await
    }
    async fn activities(&self, lead_id: LeadId) -> Result<Vec<Activity>, StoreError> {
        self.store("activities", || self.inner.activities(lead_id)).await
    }
    async fn trails(&self, lead_ids: &[LeadId]) -> Result<Vec<Vec<Activity>>, StoreError> {
        self.store("trails", || self.inner.trails(lead_ids)).await
    }
    async fn team_cursor(&self, team_id: &str) -> Result<TeamCursor, StoreError> {
        self.store("team_cursor", || self.inner.team_cursor(team_id)).await
    }
    async fn rep_loads(&self) -> Result<BTreeMap<RepId, u32>, StoreError> {
        self.store("rep_loads", || self.inner.rep_loads()).await
    }
    async fn assign(&self, write: &AssignmentWrite) -> Result<AssignOutcome, StoreError> {
        self.store("assign", || self.inner.assign(write)).await
    }
    async fn claim_effect(
        &self,
        key: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<EffectClaim, StoreError> {
        self.store("claim_effect", || self.inner.claim_effect(key, now, lease_until)).await
    }
    async fn finish_effect(&self, key: &str, detail: &str, trail: &[Activity]) -> Result<(), StoreError> {
        let carried_out = AtomicBool::new(false);
        let done = self
            .store("finish_effect", || async {
                let done = self.inner.finish_effect(key, detail, trail).await;
                if done.is_ok() {
                    carried_out.store(true, Ordering::SeqCst);
                    self.faults.finished_effect(key);
                }
                done
            })
            .await;
        if done.is_err() && !carried_out.load(Ordering::SeqCst) {
            self.faults.record_not_written(key);
        }
        done
    }
    async fn release_effect(&self, key: &str) -> Result<(), StoreError> {
        self.store("release_effect", || self.inner.release_effect(key)).await
    }
    async fn enroll(&self, enrollment: &Enrollment, trail: &[Activity]) -> Result<bool, StoreError> {
        self.store("enroll", || self.inner.enroll(enrollment, trail)).await
    }
    async fn enrollments(&self, lead_id: LeadId) -> Result<Vec<Enrollment>, StoreError> {
        self.store("enrollments", || self.inner.enrollments(lead_id)).await
    }
    async fn due_enrollments(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<Enrollment>, StoreError> {
        self.store("due_enrollments", || self.inner.due_enrollments(now, limit)).await
    }
    async fn update_enrollment(
        &self,
        enrollment: &Enrollment,
        expected: u64,
        trail: &[Activity],
    ) -> Result<WriteOutcome, StoreError> {
        self.store("update_enrollment", || self.inner.update_enrollment(enrollment, expected, trail)).await
    }
    async fn campaign_enrollments(
        &self,
        campaign_id: &str,
        cursor: Option<String>,
        limit: usize,
    ) -> Result<EnrollmentPage, StoreError> {
        self.store("campaign_enrollments", || self.inner.campaign_enrollments(campaign_id, cursor, limit)).await
    }
    async fn suppress(&self, entry: &Suppression, trail: &[Activity]) -> Result<bool, StoreError> {
        self.store("suppress", || self.inner.suppress(entry, trail)).await
    }
    async fn suppression(&self, email_key: &str) -> Result<Option<Suppression>, StoreError> {
        self.store("suppression", || self.inner.suppression(email_key)).await
    }
    async fn put_document(&self, doc: &Document) -> Result<WriteOutcome, StoreError> {
        self.store("put_document", || self.inner.put_document(doc)).await
    }
    async fn document(&self, name: &str, version: Option<u32>) -> Result<Option<Document>, StoreError> {
        self.store("document", || self.inner.document(name, version)).await
    }
    async fn latest_documents(&self, prefix: &str) -> Result<Vec<Document>, StoreError> {
        self.store("latest_documents", || self.inner.latest_documents(prefix)).await
    }
    async fn list_leads(&self, cursor: Option<String>, limit: usize) -> Result<LeadPage, StoreError> {
        self.store("list_leads", || self.inner.list_leads(cursor, limit)).await
    }
    async fn funnel_facts(
        &self,
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
        cursor: Option<String>,
        limit: usize,
    ) -> Result<FactsPage, StoreError> {
        self.store("funnel_facts", || self.inner.funnel_facts(since, until, cursor, limit)).await
    }
    async fn open_leads_of(&self, rep_id: &str, cursor: Option<String>, limit: usize) -> Result<LeadPage, StoreError> {
        self.store("open_leads_of", || self.inner.open_leads_of(rep_id, cursor, limit)).await
    }
    async fn leads_before(&self, before: Option<LeadId>, limit: usize) -> Result<LeadPage, StoreError> {
        self.store("leads_before", || self.inner.leads_before(before, limit)).await
    }
    async fn suppressions(&self, cursor: Option<String>, limit: usize) -> Result<SuppressionPage, StoreError> {
        self.store("suppressions", || self.inner.suppressions(cursor, limit)).await
    }
    async fn due_slas(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<LeadId>, StoreError> {
        self.store("due_slas", || self.inner.due_slas(now, limit)).await
    }
    async fn erase_lead(&self, tombstone: &Lead, email_key: Option<&str>) -> Result<(), StoreError> {
        self.store("erase_lead", || self.inner.erase_lead(tombstone, email_key)).await
    }
}

impl<Q: StageQueue> StageQueue for WithFaults<Q> {
    async fn send(&self, stage: Stage, bodies: &[String]) -> Result<(), QueueError> {
        let unavailable = QueueError::Unavailable;
        self.call(Port::Queue, "SendMessage", unavailable, unavailable, || self.inner.send(stage, bodies)).await
    }
}

impl<M: Mailer> Mailer for WithFaults<M> {
    async fn send(&self, email: &OutgoingEmail, now: DateTime<Utc>) -> Result<String, MailError> {
        // A refusal is throttling (SES's TooManyRequests), a lost answer a timeout: both retried.
        let answer_lost = match self.faults.decide(Port::Mailer) {
            Decision::Pass => false,
            Decision::TimeOut => true,
            Decision::Fail => {
                return Err(MailError::Throttled("SendEmail: the service refused the request (injected fault)".into()));
            }
            Decision::Dead => {
                return Err(MailError::Unavailable(
                    "SendEmail: the process died before this call (injected crash)".into(),
                ));
            }
        };
        let message_id = self.inner.send(email, now).await?;
        let crashed = self.faults.crashes_after_send();
        let why =
            if crashed { Some(Unrecorded::CrashAfterSend) } else { answer_lost.then_some(Unrecorded::AnswerLost) };
        self.faults.accepted_email(email, why);
        if crashed {
            return Err(MailError::Unavailable(
                "the process died after the provider accepted the email (injected crash)".into(),
            ));
        }
        if answer_lost {
            return Err(MailError::Unavailable(
                "SendEmail: timed out waiting for the answer (injected fault; the email was accepted)".into(),
            ));
        }
        Ok(message_id)
    }

    async fn erase(&self, lead_id: LeadId) -> Result<usize, MailError> {
        let unavailable = MailError::Unavailable;
        self.call(Port::Mailer, "erase", unavailable, unavailable, || self.inner.erase(lead_id)).await
    }
}

impl<B: EventBus> EventBus for WithFaults<B> {
    async fn publish(&self, events: &[DomainEvent]) -> Result<(), BusError> {
        let answer_lost = match self.faults.decide(Port::Bus) {
            Decision::Pass => false,
            Decision::TimeOut => true,
            Decision::Fail => {
                return Err(BusError::Unavailable(
                    "PutEvents: the service refused the request (injected fault)".into(),
                ));
            }
            Decision::Dead => {
                return Err(BusError::Unavailable(
                    "PutEvents: the process died before this call (injected crash)".into(),
                ));
            }
        };
        self.inner.publish(events).await?;
        self.faults.accepted_events(events, answer_lost.then_some(Unrecorded::AnswerLost));
        if answer_lost {
            return Err(BusError::Unavailable(
                "PutEvents: timed out waiting for the answer (injected fault; the events were accepted)".into(),
            ));
        }
        Ok(())
    }
}
