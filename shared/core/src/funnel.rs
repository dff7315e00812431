//! The funnel: what of a lead it reads ([`LeadFacts`]) and how it counts the stages ([`Funnel`]).
//!
//! The facts are the one definition of what the funnel reads, so that a store can keep them
//! beside each lead (SQLite keeps them in a side table) and a report need not read whole leads.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::model::{Lead, LeadId, Lifecycle, SalesStatus};

/// What the funnel reads of one lead. An erased lead's tombstone keeps all of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeadFacts {
    pub id: LeadId,
    pub created_at: DateTime<Utc>,
    pub valid: bool,
    pub lifecycle: Lifecycle,
    /// The lead has (or, erased, had) an owner.
    pub assigned: bool,
    pub status: SalesStatus,
    /// The first touch's `utm_source`; `None` when it is missing or empty.
    pub source: Option<String>,
}

impl LeadFacts {
    pub fn of(lead: &Lead) -> Self {
        Self {
            id: lead.id,
            created_at: lead.created_at,
            valid: lead.is_valid(),
            lifecycle: lead.lifecycle,
            assigned: lead.owner.is_some(),
            status: lead.status,
            source: lead.attribution.first_touch.utm.source.clone().filter(|s| !s.is_empty()),
        }
    }

    /// Whether the lead was captured in `[since, until)` (an open end when `None`).
    pub fn in_range(&self, since: Option<DateTime<Utc>>, until: Option<DateTime<Utc>>) -> bool {
        since.is_none_or(|s| self.created_at >= s) && until.is_none_or(|u| self.created_at < u)
    }
}

/// The funnel's stages, each a subset of the one before.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Funnel {
    pub captured: u64,
    pub valid: u64,
    pub mql: u64,
    pub assigned: u64,
    /// Sales-qualified and in sales' hands: assigned, and its score reached the SQL threshold or
    /// a rep has worked it. Assigned comes first so every stage stays a subset of the one before:
    /// a lead a rep has contacted is one sales accepted, whatever its score.
    pub sql: u64,
    /// Contacted, won or lost: sales has spoken to the lead.
    pub contacted: u64,
    pub won: u64,
}

impl Funnel {
    pub fn count(&mut self, lead: &LeadFacts) {
        self.captured += 1;
        if !lead.valid {
            return;
        }
        self.valid += 1;
        if lead.lifecycle < Lifecycle::Mql {
            return;
        }
        self.mql += 1;
        if !lead.assigned {
            return;
        }
        self.assigned += 1;
        if lead.lifecycle < Lifecycle::Sql && lead.status == SalesStatus::New {
            return;
        }
        self.sql += 1;
        if lead.status == SalesStatus::New {
            return;
        }
        self.contacted += 1;
        if lead.status == SalesStatus::Won {
            self.won += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn lifecycle() -> impl Strategy<Value = Lifecycle> {
        prop_oneof![Just(Lifecycle::Lead), Just(Lifecycle::Mql), Just(Lifecycle::Sql)]
    }

    fn status() -> impl Strategy<Value = SalesStatus> {
        prop_oneof![
            Just(SalesStatus::New),
            Just(SalesStatus::Contacted),
            Just(SalesStatus::Won),
            Just(SalesStatus::Lost)
        ]
    }

    fn facts() -> impl Strategy<Value = LeadFacts> {
        (any::<bool>(), lifecycle(), any::<bool>(), status()).prop_map(|(valid, lifecycle, assigned, status)| {
            LeadFacts {
                id: LeadId::from_parts(1, 1),
                created_at: DateTime::UNIX_EPOCH,
                valid,
                lifecycle,
                assigned,
                status,
                source: None,
            }
        })
    }

    proptest! {
        #[test]
        fn every_stage_is_a_subset_of_the_one_before(leads in proptest::collection::vec(facts(), 0..40)) {
            let mut f = Funnel::default();
            for lead in &leads {
                f.count(lead);
            }
            prop_assert_eq!(f.captured, leads.len() as u64);
            let stages = [f.captured, f.valid, f.mql, f.assigned, f.sql, f.contacted, f.won];
            prop_assert!(stages.windows(2).all(|w| w[0] >= w[1]), "{:?}", stages);
        }
    }

    #[test]
    fn a_won_lead_reaches_every_stage_and_an_invalid_one_only_capture() {
        let won = LeadFacts {
            id: LeadId::from_parts(1, 1),
            created_at: DateTime::UNIX_EPOCH,
            valid: true,
            lifecycle: Lifecycle::Mql,
            assigned: true,
            status: SalesStatus::Won,
            source: Some("ads".into()),
        };
        let mut f = Funnel::default();
        f.count(&won);
        f.count(&LeadFacts { valid: false, ..won.clone() });
        let all = Funnel { captured: 2, valid: 1, mql: 1, assigned: 1, sql: 1, contacted: 1, won: 1 };
        assert_eq!(f, all);
    }

    #[test]
    fn the_range_includes_since_and_excludes_until() {
        let at = DateTime::UNIX_EPOCH + chrono::Duration::seconds(10);
        let lead = LeadFacts {
            id: LeadId::from_parts(1, 1),
            created_at: at,
            valid: true,
            lifecycle: Lifecycle::Lead,
            assigned: false,
            status: SalesStatus::New,
            source: None,
        };
        assert!(lead.in_range(Some(at), None));
        assert!(!lead.in_range(None, Some(at)));
        assert!(lead.in_range(None, Some(at + chrono::Duration::nanoseconds(1))));
        assert!(lead.in_range(None, None));
    }
}
