//! The DynamoDB store: the [`Enrollments`] role.

use leadflow_core::ports::Enrollments;

use super::*;

impl Enrollments for DynamoStore {
    async fn enroll(&self, enrollment: &Enrollment, trail: &[Activity]) -> Result<bool, StoreError> {
        let item = enrollment_item(enrollment, enrollment.version)?;
        let cond = Cond::new("attribute_not_exists(#pk)").name("#pk", PK);
        if trail.is_empty() {
            return Ok(self.put_if("enroll", item, cond).await?.is_ok());
        }
        self.put_with_trail("enroll", item, cond, trail).await
    }

    async fn enrollments(&self, lead_id: LeadId) -> Result<Vec<Enrollment>, StoreError> {
        // The sort key orders them by campaign id, like the SQLite adapter.
        let items = self.query_prefix("enrollments", lead_id, ENR_PREFIX).await?;
        items.iter().map(enrollment_of).collect()
    }

    async fn due_enrollments(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<Enrollment>, StoreError> {
        Ok(self.due_scan(now, limit).await?.enrollments)
    }

    async fn update_enrollment(
        &self,
        enrollment: &Enrollment,
        expected_version: u64,
        trail: &[Activity],
    ) -> Result<WriteOutcome, StoreError> {
        // A Put replaces the whole item: an enrollment that stopped drops its index attributes
        // and leaves the due index.
        let item = enrollment_item(enrollment, expected_version.saturating_add(1))?;
        let cond = Cond::new("#v = :expected").name("#v", VERSION).value(":expected", n(expected_version));
        let written = if trail.is_empty() {
            self.put_if("update enrollment", item, cond).await?.is_ok()
        } else {
            self.put_with_trail("update enrollment", item, cond, trail).await?
        };
        Ok(if written { WriteOutcome::Written } else { WriteOutcome::VersionConflict })
    }

    /// A Scan filtered to the campaign's enrollment items (`SK` = `ENR#<campaign>`, any lead,
    /// version or state), resumed from the cursor, as [`Self::list_leads`] pages: a page never
    /// holds more than `limit` enrollments (at least one), and may be short, or even empty, while
    /// `next` is `Some`. The cursor is the hex of the last evaluated key.
    async fn campaign_enrollments(
        &self,
        campaign_id: &str,
        cursor: Option<String>,
        limit: usize,
    ) -> Result<EnrollmentPage, StoreError> {
        let sort = format!("{ENR_PREFIX}{campaign_id}");
        let (enrollments, next) = self.scan_page("campaign enrollments", sort, cursor, limit, enrollment_of).await?;
        Ok(EnrollmentPage { enrollments, next })
    }
}
