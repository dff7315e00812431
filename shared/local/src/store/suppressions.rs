//! The SQLite store: the [`Suppressions`] role.

use leadflow_core::ports::Suppressions;

use super::*;

// The bodies are synchronous and run when the future is first polled; none holds the
// connection across an await, because there is none.
impl Suppressions for SqliteStore {
    async fn suppress(&self, entry: &Suppression, trail: &[Activity]) -> Result<bool, StoreError> {
        let doc = to_doc("suppression", entry)?;
        let trail = ActivityRow::all(trail)?;
        self.db
            .write(|tx| {
                // OR IGNORE: the first entry and its reason stay.
                let n = tx
                    .prepare_cached(
                        "INSERT OR IGNORE INTO suppressions (email_key, reason, doc, at_ms) VALUES (?1, ?2, ?3, ?4)",
                    )?
                    .execute(params![entry.email_key, entry.reason.as_str(), doc, suppression_at(entry)])?;
                // The first entry of an id stays, as with record_activity.
                write_activities(tx, &trail, OnSameId::KeepFirst)?;
                Ok(n == 1)
            })
            .map_err(|e| self.db.store_error(e))
    }

    async fn suppression(&self, email_key: &str) -> Result<Option<Suppression>, StoreError> {
        self.db
            .read(|c| {
                let doc: Option<String> = c
                    .prepare_cached("SELECT doc FROM suppressions WHERE email_key = ?1")?
                    .query_row([email_key], |r| r.get(0))
                    .optional()?;
                doc.map(|d| from_doc("suppression", &d)).transpose()
            })
            .map_err(|e| self.db.store_error(e))
    }

    async fn suppressions(&self, cursor: Option<String>, limit: usize) -> Result<SuppressionPage, StoreError> {
        let after = cursor
            .map(|c| {
                SuppressionPosition::parse(&c).ok_or_else(|| {
                    StoreError::Corrupt("the suppression list cursor is not one this store handed out".into())
                })
            })
            .transpose()?;
        let (limit, fetch) = page_size(limit);
        self.db
            .read(|c| {
                let cols =
                    |r: &rusqlite::Row<'_>| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?));
                let mut page: Vec<(i64, String, String)> = match &after {
                    None => c
                        .prepare_cached(SELECT_SUPPRESSIONS)?
                        .query_map(params![fetch], cols)?
                        .collect::<rusqlite::Result<_>>()?,
                    Some(a) => c
                        .prepare_cached(SELECT_SUPPRESSIONS_AFTER)?
                        .query_map(params![a.at_ms, a.email_key, fetch], cols)?
                        .collect::<rusqlite::Result<_>>()?,
                };
                // The cursor is the stored column, not a time read back from the document: the
                // next page compares against the column.
                let next = cut_page(&mut page, limit, |(at_ms, key, _)| {
                    SuppressionPosition { at_ms: *at_ms, email_key: key.clone() }.cursor()
                });
                let mut entries = Vec::with_capacity(page.len());
                for (_, _, doc) in page {
                    entries.push(from_doc("suppression", &doc)?);
                }
                Ok(SuppressionPage { entries, next })
            })
            .map_err(|e| self.db.store_error(e))
    }
}
