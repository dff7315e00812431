//! The in-memory store: the [`Effects`] role.

use leadflow_core::ports::Effects;

use super::*;

impl Effects for MemoryStore {
    fn claim_effect(
        &self,
        _lead: LeadId,
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
        _lead: LeadId,
        key: &str,
        detail: &str,
        trail: &[Activity],
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.with(|s| {
            s.effects.insert(key.to_string(), Effect::Done(detail.to_string()));
            s.write_trail(trail);
        })
    }

    fn release_effect(
        &self,
        key: &str,
        lease_until: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.with(move |s| {
            if matches!(s.effects.get(key), Some(Effect::Claimed { lease_until: l }) if *l == lease_until) {
                s.effects.remove(key);
            }
        })
    }
}
