//! The SQLite store: the [`Effects`] role.

use leadflow_core::ports::Effects;

use super::*;

// The bodies are synchronous and run when the future is first polled; none holds the
// connection across an await, because there is none.
impl Effects for SqliteStore {
    async fn claim_effect(
        &self,
        _lead: LeadId,
        key: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<EffectClaim, StoreError> {
        let (now, lease_until) = (millis(now), millis(lease_until));
        self.db
            .write(|tx| {
                let held: Option<(String, i64, Option<String>)> = tx
                    .prepare_cached("SELECT state, lease_until, detail FROM effects WHERE key = ?1")?
                    .query_row([key], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                    .optional()?;
                match held {
                    Some((state, _, detail)) if state == "done" => {
                        return Ok(EffectClaim::Done(detail.unwrap_or_default()));
                    }
                    Some((_, until, _)) if until > now => return Ok(EffectClaim::Busy),
                    // Absent, or claimed by someone whose lease ran out: presumed dead.
                    _ => {}
                }
                tx.prepare_cached(
                    "INSERT OR REPLACE INTO effects (key, state, lease_until, detail) \
                     VALUES (?1, 'claimed', ?2, NULL)",
                )?
                .execute(params![key, lease_until])?;
                Ok(EffectClaim::Claimed)
            })
            .map_err(|e| self.db.store_error(e))
    }

    async fn finish_effect(
        &self,
        _lead: LeadId,
        key: &str,
        detail: &str,
        trail: &[Activity],
    ) -> Result<(), StoreError> {
        let trail = ActivityRow::all(trail)?;
        self.db
            .write(|tx| {
                // An upsert, not an update: the effect happened, so it must be remembered even if
                // the claim was lost in between (taken over, or released by mistake).
                tx.prepare_cached(
                    "INSERT INTO effects (key, state, lease_until, detail) \
                     VALUES (?1, 'done', 0, ?2) \
                     ON CONFLICT (key) DO UPDATE SET state = 'done', detail = excluded.detail",
                )?
                .execute(params![key, detail])?;
                write_activities(tx, &trail, OnSameId::Replace)?;
                Ok(())
            })
            .map_err(|e| self.db.store_error(e))
    }

    async fn release_effect(&self, key: &str, lease_until: DateTime<Utc>) -> Result<(), StoreError> {
        let lease_until = millis(lease_until);
        self.db
            .read(|c| {
                c.prepare_cached("DELETE FROM effects WHERE key = ?1 AND state = 'claimed' AND lease_until = ?2")?
                    .execute(params![key, lease_until])?;
                Ok(())
            })
            .map_err(|e| self.db.store_error(e))
    }
}
