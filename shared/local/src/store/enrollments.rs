//! The SQLite store: the [`Enrollments`] role.

use leadflow_core::ports::Enrollments;

use super::*;

// The bodies are synchronous and run when the future is first polled; none holds the
// connection across an await, because there is none.
impl Enrollments for SqliteStore {
    async fn enroll(&self, enrollment: &Enrollment, trail: &[Activity]) -> Result<bool, StoreError> {
        let row = EnrollmentRow::of(enrollment, enrollment.version)?;
        let trail = ActivityRow::all(trail)?;
        self.db
            .write(|tx| {
                let n = tx
                    .prepare_cached(
                        "INSERT OR IGNORE INTO enrollments \
                         (lead_id, campaign_id, version, next_due_at, doc) \
                         VALUES (?1, ?2, ?3, ?4, ?5)",
                    )?
                    .execute(params![row.lead_id, enrollment.campaign_id, row.version, row.next_due_at, row.doc])?;
                if n == 1 {
                    write_activities(tx, &trail, OnSameId::Replace)?;
                }
                Ok(n == 1)
            })
            .map_err(|e| self.db.store_error(e))
    }

    async fn enrollments(&self, lead_id: LeadId) -> Result<Vec<Enrollment>, StoreError> {
        self.db
            .read(|c| {
                let mut stmt =
                    c.prepare_cached("SELECT version, doc FROM enrollments WHERE lead_id = ?1 ORDER BY campaign_id")?;
                read_enrollments(stmt.query_map([lead_id.to_string()], enrollment_cols)?)
            })
            .map_err(|e| self.db.store_error(e))
    }

    async fn due_enrollments(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<Enrollment>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.db
            .read(|c| {
                let mut stmt = c.prepare_cached(SELECT_DUE)?;
                read_enrollments(stmt.query_map(params![millis(now), limit], enrollment_cols)?)
            })
            .map_err(|e| self.db.store_error(e))
    }

    async fn update_enrollment(
        &self,
        enrollment: &Enrollment,
        expected_version: u64,
        trail: &[Activity],
    ) -> Result<WriteOutcome, StoreError> {
        let row = EnrollmentRow::of(enrollment, expected_version.saturating_add(1))?;
        let trail = ActivityRow::all(trail)?;
        self.db
            .write(|tx| {
                let n = tx
                    .prepare_cached(
                        "UPDATE enrollments SET version = ?3, next_due_at = ?4, doc = ?5 \
                         WHERE lead_id = ?1 AND campaign_id = ?2 AND version = ?6",
                    )?
                    .execute(params![
                        row.lead_id,
                        enrollment.campaign_id,
                        row.version,
                        row.next_due_at,
                        row.doc,
                        to_sql_int(expected_version)
                    ])?;
                if n != 1 {
                    return Ok(WriteOutcome::VersionConflict);
                }
                write_activities(tx, &trail, OnSameId::Replace)?;
                Ok(WriteOutcome::Written)
            })
            .map_err(|e| self.db.store_error(e))
    }

    async fn campaign_enrollments(
        &self,
        campaign_id: &str,
        cursor: Option<String>,
        limit: usize,
    ) -> Result<EnrollmentPage, StoreError> {
        // The cursor is the lead id of the last enrollment handed out.
        let after = lead_cursor(cursor, "", "campaign enrollment")?;
        let (limit, fetch) = page_size(limit);
        self.db
            .read(|c| {
                let mut stmt = c.prepare_cached(SELECT_CAMPAIGN_ENROLLMENT_PAGE)?;
                let rows = stmt.query_map(params![campaign_id, after, fetch], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?, r.get::<_, String>(2)?))
                })?;
                let mut page = rows.collect::<rusqlite::Result<Vec<_>>>()?;
                let next = cut_page(&mut page, limit, |(lead_id, _, _)| lead_id.clone());
                let enrollments = read_enrollments(page.into_iter().map(|(_, version, doc)| Ok((version, doc))))?;
                Ok(EnrollmentPage { enrollments, next })
            })
            .map_err(|e| self.db.store_error(e))
    }
}
