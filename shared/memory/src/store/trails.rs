//! The in-memory store: the [`Trails`] role.

use leadflow_core::ports::Trails;

use super::*;

impl Trails for MemoryStore {
    fn record_activity(&self, a: &Activity) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.with(|s| {
            s.activities.entry((a.lead_id, a.id.clone())).or_insert_with(|| a.clone());
        })
    }

    fn activities(&self, lead_id: LeadId) -> impl Future<Output = Result<Vec<Activity>, StoreError>> + Send {
        self.with(|s| trail_of(s, lead_id))
    }

    fn trails(&self, lead_ids: &[LeadId]) -> impl Future<Output = Result<Vec<Vec<Activity>>, StoreError>> + Send {
        self.with(|s| lead_ids.iter().map(|id| trail_of(s, *id)).collect())
    }
}
