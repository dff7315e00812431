//! The fault wrappers and the audit, over the in-memory adapters.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::Utc;
use leadflow_core::error::StoreError;
use leadflow_core::model::LeadId;
use leadflow_core::ports::{EffectClaim, Mailer, OutgoingEmail};

use super::*;
use crate::{MemoryStore, RecordingMailer};
use leadflow_core::ports::Mailbox;
use leadflow_core::ports::{Assignments, Effects};

fn block_on<F: Future>(f: F) -> F::Output {
    // The in-memory adapters answer at once: one poll finishes every future here.
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    let mut f = std::pin::pin!(f);
    match f.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(out) => out,
        std::task::Poll::Pending => panic!("an in-memory call did not finish at once"),
    }
}

/// The lead the effects of these tests belong to (the memory store keys them by name alone).
fn the_lead() -> LeadId {
    LeadId::from_parts(1, 1)
}

fn email(key: &str) -> OutgoingEmail {
    OutgoingEmail {
        to: Mailbox { name: None, email: "anna@acme.example".into() },
        tags: vec![("lead_id".into(), "L1".into())],
        ..crate::fixtures::outgoing_email(key)
    }
}

#[test]
fn the_same_seed_fails_the_same_calls() {
    let run = |seed| {
        let faults = Faults::new(FaultPlan::one_in_ten(seed));
        let store = faults.wrap(MemoryStore::new());
        let outcomes: Vec<bool> = (0..500).map(|_| block_on(store.rep_loads()).is_ok()).collect();
        (outcomes, faults.tally())
    };
    assert_eq!(run(7), run(7));
    assert_ne!(run(7).0, run(8).0);
    let (outcomes, tally) = run(7);
    let failed = outcomes.iter().filter(|ok| !**ok).count() as u64;
    assert_eq!(failed, tally.faults(Port::Store, Fault::Failed) + tally.faults(Port::Store, Fault::TimedOut));
    // About one in ten; 500 draws stay well inside 5–15 %.
    assert!((25..=75).contains(&failed), "{failed} of 500 failed");
}

#[test]
fn a_timed_out_write_is_carried_out_and_answered_as_a_failure() {
    let faults = Faults::new(FaultPlan { seed: 1, fail: 0.0, time_out: 1.0, crash_after_send: 0.0, each_kind_by: 0 });
    let store = faults.wrap(MemoryStore::new());
    let claimed = block_on(store.claim_effect(the_lead(), "email:k", Utc::now(), Utc::now()));
    assert!(matches!(claimed, Err(StoreError::Unavailable(ref m)) if m.contains("timed out")), "{claimed:?}");
    assert!(!faults.finished("email:k"));
    assert!(block_on(store.finish_effect(the_lead(), "email:k", "id", &[])).is_err());
    assert!(faults.finished("email:k"), "carried out although the caller saw an error");
    let now = Utc::now();
    assert_eq!(
        block_on(store.inner().claim_effect(the_lead(), "email:k", now, now)).ok(),
        Some(EffectClaim::Done("id".into()))
    );
}

#[test]
fn a_crash_after_a_send_refuses_every_later_call_until_revived() {
    let faults = Faults::new(FaultPlan { seed: 1, fail: 0.0, time_out: 0.0, crash_after_send: 1.0, each_kind_by: 0 });
    let mailer = faults.wrap(RecordingMailer::new());
    let store = faults.wrap(MemoryStore::new());
    assert!(block_on(mailer.send(&email("k"), Utc::now())).is_err());
    assert_eq!(mailer.inner().sent().len(), 1, "the provider has it");
    assert!(block_on(store.finish_effect(the_lead(), "email:k", "id", &[])).is_err());
    assert!(!faults.finished("email:k"), "the dead process recorded nothing");
    assert!(faults.revive());
    assert!(!faults.revive());
    assert!(block_on(store.finish_effect(the_lead(), "email:k", "id", &[])).is_ok());
    let tally = faults.tally();
    assert_eq!(tally.faults(Port::Mailer, Fault::CrashAfterSend), 1);
    assert_eq!(tally.faults(Port::Store, Fault::AfterCrash), 1);
}

#[test]
fn an_email_accepted_after_its_send_was_recorded_is_outside_the_window() {
    let faults = Faults::new(FaultPlan::none());
    let mailer = faults.wrap(RecordingMailer::new());
    let store = faults.wrap(MemoryStore::new());
    assert!(block_on(mailer.send(&email("k"), Utc::now())).is_ok());
    // Not recorded yet: a second send is the documented window.
    assert!(block_on(mailer.send(&email("k"), Utc::now())).is_ok());
    assert!(block_on(store.finish_effect(the_lead(), "email:k", "id", &[])).is_ok());
    assert!(block_on(mailer.send(&email("k"), Utc::now())).is_ok());
    let accepted = faults.emails();
    let k = accepted.get("k").cloned().unwrap_or_default();
    assert_eq!((k.times, k.after_record), (3, 1));
    assert_eq!(k.lead_id.as_deref(), Some("L1"));
    let owed = faults.repeats("email");
    assert_eq!(owed, BTreeMap::from([(Unrecorded::Unexplained, 1), (Unrecorded::AfterRecord, 1)]));
}

#[test]
fn each_repeat_is_owed_to_the_fault_that_left_the_first_send_unrecorded() {
    let send =
        |faults: &Arc<Faults>, key: &str| block_on(faults.wrap(RecordingMailer::new()).send(&email(key), Utc::now()));
    let lost = Faults::new(FaultPlan { seed: 3, fail: 0.0, time_out: 1.0, crash_after_send: 0.0, each_kind_by: 0 });
    assert!(send(&lost, "k").is_err(), "timed out, yet accepted");
    lost.calm_down();
    assert!(send(&lost, "k").is_ok());
    assert_eq!(lost.repeats("email"), BTreeMap::from([(Unrecorded::AnswerLost, 1)]));

    let crash = Faults::new(FaultPlan { seed: 3, fail: 0.0, time_out: 0.0, crash_after_send: 1.0, each_kind_by: 0 });
    assert!(send(&crash, "k").is_err());
    assert!(crash.revive());
    crash.calm_down();
    assert!(send(&crash, "k").is_ok());
    assert_eq!(crash.repeats("email"), BTreeMap::from([(Unrecorded::CrashAfterSend, 1)]));

    let refused = Faults::new(FaultPlan { seed: 3, fail: 1.0, time_out: 0.0, crash_after_send: 0.0, each_kind_by: 0 });
    refused.accepted_email(&email("k"), None);
    assert!(block_on(refused.wrap(MemoryStore::new()).finish_effect(the_lead(), "email:k", "id", &[])).is_err());
    refused.calm_down();
    assert!(send(&refused, "k").is_ok());
    assert_eq!(refused.repeats("email"), BTreeMap::from([(Unrecorded::RecordNotWritten, 1)]));
}

mod audit_of_a_run {
    use std::collections::BTreeSet;

    use chrono::Utc;
    use leadflow_core::model::{EnrollmentState, LeadId, Lifecycle, Validity};
    use leadflow_core::ports::{DomainEvent, EventBus, Mailer, Stage};
    use serde_json::json;

    use super::{block_on, email};
    use crate::faults::audit::{DeadLetter, Person, audit};
    use crate::faults::{FaultPlan, Faults, Unrecorded};
    use crate::fixtures::{enrollment, id, lead, owned_by, t};
    use crate::{MemoryStore, RecordingBus, RecordingMailer};
    use leadflow_core::ports::{Effects, Enrollments, Leads};

    fn person(address: &str, ids: &[LeadId]) -> Person {
        Person { email: address.into(), accepted: ids.iter().copied().collect::<BTreeSet<_>>() }
    }

    fn dead(stage: Stage, lead: LeadId) -> DeadLetter {
        DeadLetter { stage, body: json!({ "lead_id": lead }).to_string(), reason: None }
    }

    #[test]
    fn a_lead_that_is_not_done_is_lost_unless_a_dead_letter_names_it() {
        let store = MemoryStore::new();
        let faults = Faults::new(FaultPlan::none());
        assert!(block_on(store.create_lead(&lead(1, "a@x.example"), &[])).is_ok());
        assert!(block_on(store.enroll(&enrollment(1, "welcome", Some(t(0)), EnrollmentState::Active), &[])).is_ok());
        let mut qualified = lead(2, "b@x.example");
        qualified.lifecycle = Lifecycle::Mql;
        assert!(block_on(store.create_lead(&qualified, &[])).is_ok());
        let people =
            [person("a@x.example", &[id(1)]), person("b@x.example", &[id(2)]), person("c@x.example", &[id(3)])];

        let o = block_on(audit(&store, &people, &[], &faults)).unwrap_or_default();
        assert_eq!(o.enrolled, 1);
        let lost: Vec<&String> = o.problems.iter().filter(|p| p.starts_with("lost")).collect();
        assert_eq!(lost.len(), 2, "{o}");

        let letters = [dead(Stage::Route, id(2)), dead(Stage::Validate, id(3))];
        let o = block_on(audit(&store, &people, &letters, &faults)).unwrap_or_default();
        assert!(o.problems.is_empty(), "{o}");
        assert_eq!((o.in_dlq.get("route"), o.in_dlq.get("validate")), (Some(&1), Some(&1)));
    }

    #[test]
    fn an_assigned_lead_is_done_once_its_rep_is_emailed_and_recorded_and_the_event_published() {
        let faults = Faults::new(FaultPlan::none());
        let store = faults.wrap(MemoryStore::new());
        let owned = owned_by(lead(1, "a@x.example"), "anna");
        assert!(block_on(store.inner().create_lead(&owned, &[])).is_ok());
        let people = [person("a@x.example", &[id(1)])];
        let o = block_on(audit(store.inner(), &people, &[], &faults)).unwrap_or_default();
        assert_eq!(o.assigned, 0);
        assert!(o.problems.iter().any(|p| p.contains("assigned to anna but no assignment email")), "{o}");

        let ms = t(10).timestamp_millis();
        let mut sent = email(&format!("assignment-{}-anna-{ms}", id(1)));
        sent.tags = vec![("lead_id".into(), id(1).to_string())];
        assert!(block_on(faults.wrap(RecordingMailer::new()).send(&sent, Utc::now())).is_ok());
        let o = block_on(audit(store.inner(), &people, &[], &faults)).unwrap_or_default();
        assert!(o.problems.iter().any(|p| p.contains("the email not recorded, no lead.assigned event")), "{o}");
        assert!(block_on(store.finish_effect(id(1), &format!("email:{}", sent.key), "m1", &[])).is_ok());
        let event = DomainEvent {
            id: format!("lead.assigned:{}:{ms}", id(1)),
            detail_type: "lead.assigned".into(),
            at: t(10),
            detail: json!({ "lead_id": id(1) }),
        };
        let bus = faults.wrap(RecordingBus::new());
        assert!(block_on(bus.publish(std::slice::from_ref(&event))).is_ok());
        let o = block_on(audit(store.inner(), &people, &[], &faults)).unwrap_or_default();
        assert!(o.problems.is_empty(), "{o}");
        assert_eq!(o.assigned, 1);
        assert_eq!(o.loads, o.owned);

        // A redelivery publishes the event again: counted, not a problem (consumers dedupe).
        assert!(block_on(bus.publish(std::slice::from_ref(&event))).is_ok());
        let o = block_on(audit(store.inner(), &people, &[], &faults)).unwrap_or_default();
        assert!(o.problems.is_empty(), "{o}");
        assert_eq!((o.events.accepted, o.events.distinct), (2, 1));
        assert_eq!(o.events.owed_to.get(Unrecorded::Republished.as_str()), Some(&1));
    }

    #[test]
    fn two_leads_for_one_address_are_a_duplicate() {
        let store = MemoryStore::new();
        let faults = Faults::new(FaultPlan::none());
        assert!(block_on(store.create_lead(&lead(1, "a@x.example"), &[])).is_ok());
        // Kept as invalid, so the store takes it without the address's key.
        let mut again = lead(2, "a@x.example");
        again.validity = Validity::Invalid { reasons: Vec::new() };
        assert!(block_on(store.create_lead(&again, &[])).is_ok());
        let o = block_on(audit(&store, &[person("a@x.example", &[id(1), id(2)])], &[], &faults)).unwrap_or_default();
        assert!(o.problems.iter().any(|p| p.starts_with("duplicated")), "{o}");
    }
}

#[test]
fn a_short_run_meets_every_kind_of_fault_on_every_port_whatever_the_dice_say() {
    let plan = FaultPlan { seed: 4, fail: 0.0, time_out: 0.0, crash_after_send: 0.0, each_kind_by: 3 };
    let faults = Faults::new(plan);
    let store = faults.wrap(MemoryStore::new());
    let outcomes: Vec<bool> = (0..8).map(|_| block_on(store.rep_loads()).is_ok()).collect();
    assert_eq!(outcomes, [true, true, false, true, true, false, true, true]);
    let mailer = faults.wrap(RecordingMailer::new());
    // The mailer's third call is refused before it reaches the provider; the provider's third
    // acceptance (the fourth call) is followed by a crash.
    let sent: Vec<bool> = (0..4).map(|i| block_on(mailer.send(&email(&format!("k{i}")), Utc::now())).is_ok()).collect();
    assert_eq!(sent, [true, true, false, false]);
    assert_eq!(mailer.inner().sent().len(), 3);
    let tally = faults.tally();
    assert_eq!(tally.faults(Port::Store, Fault::Failed), 1);
    assert_eq!(tally.faults(Port::Store, Fault::TimedOut), 1);
    assert_eq!(tally.faults(Port::Mailer, Fault::Failed), 1);
    assert_eq!(tally.faults(Port::Mailer, Fault::CrashAfterSend), 1);
    assert!(faults.revive());
}
