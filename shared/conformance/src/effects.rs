//! Side effects (`Effects`): claimed once, busy while a live claim holds them, taken over after
//! its lease, given back after a failure, and remembered with their detail once done.

use leadflow_core::ports::{EffectClaim, LeadStore};
use leadflow_memory::fixtures::t;

use crate::support::ok;

async fn claim<S: LeadStore>(store: &S, key: &str, now: i64, lease_until: i64) -> EffectClaim {
    ok(store.claim_effect(key, t(now), t(lease_until)).await, "claim effect")
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
    ok(store.finish_effect(key, "msg-1@leadflow", &[]).await, "finish effect");
    assert_eq!(claim(store, key, 1000, 1030).await, done);
    // Releasing a finished effect does not forget it.
    ok(store.release_effect(key).await, "release effect");
    assert_eq!(claim(store, key, 1000, 1030).await, done);

    // A failed attempt gives its claim back: the retry need not wait for the lease.
    assert_eq!(claim(store, "other", 0, 30).await, EffectClaim::Claimed);
    ok(store.release_effect("other").await, "release effect");
    assert_eq!(claim(store, "other", 1, 31).await, EffectClaim::Claimed);
    // Releasing what was never claimed is harmless.
    ok(store.release_effect("never").await, "release effect");
    assert_eq!(claim(store, "never", 2, 32).await, EffectClaim::Claimed);
}
