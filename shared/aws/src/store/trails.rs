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
        trail_of(lead_id, &self.trail_items(lead_id).await?)
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

    async fn lead_and_trail(&self, lead_id: LeadId) -> Result<Option<(Lead, Vec<Activity>)>, StoreError>
    where
        Self: leadflow_core::ports::Leads,
    {
        // The lead item is in the trail's Query anyway: it holds the lead's first entries.
        let items = self.trail_items(lead_id).await?;
        let Some(profile) = items.iter().find(|item| str_attr(item, SK) == Some(PROFILE)) else {
            return Ok(None);
        };
        Ok(Some((lead_of(profile)?, trail_of(lead_id, &items)?)))
    }
}

/// The trail in `items` (the lead's activity items, its effects' records and its own item),
/// oldest first.
fn trail_of(lead_id: LeadId, items: &[Item]) -> Result<Vec<Activity>, StoreError> {
    let mut inline = Vec::new();
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let sk = str_attr(item, SK).unwrap_or_default();
        if sk == PROFILE || sk.starts_with(EFFECT_PREFIX) {
            inline.extend(entries_of(item, lead_id)?);
        } else {
            out.push(decode::<Activity>(item, "activity")?);
        }
    }
    // An id in two places was written twice, and a second write of an id replaces the first:
    // an entry inside an item came from one of the lead's first three writes or from an
    // effect's record, so the other is the later one unless it tells of an earlier time.
    for entry in inline {
        match out.iter_mut().find(|a| a.id == entry.id) {
            Some(beside) if beside.at < entry.at => *beside = entry,
            Some(_) => {}
            None => out.push(entry),
        }
    }
    // The sort key holds the id only (redeliveries may carry another time), so time order is
    // restored here.
    out.sort_by(|a, b| (a.at, &a.id).cmp(&(b.at, &b.id)));
    Ok(out)
}
