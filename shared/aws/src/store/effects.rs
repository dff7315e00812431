//! The DynamoDB store: the [`Effects`] role.
//!
//! An effect has two items. The claim, `EFFECT#<key>`, is taken before the effect (on its own,
//! or inside an assignment's transaction) and names who holds it until when. The record, in the
//! lead's partition (`EFFECT#<key>` as its sort key), is written after it: its detail and the
//! trail's entries that tell it, one item, so finishing is one unconditional PutItem (one write
//! unit) instead of a transaction of the claim and an entry item (four). The claim is not
//! touched again: a later claim that finds it answers from the record. Claims finished before
//! 2026-12-05 hold their `done` state themselves and are read as before.

use leadflow_core::ports::Effects;

use super::lead_trail::entry_attributes;
use super::*;

/// The sort key of a finished effect's record in its lead's partition; between `ACT#…` and
/// `PROFILE`, so the trail's one Query reads it.
pub(super) const EFFECT_PREFIX: &str = "EFFECT#";

impl Effects for DynamoStore {
    async fn claim_effect(
        &self,
        lead: LeadId,
        key: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<EffectClaim, StoreError> {
        const OP: &str = "claim effect";
        let pk = effect_key(key);
        for _ in 0..2 {
            let fresh = Cond::new("attribute_not_exists(#pk)").name("#pk", PK);
            let stored = match self.put_if(OP, claim_item(key, lease_until), fresh).await? {
                Ok(()) => return Ok(EffectClaim::Claimed),
                Err(Some(stored)) => stored,
                Err(None) => match self.get_item(OP, pk.clone(), NO_SORT).await? {
                    Some(stored) => stored,
                    // Released between the put and the read: claim again.
                    None => continue,
                },
            };
            if str_attr(&stored, STATE) == Some("done") {
                return Ok(EffectClaim::Done(str_attr(&stored, DETAIL).unwrap_or_default().to_string()));
            }
            if let Some(record) = self.get_item(OP, lead_pk(lead), &effect_key(key)).await? {
                return Ok(EffectClaim::Done(str_attr(&record, DETAIL).unwrap_or_default().to_string()));
            }
            let held_until = num_i64(&stored, LEASE_UNTIL, "effect claim")?;
            if held_until > now.timestamp_millis() {
                return Ok(EffectClaim::Busy);
            }
            // The claimant is presumed dead. Taken over only from the lease just read, so that of
            // two workers taking over, one wins.
            let takeover = Cond::new("#state = :claimed AND #lease = :seen")
                .name("#state", STATE)
                .name("#lease", LEASE_UNTIL)
                .value(":claimed", s("claimed"))
                .value(":seen", n(held_until));
            return Ok(match self.put_if(OP, claim_item(key, lease_until), takeover).await? {
                Ok(()) => EffectClaim::Claimed,
                Err(_) => EffectClaim::Busy,
            });
        }
        Ok(EffectClaim::Busy)
    }

    async fn finish_effect(&self, lead: LeadId, key: &str, detail: &str, trail: &[Activity]) -> Result<(), StoreError> {
        let mut item = Item::from([
            (PK.into(), s(lead_pk(lead))),
            (SK.into(), s(effect_key(key))),
            (STATE.into(), s("done")),
            (DETAIL.into(), s(detail)),
        ]);
        item.extend(entry_attributes(trail)?);
        // Unconditional: the effect happened, so it is remembered whatever became of the claim.
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| unavailable("finish effect", &e))?;
        Ok(())
    }

    async fn release_effect(&self, key: &str, lease_until: DateTime<Utc>) -> Result<(), StoreError> {
        // Only the claim this worker took: not one taken over since, nor a finished one.
        let ours = Cond::new("#state = :claimed AND #lease = :ours")
            .name("#state", STATE)
            .name("#lease", LEASE_UNTIL)
            .value(":claimed", s("claimed"))
            .value(":ours", n(lease_until.timestamp_millis()));
        self.delete_if("release effect", effect_key(key), NO_SORT, ours).await
    }
}

/// `EFFECT#<key>`: the claim's partition key, and the record's sort key in its lead's partition.
fn effect_key(key: &str) -> String {
    format!("{EFFECT_PREFIX}{key}")
}

/// The item of a live claim on `key` (also taken inside an assignment's transaction).
pub(super) fn claim_item(key: &str, lease_until: DateTime<Utc>) -> Item {
    Item::from([
        (PK.into(), s(effect_key(key))),
        (SK.into(), s(NO_SORT)),
        (STATE.into(), s("claimed")),
        (LEASE_UNTIL.into(), n(lease_until.timestamp_millis())),
    ])
}
