//! The in-memory store: the [`Enrollments`] role.

use leadflow_core::ports::Enrollments;

use super::*;

impl Enrollments for MemoryStore {
    fn enroll(&self, e: &Enrollment, trail: &[Activity]) -> impl Future<Output = Result<bool, StoreError>> + Send {
        self.with(|s| {
            if let std::collections::btree_map::Entry::Vacant(slot) =
                s.enrollments.entry((e.lead_id, e.campaign_id.clone()))
            {
                slot.insert(e.clone());
                s.write_trail(trail);
                true
            } else {
                false
            }
        })
    }

    fn enrollments(&self, lead_id: LeadId) -> impl Future<Output = Result<Vec<Enrollment>, StoreError>> + Send {
        self.with(|s| s.enrollments.values().filter(|e| e.lead_id == lead_id).cloned().collect())
    }

    fn due_enrollments(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Enrollment>, StoreError>> + Send {
        self.with(|s| {
            let mut due: Vec<Enrollment> = s
                .enrollments
                .values()
                .filter(|e| e.state == EnrollmentState::Active && e.next_due_at.is_some_and(|d| d <= now))
                .cloned()
                .collect();
            due.sort_by_key(|e| e.next_due_at);
            due.truncate(limit);
            due
        })
    }

    fn update_enrollment(
        &self,
        e: &Enrollment,
        expected: u64,
        trail: &[Activity],
    ) -> impl Future<Output = Result<WriteOutcome, StoreError>> + Send {
        self.with(|s| match s.enrollments.get_mut(&(e.lead_id, e.campaign_id.clone())) {
            Some(stored) if stored.version == expected => {
                *stored = e.clone();
                stored.version = expected + 1;
                s.write_trail(trail);
                WriteOutcome::Written
            }
            _ => WriteOutcome::VersionConflict,
        })
    }

    fn campaign_enrollments(
        &self,
        campaign_id: &str,
        cursor: Option<String>,
        limit: usize,
    ) -> impl Future<Output = Result<EnrollmentPage, StoreError>> + Send {
        let after = match cursor.map(|c| c.parse::<LeadId>()).transpose() {
            Ok(after) => after,
            Err(_) => {
                return ready(Err(StoreError::Corrupt(
                    "the campaign enrollment cursor is not one this store handed out".into(),
                )));
            }
        };
        let limit = limit.max(1);
        self.with(|s| {
            // Like SQLite's pages: in lead id order, a cursor only when more enrollments follow.
            let mut page: Vec<Enrollment> = s
                .enrollments
                .values()
                .filter(|e| e.campaign_id == campaign_id && after.is_none_or(|a| e.lead_id > a))
                .cloned()
                .collect();
            page.sort_unstable_by_key(|e| e.lead_id);
            let next = if page.len() > limit { page.get(limit - 1).map(|e| e.lead_id.to_string()) } else { None };
            page.truncate(limit);
            EnrollmentPage { enrollments: page, next }
        })
    }
}
