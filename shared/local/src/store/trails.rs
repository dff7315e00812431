//! The SQLite store: the [`Trails`] role.

use leadflow_core::ports::Trails;

use super::*;

// The bodies are synchronous and run when the future is first polled; none holds the
// connection across an await, because there is none.
impl Trails for SqliteStore {
    async fn record_activity(&self, activity: &Activity) -> Result<(), StoreError> {
        let row = ActivityRow::of(activity)?;
        self.db
            .read(|c| {
                write_activities(c, std::slice::from_ref(&row), OnSameId::KeepFirst)?;
                Ok(())
            })
            .map_err(|e| self.db.store_error(e))
    }

    async fn activities(&self, lead_id: LeadId) -> Result<Vec<Activity>, StoreError> {
        self.db.read(|c| read_trail(c, lead_id)).map_err(|e| self.db.store_error(e))
    }

    /// One lock and one prepared statement for all of them.
    async fn trails(&self, lead_ids: &[LeadId]) -> Result<Vec<Vec<Activity>>, StoreError> {
        self.db.read(|c| lead_ids.iter().map(|id| read_trail(c, *id)).collect()).map_err(|e| self.db.store_error(e))
    }
}
