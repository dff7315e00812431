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

/// The trail in `items` (the lead's activity items and its own item), oldest first.
fn trail_of(lead_id: LeadId, items: &[Item]) -> Result<Vec<Activity>, StoreError> {
    let mut inline = Vec::new();
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        if str_attr(item, SK) == Some(PROFILE) {
            inline = entries_of(item, lead_id)?;
        } else {
            out.push(decode::<Activity>(item, "activity")?);
        }
    }
    // An id in both places was written twice, and a second write of an id replaces the first:
    // the item's entry came from one of the lead's first three writes, so the other is the later
    // one unless it tells of an earlier time.
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

impl DynamoStore {
    /// The lead's activity items and its own item (which holds its first entries), in one Query:
    /// in sort key order they span `ACT#…` to `PROFILE`; the alias and enrollments between are
    /// left out by the filter.
    async fn trail_items(&self, lead_id: LeadId) -> Result<Vec<Item>, StoreError> {
        const OP: &str = "activities";
        let mut items = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("#pk = :pk AND #sk BETWEEN :first AND :profile")
                .filter_expression("begins_with(#sk, :first) OR #sk = :profile")
                .expression_attribute_names("#pk", PK)
                .expression_attribute_names("#sk", SK)
                .expression_attribute_values(":pk", s(lead_pk(lead_id)))
                .expression_attribute_values(":first", s(ACT_PREFIX))
                .expression_attribute_values(":profile", s(PROFILE))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| unavailable(OP, &e))?;
            items.extend(out.items.unwrap_or_default());
            match out.last_evaluated_key {
                Some(key) => start = Some(key),
                None => return Ok(items),
            }
        }
    }
}
