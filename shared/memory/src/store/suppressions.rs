//! The in-memory store: the [`Suppressions`] role.

use leadflow_core::ports::Suppressions;

use super::*;

impl Suppressions for MemoryStore {
    fn suppress(
        &self,
        entry: &Suppression,
        trail: &[Activity],
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        self.with(|s| {
            let fresh = if let std::collections::hash_map::Entry::Vacant(slot) =
                s.suppressions.entry(entry.email_key.clone())
            {
                slot.insert(entry.clone());
                true
            } else {
                false
            };
            for a in trail {
                s.activities.entry((a.lead_id, a.id.clone())).or_insert_with(|| a.clone());
            }
            fresh
        })
    }

    fn suppression(&self, email_key: &str) -> impl Future<Output = Result<Option<Suppression>, StoreError>> + Send {
        self.with(|s| s.suppressions.get(email_key).cloned())
    }

    fn suppressions(
        &self,
        cursor: Option<String>,
        limit: usize,
    ) -> impl Future<Output = Result<SuppressionPage, StoreError>> + Send {
        let after = match cursor.map(|c| SuppressionPosition::parse(&c)) {
            None => None,
            Some(Some(position)) => Some(position),
            Some(None) => {
                return ready(Err(StoreError::Corrupt(
                    "the suppression list cursor is not one this store handed out".into(),
                )));
            }
        };
        let limit = limit.max(1);
        self.with(|s| {
            let mut entries: Vec<(SuppressionPosition, &Suppression)> = s
                .suppressions
                .values()
                .map(|e| (SuppressionPosition::of(e), e))
                .filter(|(position, _)| after.as_ref().is_none_or(|a| position < a))
                .collect();
            entries.sort_unstable_by(|a, b| b.0.cmp(&a.0));
            let next = if entries.len() > limit { entries.get(limit - 1).map(|(p, _)| p.cursor()) } else { None };
            entries.truncate(limit);
            SuppressionPage { entries: entries.into_iter().map(|(_, e)| e.clone()).collect(), next }
        })
    }
}
