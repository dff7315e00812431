//! The console's two listings, over the sparse index `listing` (hash `GSI2PK`, range `GSI2SK`,
//! keys only): the leads newest first, and the suppression list newest first.
//!
//! | items | `GSI2PK` | `GSI2SK` |
//! |---|---|---|
//! | lead, unless erased | `LEADS#<shard 0..7>` | `<ulid>` |
//! | suppression | `SUPPRESSIONS` | `<16-digit ms of at>#<email_key>` |
//!
//! One index, not two: CloudFormation adds or drops one global secondary index per stack update,
//! so a second new index would fail the deploy of an existing stack. Keys only: a lead item is a
//! few KB and is rewritten on every change; projecting it would copy every such write into the
//! index and make a page read eight partitions' worth of whole leads. With keys only, the index
//! is written when a lead is created or erased and never on its updates (its key attributes do not
//! change), and a page reads small index keys plus exactly the items it shows (one BatchGetItem).
//!
//! Leads are spread over [`RECENT_SHARDS`] partitions by a digest of the id, so that a burst of
//! captures is not capped by the write rate of one index partition; a page queries every shard
//! below the cursor, newest first, merges, and keeps `limit`. Suppressions are rare events: one
//! partition.
//!
//! Items written before the index attributes existed are not listed until they are written again
//! (any update of a lead rewrites it whole) or until [`DynamoStore::backfill_listing`] runs once.
//! The index is eventually consistent: a lead captured a moment ago may be missing, and a lead
//! erased a moment ago is read, seen to be a tombstone, and left out (its page is one short).

use std::collections::HashMap;

use aws_sdk_dynamodb::types::KeysAndAttributes;
use leadflow_core::error::StoreError;
use leadflow_core::model::{LeadId, Suppression};
use leadflow_core::ports::{LeadPage, SuppressionPage, SuppressionPosition};
use sha2::{Digest, Sha256};

use super::{
    AT, DynamoStore, ERASED, GSI2PK, GSI2SK, Item, PK, PROFILE, SK, UNPROCESSED_ATTEMPTS, build_failed, decode,
    is_erased, lead_of, s, str_attr, unavailable,
};

/// The name of the global secondary index of the two listings.
pub const LISTING_INDEX: &str = "listing";
/// How many partitions of the listing index the leads are spread over.
pub const RECENT_SHARDS: u32 = 8;

const RECENT_PARTITION: &str = "LEADS#";
const SUPPRESSION_PARTITION: &str = "SUPPRESSIONS";
const SUPPRESS_PREFIX: &str = "SUPPRESS#";
/// Keys one BatchGetItem may carry.
const BATCH_GET_MAX: usize = 100;
/// Query requests per partition and page: a partition's answer is cut short only at DynamoDB's
/// 1 MB cap, which index keys (under 200 bytes each) meet only with a limit in the thousands.
const LISTING_QUERIES: u32 = 10;

/// What one page cost, from DynamoDB's answers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ListingCost {
    /// Query requests sent (one per partition, more only past the 1 MB cap).
    pub queries: u32,
    /// Index entries the queries read (`ScannedCount`, summed).
    pub index_entries: u64,
    /// BatchGetItem requests sent, retries of unprocessed keys included.
    pub batch_gets: u32,
    /// Items the BatchGetItem requests read.
    pub items: u64,
}

/// The listing index partition of a lead: stable across builds and processes (a digest, not
/// `std`'s randomly seeded hasher).
pub fn recent_shard(lead: LeadId) -> u32 {
    let digest = Sha256::digest(lead.to_string().as_bytes());
    u32::from(digest[0]) % RECENT_SHARDS
}

/// The listing index attributes of a lead item that is not erased.
pub(super) fn recent_keys(lead: LeadId) -> [(String, aws_sdk_dynamodb::types::AttributeValue); 2] {
    [(GSI2PK.into(), s(format!("{RECENT_PARTITION}{}", recent_shard(lead)))), (GSI2SK.into(), s(lead.to_string()))]
}

/// The listing index attributes of a suppression entry.
pub(super) fn suppression_keys(entry: &Suppression) -> [(String, aws_sdk_dynamodb::types::AttributeValue); 2] {
    [(GSI2PK.into(), s(SUPPRESSION_PARTITION)), (GSI2SK.into(), s(suppression_sort(&SuppressionPosition::of(entry))))]
}

/// Zero-padded milliseconds (16 digits hold every time chrono can represent; times before 1970
/// sort as 1970), then the email key: text order is the list's order.
fn suppression_sort(position: &SuppressionPosition) -> String {
    format!("{:016}#{}", position.at_ms.max(0), position.email_key)
}

/// The position a `GSI2SK` of the suppression partition names.
fn suppression_position(sort: &str) -> Result<SuppressionPosition, StoreError> {
    sort.split_once('#')
        .and_then(|(ms, key)| Some(SuppressionPosition { at_ms: ms.parse().ok()?, email_key: key.to_string() }))
        .filter(|p| !p.email_key.is_empty())
        .ok_or_else(|| StoreError::Corrupt(format!("suppression list: index key {sort:?} is not <ms>#<email key>")))
}

/// Index keys of one page, newest first, and what reading them cost.
struct Keys {
    /// (`GSI2SK`, table key), highest sort key first.
    keys: Vec<(String, Item)>,
    cost: ListingCost,
}

impl DynamoStore {
    pub(super) async fn leads_before_page(&self, before: Option<LeadId>, limit: usize) -> Result<LeadPage, StoreError> {
        Ok(self.leads_before_with_cost(before, limit).await?.0)
    }

    pub(super) async fn suppressions_page(
        &self,
        cursor: Option<String>,
        limit: usize,
    ) -> Result<SuppressionPage, StoreError> {
        Ok(self.suppressions_with_cost(cursor, limit).await?.0)
    }

    /// [`leadflow_core::ports::Listings::leads_before`] with what the page cost to read.
    pub async fn leads_before_with_cost(
        &self,
        before: Option<LeadId>,
        limit: usize,
    ) -> Result<(LeadPage, ListingCost), StoreError> {
        const OP: &str = "recent leads";
        let limit = limit.max(1);
        let partitions = (0..RECENT_SHARDS).map(|shard| format!("{RECENT_PARTITION}{shard}")).collect();
        let below = before.map(|id| id.to_string());
        // One more than the page, to tell whether another page follows without reading it.
        let Keys { mut keys, mut cost } = self.listing_keys(OP, partitions, below, limit.saturating_add(1)).await?;
        let more = keys.len() > limit;
        keys.truncate(limit);
        let mut items = self.batch_get(OP, &keys, &mut cost).await?;
        let mut leads = Vec::with_capacity(keys.len());
        for (_, key) in &keys {
            let Some(item) = str_attr(key, PK).and_then(|pk| items.remove(pk)) else {
                continue; // not there (any more): nothing to show
            };
            // The index lags behind an erasure: the item itself tells.
            if !is_erased(&item) {
                leads.push(lead_of(&item)?);
            }
        }
        let next = if more { keys.last().map(|(sort, _)| sort.clone()) } else { None };
        Ok((LeadPage { leads, next }, cost))
    }

    /// [`leadflow_core::ports::Suppressions::suppressions`] with what the page cost to read.
    pub async fn suppressions_with_cost(
        &self,
        cursor: Option<String>,
        limit: usize,
    ) -> Result<(SuppressionPage, ListingCost), StoreError> {
        const OP: &str = "suppression list";
        let below = cursor
            .map(|c| {
                SuppressionPosition::parse(&c)
                    .map(|p| suppression_sort(&p))
                    .ok_or_else(|| StoreError::Corrupt(format!("{OP}: the cursor is not one this store handed out")))
            })
            .transpose()?;
        let limit = limit.max(1);
        let partitions = vec![SUPPRESSION_PARTITION.to_string()];
        let Keys { mut keys, mut cost } = self.listing_keys(OP, partitions, below, limit.saturating_add(1)).await?;
        let more = keys.len() > limit;
        keys.truncate(limit);
        let mut items = self.batch_get(OP, &keys, &mut cost).await?;
        let mut entries = Vec::with_capacity(keys.len());
        for (_, key) in &keys {
            if let Some(item) = str_attr(key, PK).and_then(|pk| items.remove(pk)) {
                entries.push(decode::<Suppression>(&item, "suppression")?);
            }
        }
        let next = match keys.last() {
            Some((sort, _)) if more => Some(suppression_position(sort)?.cursor()),
            _ => None,
        };
        Ok((SuppressionPage { entries, next }, cost))
    }

    /// The `want` highest index keys below `below` across `partitions`, highest first: one
    /// backwards Query per partition, in parallel, merged.
    async fn listing_keys(
        &self,
        op: &'static str,
        partitions: Vec<String>,
        below: Option<String>,
        want: usize,
    ) -> Result<Keys, StoreError> {
        let mut queries = tokio::task::JoinSet::new();
        for partition in partitions {
            let (client, table, below) = (self.client.clone(), self.table.clone(), below.clone());
            queries.spawn(async move {
                let mut found = Keys { keys: Vec::new(), cost: ListingCost::default() };
                let mut start: Option<Item> = None;
                for _ in 0..LISTING_QUERIES {
                    let mut query = client
                        .query()
                        .table_name(&table)
                        .index_name(LISTING_INDEX)
                        .expression_attribute_names("#pk", GSI2PK)
                        .expression_attribute_values(":pk", s(&partition))
                        .scan_index_forward(false)
                        .limit(i32::try_from(want - found.keys.len()).unwrap_or(i32::MAX))
                        .set_exclusive_start_key(start.take());
                    query = match &below {
                        Some(below) => query
                            .key_condition_expression("#pk = :pk AND #sk < :below")
                            .expression_attribute_names("#sk", GSI2SK)
                            .expression_attribute_values(":below", s(below)),
                        None => query.key_condition_expression("#pk = :pk"),
                    };
                    let out = query.send().await.map_err(|e| unavailable(op, &e))?;
                    found.cost.queries += 1;
                    found.cost.index_entries += u64::try_from(out.scanned_count).unwrap_or(0);
                    for item in out.items.unwrap_or_default() {
                        let sort = str_attr(&item, GSI2SK).unwrap_or_default().to_string();
                        let key = super::key_of(&item)?;
                        found.keys.push((sort, key));
                    }
                    match out.last_evaluated_key {
                        Some(key) if found.keys.len() < want => start = Some(key),
                        _ => break,
                    }
                }
                Ok::<_, StoreError>(found)
            });
        }
        let mut merged = Keys { keys: Vec::new(), cost: ListingCost::default() };
        while let Some(joined) = queries.join_next().await {
            let part = joined.map_err(|e| StoreError::Unavailable(format!("{op}: query task failed: {e}")))??;
            merged.cost.queries += part.cost.queries;
            merged.cost.index_entries += part.cost.index_entries;
            merged.keys.extend(part.keys);
        }
        merged.keys.sort_by(|a, b| b.0.cmp(&a.0));
        merged.keys.truncate(want);
        Ok(merged)
    }

    /// The items of `keys`, by `PK` (every listed item has its own partition key), read
    /// consistently: what a page shows is the item as it is, whatever the index still says.
    async fn batch_get(
        &self,
        op: &'static str,
        keys: &[(String, Item)],
        cost: &mut ListingCost,
    ) -> Result<HashMap<String, Item>, StoreError> {
        let mut found = HashMap::with_capacity(keys.len());
        for chunk in keys.chunks(BATCH_GET_MAX) {
            let mut wanted = chunk.iter().map(|(_, key)| key.clone()).collect::<Vec<_>>();
            let mut attempt: u32 = 0;
            while !wanted.is_empty() {
                if attempt >= UNPROCESSED_ATTEMPTS {
                    return Err(StoreError::Unavailable(format!(
                        "{op}: DynamoDB left {} reads unprocessed (throttled); retry",
                        wanted.len()
                    )));
                }
                if attempt > 0 {
                    tokio::time::sleep(std::time::Duration::from_millis(50u64 << attempt)).await;
                }
                let request = KeysAndAttributes::builder()
                    .set_keys(Some(wanted))
                    .consistent_read(true)
                    .build()
                    .map_err(|e| build_failed(op, &e))?;
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, request)
                    .send()
                    .await
                    .map_err(|e| unavailable(op, &e))?;
                cost.batch_gets += 1;
                for item in out.responses.and_then(|mut r| r.remove(&self.table)).unwrap_or_default() {
                    cost.items += 1;
                    if let Some(pk) = str_attr(&item, PK) {
                        found.insert(pk.to_string(), item);
                    }
                }
                wanted =
                    out.unprocessed_keys.and_then(|mut u| u.remove(&self.table)).map(|k| k.keys).unwrap_or_default();
                attempt += 1;
            }
        }
        Ok(found)
    }

    /// Puts the lead profiles and suppression entries written before the listing index existed
    /// into it: a Scan of the whole table (an operator's one-off after the deploy that added the
    /// index, never the hot path), and one conditional UpdateItem per item found. A lead erased
    /// in between stays out (the condition), and a write of the item by this build sets the same
    /// attributes, so running it again, or alongside the functions, is harmless. Answers how many
    /// items it added.
    pub async fn backfill_listing(&self) -> Result<u64, StoreError> {
        const OP: &str = "backfill listing index";
        let mut added = 0;
        let mut start: Option<Item> = None;
        loop {
            let out = self
                .client
                .scan()
                .table_name(&self.table)
                .filter_expression(
                    "attribute_not_exists(#gpk) AND ((#sk = :profile AND attribute_not_exists(#erased)) \
                     OR begins_with(#pk, :suppress))",
                )
                .projection_expression("#pk, #sk, #at")
                .expression_attribute_names("#pk", PK)
                .expression_attribute_names("#sk", SK)
                .expression_attribute_names("#gpk", GSI2PK)
                .expression_attribute_names("#erased", ERASED)
                .expression_attribute_names("#at", AT)
                .expression_attribute_values(":profile", s(PROFILE))
                .expression_attribute_values(":suppress", s(SUPPRESS_PREFIX))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| unavailable(OP, &e))?;
            for item in out.items.unwrap_or_default() {
                if self.add_to_listing(OP, &item).await? {
                    added += 1;
                }
            }
            match out.last_evaluated_key {
                Some(key) => start = Some(key),
                None => return Ok(added),
            }
        }
    }

    async fn add_to_listing(&self, op: &'static str, item: &Item) -> Result<bool, StoreError> {
        let pk = str_attr(item, PK).unwrap_or_default();
        let keys = if str_attr(item, SK) == Some(PROFILE) {
            let Some(id) = pk.strip_prefix("LEAD#").and_then(|id| id.parse::<LeadId>().ok()) else {
                return Ok(false);
            };
            recent_keys(id)
        } else {
            let Some(email_key) = pk.strip_prefix(SUPPRESS_PREFIX).filter(|k| !k.is_empty()) else {
                return Ok(false);
            };
            let at_ms = super::num_i64(item, AT, "suppression")?;
            let position = SuppressionPosition { at_ms, email_key: email_key.to_string() };
            [(GSI2PK.to_string(), s(SUPPRESSION_PARTITION)), (GSI2SK.to_string(), s(suppression_sort(&position)))]
        };
        let [(_, partition), (_, sort)] = keys;
        let sent = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PK, s(pk))
            .key(SK, item.get(SK).cloned().unwrap_or_else(|| s("")))
            .update_expression("SET #gpk = :gpk, #gsk = :gsk")
            // Still there, and not erased since the scan read it.
            .condition_expression("attribute_exists(#pk) AND attribute_not_exists(#erased)")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#erased", ERASED)
            .expression_attribute_names("#gpk", GSI2PK)
            .expression_attribute_names("#gsk", GSI2SK)
            .expression_attribute_values(":gpk", partition)
            .expression_attribute_values(":gsk", sort)
            .send()
            .await;
        match sent {
            Ok(_) => Ok(true),
            // Erased (or gone) since the scan read it: it stays out.
            Err(aws_sdk_dynamodb::error::SdkError::ServiceError(ctx))
                if ctx.err().is_conditional_check_failed_exception() =>
            {
                Ok(false)
            }
            Err(e) => Err(unavailable(op, &e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suppression_sort_keys_sort_like_the_list() {
        let key = |ms, k: &str| suppression_sort(&SuppressionPosition { at_ms: ms, email_key: k.into() });
        assert!(key(999, "b") < key(1_000, "a"));
        assert!(key(1_000, "a") < key(1_000, "b"));
        assert_eq!(key(-5, "a"), key(0, "a"));
        let p = SuppressionPosition { at_ms: 1_750_000_000_123, email_key: "ab#c".into() };
        assert_eq!(suppression_position(&suppression_sort(&p)).ok(), Some(p));
    }

    #[test]
    fn leads_spread_over_every_shard() {
        let shards: std::collections::BTreeSet<u32> =
            (0..200u64).map(|n| recent_shard(LeadId::from_parts(1_750_000_000_000 + n, u128::from(n)))).collect();
        assert_eq!(shards.len(), RECENT_SHARDS as usize);
    }
}
