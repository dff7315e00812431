//! The reads and deletes several roles share: a page of a scan, a lead's items by sort-key
//! prefix, and erasure's deletes.

use super::*;

impl DynamoStore {
    /// One page of a Scan filtered to the items whose sort key is `sort`, resumed from the
    /// cursor, and the cursor of the next page. DynamoDB counts its `Limit` before the filter,
    /// over every kind of item, so a page stops after [`LIST_SCAN_REQUESTS`] requests however
    /// few items it found: pages may be short, or even empty, while the cursor is `Some`. A page
    /// never holds more than `limit` items (at least one). The cursor is the hex of the last
    /// evaluated key (`PK`/`SK`, which hold no personal data); a cursor this store did not hand
    /// out is an error.
    pub(super) async fn scan_page<T>(
        &self,
        op: &'static str,
        sort: String,
        cursor: Option<String>,
        limit: usize,
        of: impl Fn(&Item) -> Result<T, StoreError>,
    ) -> Result<(Vec<T>, Option<String>), StoreError> {
        let want = limit.max(1);
        let mut start = cursor.as_deref().map(|c| decode_cursor(op, c)).transpose()?;
        // Enough items per request that a table of mostly other items still fills a page; the
        // 1 MB cap per request bounds it anyway.
        let scan_limit = i32::try_from(want.clamp(100, 1000)).unwrap_or(1000);
        let mut page = Vec::new();
        for _ in 0..LIST_SCAN_REQUESTS {
            let out = self
                .client
                .scan()
                .table_name(&self.table)
                .filter_expression("#sk = :sort")
                .projection_expression("#pk, #sk, #doc, #v")
                .expression_attribute_names("#pk", PK)
                .expression_attribute_names("#sk", SK)
                .expression_attribute_names("#doc", DOC)
                .expression_attribute_names("#v", VERSION)
                .expression_attribute_values(":sort", s(sort.as_str()))
                .limit(scan_limit)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| unavailable(op, &e))?;
            let more_after = out.last_evaluated_key.is_some();
            let mut items = out.items.unwrap_or_default().into_iter().peekable();
            while let Some(item) = items.next() {
                page.push(of(&item)?);
                if page.len() >= want {
                    // Full: the next page resumes right after this item (scans resume from any
                    // key, in the table's own order).
                    let next = if items.peek().is_some() || more_after {
                        Some(encode_cursor(op, &key_of(&item)?)?)
                    } else {
                        None
                    };
                    return Ok((page, next));
                }
            }
            match out.last_evaluated_key {
                Some(key) => start = Some(key),
                None => return Ok((page, None)),
            }
        }
        let next = start.as_ref().map(|key| encode_cursor(op, key)).transpose()?;
        Ok((page, next))
    }

    pub(super) async fn query_prefix(
        &self,
        op: &'static str,
        lead_id: LeadId,
        prefix: &str,
    ) -> Result<Vec<Item>, StoreError> {
        self.query_lead_items(op, lead_id, prefix, false).await
    }

    /// The lead's items whose sort key starts with `prefix`; with `keys_only`, their keys alone.
    pub(super) async fn query_lead_items(
        &self,
        op: &'static str,
        lead_id: LeadId,
        prefix: &str,
        keys_only: bool,
    ) -> Result<Vec<Item>, StoreError> {
        let range = Cond::new("#pk = :pk AND begins_with(#sk, :prefix)").value(":prefix", s(prefix));
        self.query_partition(op, lead_id, range, None, keys_only).await
    }

    /// The lead's activity items, its finished effects' records and its own item (the last two
    /// hold entries too), in one Query: in sort key order they span `ACT#…` to `PROFILE`; the
    /// alias and enrollments between are left out by the filter.
    pub(super) async fn trail_items(&self, lead_id: LeadId) -> Result<Vec<Item>, StoreError> {
        let range = Cond::new("#pk = :pk AND #sk BETWEEN :first AND :profile")
            .value(":first", s(ACT_PREFIX))
            .value(":effect", s(EFFECT_PREFIX))
            .value(":profile", s(PROFILE));
        let filter = "begins_with(#sk, :first) OR begins_with(#sk, :effect) OR #sk = :profile";
        self.query_partition("activities", lead_id, range, Some(filter), false).await
    }

    /// Every page of a Query of the lead's partition: `range` is the key condition (with `#pk`
    /// and `:pk` supplied here, `#sk` too), `filter` an optional filter over the same names.
    async fn query_partition(
        &self,
        op: &'static str,
        lead_id: LeadId,
        range: Cond,
        filter: Option<&str>,
        keys_only: bool,
    ) -> Result<Vec<Item>, StoreError> {
        let range = range.name("#pk", PK).name("#sk", SK).value(":pk", s(lead_pk(lead_id)));
        let mut items = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let mut query = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression(&range.expr)
                .set_filter_expression(filter.map(str::to_string))
                .set_expression_attribute_names(Some(range.names.clone()))
                .set_expression_attribute_values(Some(range.values.clone()))
                .consistent_read(true)
                .set_exclusive_start_key(start.take());
            if keys_only {
                query = query.projection_expression("#pk, #sk");
            }
            let out = query.send().await.map_err(|e| unavailable(op, &e))?;
            items.extend(out.items.unwrap_or_default());
            match out.last_evaluated_key {
                Some(key) => start = Some(key),
                None => return Ok(items),
            }
        }
    }

    /// Deletes the email key if it points at `lead` (a conditional delete: a key another lead
    /// holds stays).
    pub(super) async fn delete_email_key_of(&self, key: &str, lead: LeadId) -> Result<(), StoreError> {
        let theirs = Cond::new("#lead = :lead").name("#lead", LEAD_ID).value(":lead", s(lead.to_string()));
        self.delete_if("erase email key", email_pk(key), EMAIL_SK, theirs).await
    }

    /// Deletes the lead's activities, and takes the entries out of its effects' records (which
    /// stay: they keep a redelivery from sending again), in batches of 25, retrying what
    /// DynamoDB leaves unprocessed.
    pub(super) async fn delete_activities(&self, lead: LeadId) -> Result<(), StoreError> {
        const OP: &str = "erase activities";
        let mut writes = Vec::new();
        // The trail's Query: a Query is billed by the data read, whatever it projects.
        for item in self.trail_items(lead).await? {
            let sk = str_attr(&item, SK).unwrap_or_default();
            if sk.starts_with(ACT_PREFIX) {
                let delete =
                    DeleteRequest::builder().set_key(Some(key_of(&item)?)).build().map_err(|e| build_failed(OP, &e))?;
                writes.push(WriteRequest::builder().delete_request(delete).build());
            } else if sk.starts_with(EFFECT_PREFIX) {
                let attributes = item.len();
                let bare = without_entries(item);
                if bare.len() < attributes {
                    let put = PutRequest::builder().set_item(Some(bare)).build().map_err(|e| build_failed(OP, &e))?;
                    writes.push(WriteRequest::builder().put_request(put).build());
                }
            }
        }
        for chunk in writes.chunks(BATCH_WRITE_MAX) {
            let mut requests = chunk.to_vec();
            let mut attempt: u32 = 0;
            while !requests.is_empty() {
                if attempt >= UNPROCESSED_ATTEMPTS {
                    return Err(StoreError::Unavailable(format!(
                        "{OP}: DynamoDB left {} deletes unprocessed (throttled); retry",
                        requests.len()
                    )));
                }
                if attempt > 0 {
                    tokio::time::sleep(std::time::Duration::from_millis(50u64 << attempt)).await;
                }
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, requests)
                    .send()
                    .await
                    .map_err(|e| unavailable(OP, &e))?;
                requests = out.unprocessed_items.and_then(|mut u| u.remove(&self.table)).unwrap_or_default();
                attempt += 1;
            }
        }
        Ok(())
    }
}
