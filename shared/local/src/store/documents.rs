//! The SQLite store: the [`Documents`] role.

use leadflow_core::ports::Documents;

use super::*;

// The bodies are synchronous and run when the future is first polled; none holds the
// connection across an await, because there is none.
impl Documents for SqliteStore {
    async fn put_document(&self, doc: &Document) -> Result<WriteOutcome, StoreError> {
        let text = to_doc("document", doc)?;
        self.db
            .write(|tx| {
                let latest: Option<i64> = tx
                    .prepare_cached("SELECT MAX(version) FROM documents WHERE name = ?1")?
                    .query_row([&doc.name], |r| r.get(0))?;
                if i64::from(doc.version) != latest.unwrap_or(0).saturating_add(1) {
                    return Ok(WriteOutcome::VersionConflict);
                }
                tx.prepare_cached("INSERT INTO documents (name, version, doc) VALUES (?1, ?2, ?3)")?
                    .execute(params![doc.name, doc.version, text])?;
                Ok(WriteOutcome::Written)
            })
            .map_err(|e| self.db.store_error(e))
    }

    async fn document(&self, name: &str, version: Option<u32>) -> Result<Option<Document>, StoreError> {
        self.db
            .read(|c| {
                let doc: Option<String> = match version {
                    Some(v) => c
                        .prepare_cached("SELECT doc FROM documents WHERE name = ?1 AND version = ?2")?
                        .query_row(params![name, v], |r| r.get(0))
                        .optional()?,
                    None => c
                        .prepare_cached("SELECT doc FROM documents WHERE name = ?1 ORDER BY version DESC LIMIT 1")?
                        .query_row([name], |r| r.get(0))
                        .optional()?,
                };
                doc.map(|d| from_doc("document", &d)).transpose()
            })
            .map_err(|e| self.db.store_error(e))
    }

    async fn latest_documents(&self, prefix: &str) -> Result<Vec<Document>, StoreError> {
        self.db
            .read(|c| {
                // Names compare bytewise in SQLite and in Rust alike, so the names with the prefix
                // are one run starting at the prefix: read from there and stop after the run.
                let mut stmt =
                    c.prepare_cached("SELECT name, doc FROM documents WHERE name >= ?1 ORDER BY name, version DESC")?;
                let mut rows = stmt.query([prefix])?;
                let mut out: Vec<Document> = Vec::new();
                while let Some(row) = rows.next()? {
                    let name: String = row.get(0)?;
                    if !name.starts_with(prefix) {
                        break;
                    }
                    if out.last().is_some_and(|d| d.name == name) {
                        continue; // an older version
                    }
                    let doc: String = row.get(1)?;
                    out.push(from_doc("document", &doc)?);
                }
                Ok(out)
            })
            .map_err(|e| self.db.store_error(e))
    }
}
