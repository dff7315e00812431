//! The SQLite store: the [`Listings`] role.

use leadflow_core::ports::Listings;

use super::*;

// The bodies are synchronous and run when the future is first polled; none holds the
// connection across an await, because there is none.
impl Listings for SqliteStore {
    async fn list_leads(&self, cursor: Option<String>, limit: usize) -> Result<LeadPage, StoreError> {
        let after = lead_cursor(cursor, "", "lead listing")?;
        let (limit, fetch) = page_size(limit);
        self.db
            .read(|c| {
                let mut stmt = c.prepare_cached(SELECT_LEAD_PAGE)?;
                read_lead_page(stmt.query(params![after, fetch])?, limit, |_| true)
            })
            .map_err(|e| self.db.store_error(e))
    }

    async fn funnel_facts(
        &self,
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
        cursor: Option<String>,
        limit: usize,
    ) -> Result<FactsPage, StoreError> {
        self.db.read(|c| facts::page(c, since, until, cursor, limit)).map_err(|e| self.db.store_error(e))
    }

    async fn open_leads_of(&self, rep_id: &str, cursor: Option<String>, limit: usize) -> Result<LeadPage, StoreError> {
        let before = lead_cursor(cursor, NO_OPEN_LEAD_CURSOR, "open-lead")?;
        let (limit, fetch) = page_size(limit);
        self.db
            .read(|c| {
                let mut stmt = c.prepare_cached(SELECT_OPEN_LEAD_PAGE)?;
                read_lead_page(stmt.query(params![rep_id, before, fetch])?, limit, |_| true)
            })
            .map_err(|e| self.db.store_error(e))
    }

    async fn leads_before(&self, before: Option<LeadId>, limit: usize) -> Result<LeadPage, StoreError> {
        let before = before.map_or_else(|| NO_OPEN_LEAD_CURSOR.to_string(), |id| id.to_string());
        let (limit, _) = page_size(limit);
        self.db
            .read(|c| {
                let mut stmt = c.prepare_cached(SELECT_RECENT_LEADS)?;
                read_lead_page(stmt.query([&before])?, limit, |lead| !is_erased(lead))
            })
            .map_err(|e| self.db.store_error(e))
    }
}
