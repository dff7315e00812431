//! The SQLite store: the [`Assignments`] role.

use leadflow_core::ports::Assignments;

use super::*;

// The bodies are synchronous and run when the future is first polled; none holds the
// connection across an await, because there is none.
impl Assignments for SqliteStore {
    async fn team_cursor(&self, team_id: &str) -> Result<TeamCursor, StoreError> {
        self.db
            .read(|c| {
                let row: Option<(i64, String)> = c
                    .prepare_cached("SELECT version, doc FROM team_cursors WHERE team_id = ?1")?
                    .query_row([team_id], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()?;
                let Some((version, doc)) = row else {
                    return Ok(TeamCursor::default());
                };
                let what = format!("team cursor {team_id}");
                let mut cursor: TeamCursor = from_doc(&what, &doc)?;
                cursor.version = from_sql_u64(&what, version)?;
                Ok(cursor)
            })
            .map_err(|e| self.db.store_error(e))
    }

    async fn rep_loads(&self) -> Result<BTreeMap<RepId, u32>, StoreError> {
        self.db
            .read(|c| {
                let mut stmt = c.prepare_cached(SELECT_REP_LOADS)?;
                let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
                let mut out = BTreeMap::new();
                for row in rows {
                    let (rep, n) = row?;
                    out.insert(rep, u32::try_from(n).unwrap_or(u32::MAX));
                }
                Ok(out)
            })
            .map_err(|e| self.db.store_error(e))
    }

    async fn assign(&self, write: &AssignmentWrite) -> Result<AssignOutcome, StoreError> {
        let row = LeadRow::of(&write.lead, write.expected_lead_version.saturating_add(1))?;
        let cursor = match &write.team_cursor {
            Some((team_id, cursor)) => {
                let next = TeamCursor { credit: cursor.credit.clone(), version: cursor.version.saturating_add(1) };
                Some((team_id.as_str(), cursor.version, to_sql_int(next.version), to_doc("team cursor", &next)?))
            }
            None => None,
        };
        let trail = ActivityRow::all(&write.trail)?;
        self.db
            .write(|tx| {
                // Every check comes before the first write, so a conflict leaves nothing to undo.
                if let Some((team_id, expected, _, _)) = &cursor {
                    let stored: Option<i64> = tx
                        .prepare_cached("SELECT version FROM team_cursors WHERE team_id = ?1")?
                        .query_row([team_id], |r| r.get(0))
                        .optional()?;
                    // An absent cursor is the default one, version 0.
                    if stored.unwrap_or(0) != to_sql_int(*expected) {
                        return Ok(AssignOutcome::Conflict);
                    }
                }
                if let Some(claim) = &write.claim {
                    let held: Option<i64> = tx
                        .prepare_cached("SELECT 1 FROM effects WHERE key = ?1")?
                        .query_row([&claim.key], |r| r.get(0))
                        .optional()?;
                    if held.is_some() {
                        return Ok(AssignOutcome::Conflict);
                    }
                }
                if update_lead_row(tx, &row, write.expected_lead_version)? != 1 {
                    return Ok(AssignOutcome::Conflict);
                }
                if let Some(claim) = &write.claim {
                    tx.prepare_cached(
                        "INSERT INTO effects (key, state, lease_until, detail) VALUES (?1, 'claimed', ?2, NULL)",
                    )?
                    .execute(params![claim.key, millis(claim.lease_until)])?;
                }
                if let Some((team_id, _, version, doc)) = &cursor {
                    tx.prepare_cached(
                        "INSERT INTO team_cursors (team_id, version, doc) VALUES (?1, ?2, ?3) \
                         ON CONFLICT (team_id) \
                         DO UPDATE SET version = excluded.version, doc = excluded.doc",
                    )?
                    .execute(params![team_id, version, doc])?;
                }
                write_activities(tx, &trail, OnSameId::Replace)?;
                Ok(AssignOutcome::Assigned)
            })
            .map_err(|e| self.db.store_error(e))
    }

    async fn due_slas(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<LeadId>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.db
            .read(|c| {
                let mut stmt = c.prepare_cached(SELECT_DUE_SLAS)?;
                let rows = stmt.query_map(params![nanos(now), limit], |r| r.get::<_, String>(0))?;
                let mut out = Vec::new();
                for row in rows {
                    out.push(parse_lead_id("SLA index", &row?)?);
                }
                Ok(out)
            })
            .map_err(|e| self.db.store_error(e))
    }
}
