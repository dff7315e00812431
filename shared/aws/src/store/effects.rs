//! The DynamoDB store: the [`Effects`] role.

use leadflow_core::ports::Effects;

use super::*;

impl Effects for DynamoStore {
    async fn claim_effect(
        &self,
        key: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<EffectClaim, StoreError> {
        const OP: &str = "claim effect";
        let pk = effect_pk(key);
        for _ in 0..2 {
            let item = claim_item(key, lease_until);
            // A claim whose lease ran out belongs to a claimant presumed dead.
            let cond = Cond::new("attribute_not_exists(#pk) OR (#state = :claimed AND #lease <= :now)")
                .name("#pk", PK)
                .name("#state", STATE)
                .name("#lease", LEASE_UNTIL)
                .value(":claimed", s("claimed"))
                .value(":now", n(now.timestamp_millis()));
            let stored = match self.put_if(OP, item, cond).await? {
                Ok(()) => return Ok(EffectClaim::Claimed),
                Err(Some(stored)) => stored,
                Err(None) => match self.get_item(OP, pk.clone(), NO_SORT).await? {
                    Some(stored) => stored,
                    // Released between the put and the read: claim again.
                    None => continue,
                },
            };
            return Ok(match str_attr(&stored, STATE) {
                Some("done") => EffectClaim::Done(str_attr(&stored, DETAIL).unwrap_or_default().to_string()),
                _ => EffectClaim::Busy,
            });
        }
        Ok(EffectClaim::Busy)
    }

    async fn finish_effect(&self, key: &str, detail: &str, trail: &[Activity]) -> Result<(), StoreError> {
        const OP: &str = "finish effect";
        // Unconditional: the effect happened, so it is remembered even if the claim was lost in
        // between (taken over, or released by mistake).
        let item = Item::from([
            (PK.into(), s(effect_pk(key))),
            (SK.into(), s(NO_SORT)),
            (STATE.into(), s("done")),
            (LEASE_UNTIL.into(), n(0)),
            (DETAIL.into(), s(detail)),
        ]);
        if !trail.is_empty() {
            let mut items = vec![plain_put(&self.table, item)?];
            items.extend(trail_puts(&self.table, trail)?);
            // No conditions: only a collision with a concurrent transaction cancels it.
            return match self.transact(OP, items).await? {
                None => Ok(()),
                Some(_) => {
                    Err(StoreError::Unavailable(format!("{OP}: a concurrent write touched the same items; retry")))
                }
            };
        }
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| unavailable("finish effect", &e))?;
        Ok(())
    }

    async fn release_effect(&self, key: &str) -> Result<(), StoreError> {
        // Done (or gone) already: a finished effect is never forgotten by a release.
        let claimed = Cond::new("#state = :claimed").name("#state", STATE).value(":claimed", s("claimed"));
        self.delete_if("release effect", effect_pk(key), NO_SORT, claimed).await
    }
}

fn effect_pk(key: &str) -> String {
    format!("EFFECT#{key}")
}

/// The item of a live claim on `key` (also taken inside an assignment's transaction).
pub(super) fn claim_item(key: &str, lease_until: DateTime<Utc>) -> Item {
    Item::from([
        (PK.into(), s(effect_pk(key))),
        (SK.into(), s(NO_SORT)),
        (STATE.into(), s("claimed")),
        (LEASE_UNTIL.into(), n(lease_until.timestamp_millis())),
    ])
}
