//! [`WithFaults`]: each port's calls, failed as [`Faults`] decides.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{DateTime, Utc};
use leadflow_core::error::{BusError, MailError, QueueError, StoreError};
use leadflow_core::model::LeadId;
use leadflow_core::ports::{DomainEvent, EventBus, Mailer, OutgoingEmail, Stage, StageQueue};

use super::{Decision, Faults, Port, Unrecorded};
use crate::gated::{Gated, StoreCall, StoreGate};

/// An adapter whose calls fail as [`Faults`] decides; it is each port the adapter is.
pub type WithFaults<T> = Gated<T, Arc<Faults>>;

impl<T> WithFaults<T> {
    pub fn faults(&self) -> &Arc<Faults> {
        &self.gate
    }
}

impl Faults {
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
        match self.decide(port) {
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
}

impl StoreGate for Arc<Faults> {
    async fn pass<T: Send, F: Future<Output = Result<T, StoreError>> + Send>(
        &self,
        call: StoreCall<'_>,
        run: impl FnOnce() -> F + Send,
    ) -> Result<T, StoreError> {
        let unavailable = StoreError::Unavailable;
        let Some(key) = call.effect_key else {
            return self.call(Port::Store, call.method, unavailable, unavailable, run).await;
        };
        // The audit tells a send whose record was lost from one recorded: it follows each
        // effect's finish.
        let carried_out = AtomicBool::new(false);
        let done = self
            .call(Port::Store, call.method, unavailable, unavailable, || async {
                let done = run().await;
                if done.is_ok() {
                    carried_out.store(true, Ordering::SeqCst);
                    self.finished_effect(key);
                }
                done
            })
            .await;
        if done.is_err() && !carried_out.load(Ordering::SeqCst) {
            self.record_not_written(key);
        }
        done
    }
}

impl<Q: StageQueue> StageQueue for WithFaults<Q> {
    async fn send(&self, stage: Stage, bodies: &[String]) -> Result<(), QueueError> {
        let unavailable = QueueError::Unavailable;
        self.gate.call(Port::Queue, "SendMessage", unavailable, unavailable, || self.inner.send(stage, bodies)).await
    }

    fn carries_leads(&self) -> bool {
        self.inner.carries_leads()
    }
}

impl<M: Mailer> Mailer for WithFaults<M> {
    async fn send(&self, email: &OutgoingEmail, now: DateTime<Utc>) -> Result<String, MailError> {
        // A refusal is throttling (SES's TooManyRequests), a lost answer a timeout: both retried.
        let answer_lost = match self.gate.decide(Port::Mailer) {
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
        let crashed = self.gate.crashes_after_send();
        let why =
            if crashed { Some(Unrecorded::CrashAfterSend) } else { answer_lost.then_some(Unrecorded::AnswerLost) };
        self.gate.accepted_email(email, why);
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
        self.gate.call(Port::Mailer, "erase", unavailable, unavailable, || self.inner.erase(lead_id)).await
    }
}

impl<B: EventBus> EventBus for WithFaults<B> {
    async fn publish(&self, events: &[DomainEvent]) -> Result<(), BusError> {
        let answer_lost = match self.gate.decide(Port::Bus) {
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
        self.gate.accepted_events(events, answer_lost.then_some(Unrecorded::AnswerLost));
        if answer_lost {
            return Err(BusError::Unavailable(
                "PutEvents: timed out waiting for the answer (injected fault; the events were accepted)".into(),
            ));
        }
        Ok(())
    }
}
