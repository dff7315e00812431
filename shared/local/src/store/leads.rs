//! The SQLite store: the [`Leads`] role.

use leadflow_core::ports::Leads;

use super::*;

// The bodies are synchronous and run when the future is first polled; none holds the
// connection across an await, because there is none.
impl Leads for SqliteStore {
    async fn claim_idempotency_key(
        &self,
        key: &str,
        lead_id: LeadId,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<IdempotencyClaim, StoreError> {
        let now = millis(now);
        self.db
            .write(|tx| {
                let held: Option<(String, i64)> = tx
                    .prepare_cached("SELECT lead_id, expires_at FROM idempotency_keys WHERE key = ?1")?
                    .query_row([key], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()?;
                // Free again only once the binding expired before `now`.
                if let Some((id, until)) = held
                    && until >= now
                {
                    return Ok(IdempotencyClaim::Seen(parse_lead_id("idempotency key", &id)?));
                }
                tx.prepare_cached(
                    "INSERT OR REPLACE INTO idempotency_keys (key, lead_id, expires_at) \
                     VALUES (?1, ?2, ?3)",
                )?
                .execute(params![key, lead_id.to_string(), millis(expires_at)])?;
                Ok(IdempotencyClaim::Claimed)
            })
            .map_err(|e| self.db.store_error(e))
    }

    async fn create_lead(&self, lead: &Lead, trail: &[Activity]) -> Result<CreateOutcome, StoreError> {
        // Computed before the lock is taken: should it panic, the connection stays usable.
        let key = lead.is_valid().then(|| email_key(&lead.contact.email));
        let row = LeadRow::of(lead, lead.version)?;
        let trail = ActivityRow::all(trail)?;
        self.db
            .write(|tx| {
                let exists = tx
                    .prepare_cached(
                        "SELECT 1 FROM leads WHERE id = ?1 UNION ALL SELECT 1 FROM aliases WHERE alias = ?1",
                    )?
                    .query_row([&row.id], |_| Ok(()))
                    .optional()?
                    .is_some();
                if exists {
                    return Ok(CreateOutcome::AlreadyExists);
                }
                if let Some(key) = &key {
                    let owner: Option<String> = tx
                        .prepare_cached("SELECT lead_id FROM email_keys WHERE key = ?1")?
                        .query_row([key], |r| r.get(0))
                        .optional()?;
                    if let Some(owner) = owner {
                        return Ok(CreateOutcome::EmailTaken(parse_lead_id("email key", &owner)?));
                    }
                }
                tx.prepare_cached(
                    "INSERT INTO leads (id, version, owner_rep, status, doc, sla_due_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )?
                .execute(params![
                    row.id,
                    row.version,
                    row.owner_rep,
                    row.status,
                    row.doc,
                    row.sla_due_at
                ])?;
                if let Some(key) = &key {
                    tx.prepare_cached("INSERT INTO email_keys (key, lead_id) VALUES (?1, ?2)")?
                        .execute(params![key, row.id])?;
                }
                write_activities(tx, &trail, OnSameId::Replace)?;
                Ok(CreateOutcome::Created)
            })
            .map_err(|e| self.db.store_error(e))
    }

    async fn update_lead(
        &self,
        lead: &Lead,
        expected_version: u64,
        trail: &[Activity],
    ) -> Result<WriteOutcome, StoreError> {
        let row = LeadRow::of(lead, expected_version.saturating_add(1))?;
        let trail = ActivityRow::all(trail)?;
        self.db
            .write(|tx| {
                if update_lead_row(tx, &row, expected_version)? != 1 {
                    return Ok(WriteOutcome::VersionConflict);
                }
                write_activities(tx, &trail, OnSameId::Replace)?;
                Ok(WriteOutcome::Written)
            })
            .map_err(|e| self.db.store_error(e))
    }

    async fn record_alias(&self, alias: LeadId, into: LeadId) -> Result<bool, StoreError> {
        self.db
            .read(|c| {
                let n = c
                    .prepare_cached("INSERT OR IGNORE INTO aliases (alias, into_id) VALUES (?1, ?2)")?
                    .execute(params![alias.to_string(), into.to_string()])?;
                Ok(n == 1)
            })
            .map_err(|e| self.db.store_error(e))
    }

    async fn resolve_lead(&self, id: LeadId) -> Result<Option<LeadId>, StoreError> {
        let id_text = id.to_string();
        self.db
            .read(|c| {
                let exists = c
                    .prepare_cached("SELECT 1 FROM leads WHERE id = ?1")?
                    .query_row([&id_text], |_| Ok(()))
                    .optional()?;
                if exists.is_some() {
                    return Ok(Some(id));
                }
                let into: Option<String> = c
                    .prepare_cached("SELECT into_id FROM aliases WHERE alias = ?1")?
                    .query_row([&id_text], |r| r.get(0))
                    .optional()?;
                into.map(|t| parse_lead_id("alias", &t)).transpose()
            })
            .map_err(|e| self.db.store_error(e))
    }

    async fn get_lead(&self, id: LeadId) -> Result<Option<Lead>, StoreError> {
        let id_text = id.to_string();
        self.db
            .read(|c| {
                let row: Option<(i64, String)> = c
                    .prepare_cached("SELECT version, doc FROM leads WHERE id = ?1")?
                    .query_row([&id_text], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()?;
                row.map(|(version, doc)| lead_from_row(&id_text, version, &doc)).transpose()
            })
            .map_err(|e| self.db.store_error(e))
    }

    async fn find_by_email_key(&self, key: &str) -> Result<Option<LeadId>, StoreError> {
        self.db
            .read(|c| {
                let id: Option<String> = c
                    .prepare_cached("SELECT lead_id FROM email_keys WHERE key = ?1")?
                    .query_row([key], |r| r.get(0))
                    .optional()?;
                id.map(|t| parse_lead_id("email key", &t)).transpose()
            })
            .map_err(|e| self.db.store_error(e))
    }

    async fn erase_lead(&self, tombstone: &Lead, email_key: Option<&str>) -> Result<(), StoreError> {
        let row = LeadRow::of(tombstone, tombstone.version)?;
        self.db
            .write(|tx| {
                let stored: Option<(i64, String)> = tx
                    .prepare_cached("SELECT version, doc FROM leads WHERE id = ?1")?
                    .query_row([&row.id], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()?;
                // A lead that is not there is not created by its erasure, nor is a tombstone
                // written again; the rest is deleted all the same.
                let live = match stored {
                    Some((version, doc)) => {
                        let lead = lead_from_row(&row.id, version, &doc)?;
                        (!is_erased(&lead)).then_some(version)
                    }
                    None => None,
                };
                if let Some(stored) = live {
                    let stored = from_sql_u64("lead", stored)?;
                    let next = stored.saturating_add(1);
                    // The tombstone names the stored version + 1. Should a write have come in
                    // since it was read, the erasure still wins, one version further on, so that
                    // the writer's conditional write fails and it reads the tombstone.
                    let row = if to_sql_int(next) == row.version {
                        row
                    } else {
                        LeadRow::of(tombstone, next).map_err(|e| DbError::Corrupt(e.to_string()))?
                    };
                    // The rep_loads triggers take the lead off its owner's count: the tombstone
                    // has no owner. sla_due_at is NULL with it.
                    update_lead_row(tx, &row, stored)?;
                }
                let id = tombstone.id.to_string();
                if let Some(key) = email_key {
                    tx.prepare_cached("DELETE FROM email_keys WHERE key = ?1 AND lead_id = ?2")?
                        .execute(params![key, id])?;
                }
                tx.prepare_cached("DELETE FROM activities WHERE lead_id = ?1")?.execute([&id])?;
                Ok(())
            })
            .map_err(|e| self.db.store_error(e))
    }
}
