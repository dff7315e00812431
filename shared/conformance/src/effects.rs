//! Side effects (`Effects`): claimed once, busy while a live claim holds them, taken over after
//! its lease, given back after a failure, and remembered with their detail once done; an
//! assignment can take a claim in its own write, all or nothing.

use leadflow_core::ports::{AssignOutcome, AssignmentWrite, EffectClaim, EffectLease, LeadStore};
use leadflow_memory::fixtures::{id, lead, owned_by, t};

use crate::support::{created, ok, stored};

async fn claim<S: LeadStore>(store: &S, key: &str, now: i64, lease_until: i64) -> EffectClaim {
    ok(store.claim_effect(id(1), key, t(now), t(lease_until)).await, "claim effect")
}

async fn release<S: LeadStore>(store: &S, key: &str, lease_until: i64) {
    ok(store.release_effect(key, t(lease_until)).await, "release effect");
}

pub async fn effects_are_claimed_once_busy_while_leased_taken_over_after_and_remembered_when_done<S: LeadStore>(
    store: &S,
) {
    let key = "email:assignment-1";
    let done = EffectClaim::Done("msg-1@leadflow".into());
    assert_eq!(claim(store, key, 0, 30).await, EffectClaim::Claimed);
    assert_eq!(claim(store, key, 10, 40).await, EffectClaim::Busy);
    // The first claimant died: after its lease another takes over.
    assert_eq!(claim(store, key, 31, 61).await, EffectClaim::Claimed);
    assert_eq!(claim(store, key, 32, 62).await, EffectClaim::Busy);
    // The first claimant was not dead after all, and gives its claim back: the second keeps it.
    release(store, key, 30).await;
    assert_eq!(claim(store, key, 33, 63).await, EffectClaim::Busy, "a stale claimant freed the claim");
    ok(store.finish_effect(id(1), key, "msg-1@leadflow", &[]).await, "finish effect");
    assert_eq!(claim(store, key, 34, 64).await, done, "within the finisher's lease");
    assert_eq!(claim(store, key, 1000, 1030).await, done, "after it");
    // A stale claimant releasing a finished effect does not make it forgotten. (Its finisher
    // never releases it: a claimant releases only an effect that did not happen.)
    release(store, key, 30).await;
    release(store, key, 1030).await;
    assert_eq!(claim(store, key, 1000, 1030).await, done);

    // A failed attempt gives its claim back: the retry need not wait for the lease.
    assert_eq!(claim(store, "other", 0, 30).await, EffectClaim::Claimed);
    release(store, "other", 30).await;
    assert_eq!(claim(store, "other", 1, 31).await, EffectClaim::Claimed);
    // Releasing what was never claimed is harmless.
    release(store, "never", 30).await;
    assert_eq!(claim(store, "never", 2, 32).await, EffectClaim::Claimed);
}

pub async fn an_assignment_takes_its_claim_with_it_or_neither_happens<S: LeadStore>(store: &S) {
    created(store, &lead(1, "a@example.com")).await;
    let write = |expected, key: &str| AssignmentWrite {
        lead: owned_by(lead(1, "a@example.com"), "rep-1"),
        expected_lead_version: expected,
        team_cursor: None,
        trail: Vec::new(),
        claim: Some(EffectLease { key: key.into(), lease_until: t(30) }),
    };

    // A stale lead: no assignment, and no claim either.
    assert_eq!(ok(store.assign(&write(7, "email:stale")).await, "assign"), AssignOutcome::Conflict);
    assert_eq!(claim(store, "email:stale", 0, 30).await, EffectClaim::Claimed, "the conflict claimed nothing");

    // A key held already, live or finished: no assignment.
    assert_eq!(claim(store, "email:sent", 0, 30).await, EffectClaim::Claimed);
    ok(store.finish_effect(id(1), "email:sent", "msg-1", &[]).await, "finish effect");
    assert_eq!(ok(store.assign(&write(0, "email:sent")).await, "assign"), AssignOutcome::Conflict);
    assert_eq!(stored(store, id(1)).await.owner, None, "a held key assigns nothing");

    // Both: the claim is live until its lease, then another may take it over.
    assert_eq!(ok(store.assign(&write(0, "email:new")).await, "assign"), AssignOutcome::Assigned);
    assert!(stored(store, id(1)).await.owner.is_some());
    assert_eq!(claim(store, "email:new", 10, 40).await, EffectClaim::Busy, "claimed with the assignment");
    assert_eq!(claim(store, "email:new", 31, 61).await, EffectClaim::Claimed, "after its lease");
}
