//! The DynamoDB store: the [`Trails`] role.

use leadflow_core::ports::Trails;

use super::*;

impl Trails for DynamoStore {
    async fn record_activity(&self, activity: &Activity) -> Result<(), StoreError> {
        let item = activity_item(activity)?;
        let cond = Cond::new("attribute_not_exists(#pk)").name("#pk", PK);
        // A condition failure is the activity recorded already: nothing to do.
        self.put_if("record activity", item, cond).await.map(|_| ())
    }

    async fn activities(&self, lead_id: LeadId) -> Result<Vec<Activity>, StoreError> {
        let items = self.query_prefix("activities", lead_id, ACT_PREFIX).await?;
        let mut out = Vec::with_capacity(items.len());
        for item in &items {
            out.push(decode::<Activity>(item, "activity")?);
        }
        // The sort key holds the id only (redeliveries may carry another time), so time order
        // is restored here.
        out.sort_by(|a, b| (a.at, &a.id).cmp(&(b.at, &b.id)));
        Ok(out)
    }

    async fn trails(&self, lead_ids: &[LeadId]) -> Result<Vec<Vec<Activity>>, StoreError> {
        use futures_util::{StreamExt, TryStreamExt};
        // One Query per lead; a few in flight keep a thousand from taking a thousand round trips.
        let ids: Vec<LeadId> = lead_ids.to_vec();
        futures_util::stream::iter(ids.into_iter().map(|id| async move { self.activities(id).await }))
            .buffered(TRAILS_IN_FLIGHT)
            .try_collect()
            .await
    }
}
