//! The in-memory store: the [`Listings`] role.

use leadflow_core::ports::Listings;

use super::*;

impl Listings for MemoryStore {
    fn list_leads(
        &self,
        cursor: Option<String>,
        limit: usize,
    ) -> impl Future<Output = Result<LeadPage, StoreError>> + Send {
        let after = match cursor.map(|c| c.parse::<LeadId>()).transpose() {
            Ok(after) => after,
            Err(_) => {
                return ready(Err(StoreError::Corrupt(
                    "the lead listing cursor is not one this store handed out".into(),
                )));
            }
        };
        let limit = limit.max(1);
        self.with(|s| {
            let mut ids: Vec<LeadId> = s.leads.keys().copied().filter(|id| after.is_none_or(|a| *id > a)).collect();
            ids.sort_unstable();
            // Like SQLite's pages: a cursor only when more leads follow.
            let next = if ids.len() > limit { ids.get(limit - 1).map(LeadId::to_string) } else { None };
            ids.truncate(limit);
            let leads = ids.iter().filter_map(|id| s.leads.get(id).cloned()).collect();
            LeadPage { leads, next }
        })
    }

    /// The leads in range by id, the cursor being the last id handed out, as `list_leads`.
    fn funnel_facts(
        &self,
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
        cursor: Option<String>,
        limit: usize,
    ) -> impl Future<Output = Result<FactsPage, StoreError>> + Send {
        let after = match cursor.map(|c| c.parse::<LeadId>()).transpose() {
            Ok(after) => after,
            Err(_) => {
                return ready(Err(StoreError::Corrupt("the funnel cursor is not one this store handed out".into())));
            }
        };
        let limit = limit.max(1);
        self.with(|s| {
            let mut facts: Vec<LeadFacts> = s
                .leads
                .values()
                .filter(|l| after.is_none_or(|a| l.id > a))
                .map(LeadFacts::of)
                .filter(|f| f.in_range(since, until))
                .collect();
            facts.sort_unstable_by_key(|f| f.id);
            let next = if facts.len() > limit { facts.get(limit - 1).map(|f| f.id.to_string()) } else { None };
            facts.truncate(limit);
            FactsPage { facts, next }
        })
    }

    fn open_leads_of(
        &self,
        rep_id: &str,
        cursor: Option<String>,
        limit: usize,
    ) -> impl Future<Output = Result<LeadPage, StoreError>> + Send {
        let before = match cursor.map(|c| c.parse::<LeadId>()).transpose() {
            Ok(before) => before,
            Err(_) => {
                return ready(Err(StoreError::Corrupt("the open-lead cursor is not one this store handed out".into())));
            }
        };
        let limit = limit.max(1);
        self.with(|s| {
            let mut open: Vec<&Lead> = s
                .leads
                .values()
                .filter(|l| l.owner.as_ref().is_some_and(|o| o.rep_id == rep_id))
                .filter(|l| !matches!(l.status, SalesStatus::Won | SalesStatus::Lost) && !is_erased(l))
                .filter(|l| before.is_none_or(|b| l.id < b))
                .collect();
            open.sort_unstable_by_key(|l| std::cmp::Reverse(l.id));
            // Like SQLite's pages: a cursor only when more leads follow.
            let next = if open.len() > limit { open.get(limit - 1).map(|l| l.id.to_string()) } else { None };
            open.truncate(limit);
            LeadPage { leads: open.into_iter().cloned().collect(), next }
        })
    }

    fn leads_before(
        &self,
        before: Option<LeadId>,
        limit: usize,
    ) -> impl Future<Output = Result<LeadPage, StoreError>> + Send {
        let limit = limit.max(1);
        self.with(|s| {
            let mut recent: Vec<&Lead> =
                s.leads.values().filter(|l| before.is_none_or(|b| l.id < b) && !is_erased(l)).collect();
            recent.sort_unstable_by_key(|l| std::cmp::Reverse(l.id));
            // Like SQLite's pages: a cursor only when more leads follow.
            let next = if recent.len() > limit { recent.get(limit - 1).map(|l| l.id.to_string()) } else { None };
            recent.truncate(limit);
            LeadPage { leads: recent.into_iter().cloned().collect(), next }
        })
    }
}
