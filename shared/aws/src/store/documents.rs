//! The DynamoDB store: the [`Documents`] role.

use leadflow_core::ports::Documents;

use super::*;

impl Documents for DynamoStore {
    async fn put_document(&self, doc: &Document) -> Result<WriteOutcome, StoreError> {
        const OP: &str = "put document";
        if doc.name.is_empty() {
            return Err(StoreError::Corrupt(format!("{OP}: a document needs a name")));
        }
        // Versions count from 1: version 0 is never the next one.
        let Some(previous) = doc.version.checked_sub(1) else {
            return Ok(WriteOutcome::VersionConflict);
        };
        let body = encode(doc, "document")?;
        let version_item = Item::from([
            (PK.into(), s(doc_pk(&doc.name))),
            (SK.into(), s(doc_sk(doc.version))),
            (DOC.into(), s(&body)),
            (VERSION.into(), n(doc.version)),
        ]);
        let latest_item = Item::from([
            (PK.into(), s(DOCS)),
            (SK.into(), s(&doc.name)),
            (DOC.into(), s(body)),
            (VERSION.into(), n(doc.version)),
        ]);
        let absent = || Cond::new("attribute_not_exists(#pk)").name("#pk", PK);
        let follows_latest = if previous == 0 {
            absent()
        } else {
            Cond::new("#v = :previous").name("#v", VERSION).value(":previous", n(previous))
        };
        let items =
            vec![absent().put(&self.table, version_item, false)?, follows_latest.put(&self.table, latest_item, false)?];
        // Cancelled: another writer stored this version first (or is storing it right now).
        Ok(match self.transact(OP, items).await? {
            None => WriteOutcome::Written,
            Some(_) => WriteOutcome::VersionConflict,
        })
    }

    async fn document(&self, name: &str, version: Option<u32>) -> Result<Option<Document>, StoreError> {
        const OP: &str = "document";
        if name.is_empty() {
            return Ok(None);
        }
        let found = match version {
            None => self.get_item(OP, DOCS.to_string(), name).await?,
            Some(v) => self.get_item(OP, doc_pk(name), &doc_sk(v)).await?,
        };
        found.map(|item| decode(&item, "document")).transpose()
    }

    async fn latest_documents(&self, prefix: &str) -> Result<Vec<Document>, StoreError> {
        const OP: &str = "latest documents";
        let mut docs = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let mut query = self
                .client
                .query()
                .table_name(&self.table)
                .expression_attribute_names("#pk", PK)
                .expression_attribute_values(":pk", s(DOCS))
                .consistent_read(true)
                .set_exclusive_start_key(start.take());
            // DynamoDB refuses an empty string as a key condition value: no prefix, no condition.
            query = if prefix.is_empty() {
                query.key_condition_expression("#pk = :pk")
            } else {
                query
                    .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
                    .expression_attribute_names("#sk", SK)
                    .expression_attribute_values(":prefix", s(prefix))
            };
            let out = query.send().await.map_err(|e| unavailable(OP, &e))?;
            // The sort key is the name: the items come in name order.
            for item in out.items.unwrap_or_default() {
                docs.push(decode(&item, "document")?);
            }
            match out.last_evaluated_key {
                Some(key) => start = Some(key),
                None => return Ok(docs),
            }
        }
    }
}
