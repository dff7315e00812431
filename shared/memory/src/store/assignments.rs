//! The in-memory store: the [`Assignments`] role.

use leadflow_core::ports::Assignments;

use super::*;

impl Assignments for MemoryStore {
    fn team_cursor(&self, team_id: &str) -> impl Future<Output = Result<TeamCursor, StoreError>> + Send {
        self.with(|s| s.cursors.get(team_id).cloned().unwrap_or_default())
    }

    fn rep_loads(&self) -> impl Future<Output = Result<BTreeMap<RepId, u32>, StoreError>> + Send {
        self.with(|s| {
            let mut loads = BTreeMap::new();
            for lead in s.leads.values() {
                if let Some(owner) = &lead.owner
                    && !matches!(lead.status, SalesStatus::Won | SalesStatus::Lost)
                    && !is_erased(lead)
                {
                    *loads.entry(owner.rep_id.clone()).or_insert(0) += 1;
                }
            }
            loads
        })
    }

    fn assign(&self, w: &AssignmentWrite) -> impl Future<Output = Result<AssignOutcome, StoreError>> + Send {
        self.with(|s| {
            let lead_ok = s.leads.get(&w.lead.id).is_some_and(|l| l.version == w.expected_lead_version);
            let cursor_ok = match &w.team_cursor {
                Some((team, c)) => s.cursors.get(team).map_or(0, |k| k.version) == c.version,
                None => true,
            };
            let claim_ok = w.claim.as_ref().is_none_or(|c| !s.effects.contains_key(&c.key));
            if !(lead_ok && cursor_ok && claim_ok) {
                return AssignOutcome::Conflict;
            }
            let mut lead = w.lead.clone();
            lead.version = w.expected_lead_version + 1;
            s.leads.insert(lead.id, lead);
            if let Some((team, c)) = &w.team_cursor {
                let mut c = c.clone();
                c.version += 1;
                s.cursors.insert(team.clone(), c);
            }
            s.write_trail(&w.trail);
            if let Some(c) = &w.claim {
                s.effects.insert(c.key.clone(), Effect::Claimed { lease_until: c.lease_until });
            }
            AssignOutcome::Assigned
        })
    }

    fn due_slas(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<LeadId>, StoreError>> + Send {
        self.with(|s| {
            let mut due: Vec<(DateTime<Utc>, LeadId)> = s
                .leads
                .values()
                .filter(|l| l.is_valid() && l.status == SalesStatus::New && !is_erased(l))
                .filter_map(|l| l.owner.as_ref().map(|o| (o.sla_due_at, l.id)))
                .filter(|(at, _)| *at <= now)
                .collect();
            due.sort_unstable();
            due.into_iter().take(limit).map(|(_, id)| id).collect()
        })
    }
}
