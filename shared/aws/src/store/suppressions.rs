//! The DynamoDB store: the [`Suppressions`] role.

use leadflow_core::ports::Suppressions;

use super::*;
use leadflow_core::ports::Trails;

impl Suppressions for DynamoStore {
    async fn suppress(&self, entry: &Suppression, trail: &[Activity]) -> Result<bool, StoreError> {
        let mut item = Item::from([
            (PK.into(), s(suppress_pk(&entry.email_key))),
            (SK.into(), s(NO_SORT)),
            (DOC.into(), s(encode(entry, "suppression")?)),
            (REASON.into(), s(entry.reason.as_str())),
            (AT.into(), n(entry.at.timestamp_millis())),
        ]);
        item.extend(listing_index::suppression_keys(entry));
        // The first entry wins: its reason and time are what the list keeps.
        let cond = Cond::new("attribute_not_exists(#pk)").name("#pk", PK);
        if trail.is_empty() {
            return Ok(self.put_if("suppress", item, cond).await?.is_ok());
        }
        if self.put_with_trail("suppress", item, cond, trail).await? {
            return Ok(true);
        }
        // Suppressed before: the trail still tells this opt-out, on its own, and an entry the
        // lead has already stays as it was.
        for a in trail {
            self.record_activity(a).await?;
        }
        Ok(false)
    }

    async fn suppression(&self, email_key: &str) -> Result<Option<Suppression>, StoreError> {
        let Some(item) = self.get_item("suppression", suppress_pk(email_key), NO_SORT).await? else {
            return Ok(None);
        };
        decode(&item, "suppression").map(Some)
    }

    async fn suppressions(&self, cursor: Option<String>, limit: usize) -> Result<SuppressionPage, StoreError> {
        self.suppressions_page(cursor, limit).await
    }
}
