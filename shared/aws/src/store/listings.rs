//! The DynamoDB store: the [`Listings`] role.

use leadflow_core::ports::Listings;

use super::*;

impl Listings for DynamoStore {
    /// A Scan filtered to lead profiles (tombstones included), resumed from the cursor. DynamoDB
    /// counts its `Limit` before the filter, over every kind of item, so a page stops after
    /// [`LIST_SCAN_REQUESTS`] requests however few leads it found: pages may be short, or even
    /// empty, while `next` is `Some`. A page never holds more than `limit` leads (at least one).
    /// The cursor is the hex of the last evaluated key (a lead's or another item's `PK`/`SK`,
    /// which hold no personal data); a cursor this store did not hand out is an error.
    async fn list_leads(&self, cursor: Option<String>, limit: usize) -> Result<LeadPage, StoreError> {
        let (leads, next) = self.scan_page("list leads", PROFILE.to_string(), cursor, limit, lead_of).await?;
        Ok(LeadPage { leads, next })
    }

    /// [`Self::list_leads`]' Scan, each lead's facts taken from its document and kept when in
    /// range: pages as short as that Scan's, or shorter, and the same cursor. The facts are
    /// inside the lead's one document attribute, so no projection can leave the rest out: this
    /// reads every lead, as `list_leads` does, for now. A range key (a GSI on `created_at` with
    /// the facts projected) would make it proportional to the range, at the cost of an index
    /// written on every update of a lead.
    async fn funnel_facts(
        &self,
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
        cursor: Option<String>,
        limit: usize,
    ) -> Result<FactsPage, StoreError> {
        let of = |item: &Item| lead_of(item).map(|l| LeadFacts::of(&l));
        let (facts, next) = self.scan_page("funnel facts", PROFILE.to_string(), cursor, limit, of).await?;
        let facts = facts.into_iter().filter(|f| f.in_range(since, until)).collect();
        Ok(FactsPage { facts, next })
    }

    /// A Query of the rep's partition of the `owner` index, backwards from the cursor. The
    /// cursor is the last lead id handed out, from which the index key (`owner_open`, `PK`,
    /// `SK`) to resume after is rebuilt; that lead need not be in the index any more. The index
    /// is eventually consistent: a lead written a moment ago may be missing, or still listed.
    async fn open_leads_of(&self, rep_id: &str, cursor: Option<String>, limit: usize) -> Result<LeadPage, StoreError> {
        const OP: &str = "open leads";
        let after = cursor
            .map(|c| {
                c.parse::<LeadId>().map_err(|_| {
                    StoreError::Corrupt(format!("{OP}: the open-lead cursor is not one this store handed out"))
                })
            })
            .transpose()?;
        // DynamoDB refuses an empty key condition value; nobody's id is empty, so nobody owns it.
        if rep_id.is_empty() {
            return Ok(LeadPage::default());
        }
        let limit = limit.max(1);
        // One more than the page, to tell whether another page follows without reading it.
        let want = limit.saturating_add(1);
        let mut start = after.map(|id| {
            Item::from([(OWNER_OPEN.into(), s(rep_id)), (PK.into(), s(lead_pk(id))), (SK.into(), s(PROFILE))])
        });
        let mut leads = Vec::new();
        for _ in 0..OPEN_LEAD_QUERIES {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(OWNER_INDEX)
                .key_condition_expression("#owner = :rep")
                .expression_attribute_names("#owner", OWNER_OPEN)
                .expression_attribute_values(":rep", s(rep_id))
                .scan_index_forward(false)
                .limit(i32::try_from(want - leads.len()).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| unavailable(OP, &e))?;
            for item in out.items.unwrap_or_default() {
                leads.push(lead_of(&item)?);
            }
            match out.last_evaluated_key {
                Some(key) if leads.len() < want => start = Some(key),
                _ => break,
            }
        }
        let next = if leads.len() > limit {
            leads.truncate(limit);
            leads.last().map(|l| l.id.to_string())
        } else if let Some(key) = &start {
            // Cut short at the 1 MB cap with fewer leads than asked for: resume after the last
            // lead read (the last evaluated key's).
            Some(pk_lead(key, OP)?.to_string())
        } else {
            None
        };
        Ok(LeadPage { leads, next })
    }

    async fn leads_before(&self, before: Option<LeadId>, limit: usize) -> Result<LeadPage, StoreError> {
        self.leads_before_page(before, limit).await
    }
}
