//! The in-memory store: the [`Documents`] role.

use leadflow_core::ports::Documents;

use super::*;

impl Documents for MemoryStore {
    fn put_document(&self, doc: &Document) -> impl Future<Output = Result<WriteOutcome, StoreError>> + Send {
        self.with(|s| {
            let latest = latest_version(&s.documents, &doc.name).unwrap_or(0);
            if latest.checked_add(1) == Some(doc.version) {
                s.documents.insert((doc.name.clone(), doc.version), doc.clone());
                WriteOutcome::Written
            } else {
                WriteOutcome::VersionConflict
            }
        })
    }

    fn document(
        &self,
        name: &str,
        version: Option<u32>,
    ) -> impl Future<Output = Result<Option<Document>, StoreError>> + Send {
        self.with(|s| {
            let version = version.or_else(|| latest_version(&s.documents, name))?;
            s.documents.get(&(name.to_string(), version)).cloned()
        })
    }

    fn latest_documents(&self, prefix: &str) -> impl Future<Output = Result<Vec<Document>, StoreError>> + Send {
        self.with(|s| {
            let mut latest: BTreeMap<&str, &Document> = BTreeMap::new();
            for ((name, _), doc) in s.documents.range((prefix.to_string(), 0)..) {
                if !name.starts_with(prefix) {
                    break;
                }
                // Versions ascend within a name: the last one seen is the latest.
                latest.insert(name, doc);
            }
            latest.into_values().cloned().collect()
        })
    }
}
