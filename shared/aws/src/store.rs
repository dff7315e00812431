//! The lead store over one DynamoDB table (the single-table design of docs/architecture.md, "Data").
//!
//! | item | PK | SK | attributes |
//! |---|---|---|---|
//! | lead | `LEAD#<ulid>` | `PROFILE` | `doc` (packed JSON, see below), `version`, `owner_open` (rep id while owned and not won/lost, never on a tombstone), `GSI1PK`/`GSI1SK` while its SLA runs, `GSI2PK`/`GSI2SK` unless erased, `erased` on a tombstone, `a#<activity id>` (packed) for the trail entries of its first three writes (`lead_trail`) |
//! | email key | `EMAIL#<email_key>` | `LEAD` | `lead_id` |
//! | alias | `LEAD#<capture id>` | `ALIAS` | `into` |
//! | activity | `LEAD#<ulid>` | `ACT#<activity id>` | `doc`, `at` (ms): the entries of later writes, and facts recorded alone |
//! | enrollment | `LEAD#<ulid>` | `ENR#<campaign>` | `doc`, `version`, `GSI1PK`/`GSI1SK` while active and due |
//! | team cursor | `REPLOAD` | `#CURSOR#<team id>` | `doc`, `version` (before 12-03: `TEAM#<id>`, `CURSOR`; still read) |
//! | rep load | `REPLOAD` | `<rep id>` | `open` |
//! | idempotency key | `IDEM#<key>` | `-` | `lead_id`, `until` (ms), `expires_at` (s, the table's TTL) |
//! | effect | `EFFECT#<key>` | `-` | `state` (`claimed`/`done`), `lease_until` (ms), `detail` |
//! | suppression | `SUPPRESS#<email_key>` | `-` | `doc`, `reason`, `at` (ms), `GSI2PK`/`GSI2SK` |
//! | document version | `DOC#<name>` | `V#<10-digit version>` | `doc`, `version` |
//! | latest document | `DOCS` | `<name>` | `doc` (the latest version, body included), `version` |
//!
//! Documents are JSON text in `doc`, except a lead's: its JSON deflated against a preset
//! dictionary (binary, the `packed` module), which keeps a lead item under 1 KB, one write unit;
//! a lead written before that format keeps its text and reads as before. The attributes beside a
//! document are the ones that conditions compare, indexes sort or counters add up. The `version`
//! attribute, not the copy inside the document, is the truth that conditional writes test.
//!
//! Rep loads are counters kept in step with the leads' `owner_open` attribute: every write that
//! changes a lead's `owner_open` is one transaction with the counter updates, conditioned on the
//! `owner_open` value it replaces. So `rep_loads` is one small query instead of a scan of leads.
//!
//! The sparse index `due` serves two scans, in separate partitions: due enrollments
//! (`GSI1PK = DUE#<shard>`, `GSI1SK = <ms>#<lead>#<campaign>`) and running SLAs
//! (`GSI1PK = SLA#<shard>`, `GSI1SK = <ms of owner.sla_due_at>#<lead>`). A lead item is in the SLA
//! partition exactly while it is owned, valid and still `new`; every lead write sets the whole
//! lead and removes the attributes it no longer has (an UpdateItem, so that the entries inside
//! the item stay), so a lead that leaves that state drops them and leaves the index.
//!
//! The sparse index `owner` (hash `owner_open`, range `PK`, every attribute) holds exactly the
//! open leads, by rep: `open_leads_of` queries a rep's partition backwards, newest lead (highest
//! ULID) first. Only lead items carry `owner_open`, so nothing else lands in it.
//!
//! The sparse, keys-only index `listing` (`GSI2PK`, `GSI2SK`) lists the leads newest first and the
//! suppression list newest first, for the console; see the `listing_index` module.
//!
//! Erasure writes the tombstone as a closed lead: no `owner_open` (its rep's count drops), no
//! SLA entry and no listing entry, whatever owner and status the tombstone document still shows,
//! and an `erased` flag.
//! An erased lead is final: callers do not update tombstones.

mod assignments;
mod documents;
mod effects;
mod enrollments;
mod items;
mod lead_trail;
mod leads;
mod listing_index;
mod listings;
mod packed;
mod requests;
mod suppressions;
mod trails;

use effects::EFFECT_PREFIX;
use items::*;
pub(crate) use items::{describe_sdk_error, redact};
pub use items::{due_shard, lead_of};
use lead_trail::{LeadUpdate, entries_of, inline_entries, without_entries};

pub use listing_index::{LISTING_INDEX, ListingCost, RECENT_SHARDS, recent_shard};

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{BuildError, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{
    AttributeValue, CancellationReason, ConditionCheck, Delete, DeleteRequest, KeysAndAttributes, Put, PutRequest,
    ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update, WriteRequest,
};
use chrono::{DateTime, Utc};
use leadflow_core::error::StoreError;
use leadflow_core::funnel::LeadFacts;
use leadflow_core::model::{
    Activity, ActivityKind, Document, Enrollment, EnrollmentState, Lead, LeadId, RepId, SalesStatus, Suppression,
    TeamCursor,
};
use leadflow_core::normalize::email_key;
use leadflow_core::ports::{
    AssignOutcome, AssignmentWrite, CreateOutcome, EffectClaim, EnrollmentPage, FactsPage, IdempotencyClaim, LeadPage,
    SuppressionPage, WriteOutcome,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

/// The name of the global secondary index over due enrollments.
pub const DUE_INDEX: &str = "due";
/// The name of the global secondary index over open leads by owner.
pub const OWNER_INDEX: &str = "owner";
/// How many partitions the due index is spread over, so that one hot `DUE#` key does not carry
/// every enrollment's writes.
pub const DUE_SHARDS: u32 = 8;

const PK: &str = "PK";
const SK: &str = "SK";
const GSI1PK: &str = "GSI1PK";
const GSI1SK: &str = "GSI1SK";
const GSI2PK: &str = "GSI2PK";
const GSI2SK: &str = "GSI2SK";
const DOC: &str = "doc";
const VERSION: &str = "version";
const OWNER_OPEN: &str = "owner_open";
const LEAD_ID: &str = "lead_id";
const INTO: &str = "into";
const AT: &str = "at";
const OPEN: &str = "open";
const UNTIL: &str = "until";
const EXPIRES_AT: &str = "expires_at";
const STATE: &str = "state";
const LEASE_UNTIL: &str = "lease_until";
const DETAIL: &str = "detail";
const REASON: &str = "reason";
const ERASED: &str = "erased";

const PROFILE: &str = "PROFILE";
const ALIAS: &str = "ALIAS";
const CURSOR: &str = "CURSOR";
const REPLOAD: &str = "REPLOAD";
const NO_SORT: &str = "-";
const ACT_PREFIX: &str = "ACT#";
const ENR_PREFIX: &str = "ENR#";
const DOCS: &str = "DOCS";
const EMAIL_SK: &str = "LEAD";
/// Partition prefixes of the `due` index.
const DUE_PARTITION: &str = "DUE#";
const SLA_PARTITION: &str = "SLA#";
/// Items one BatchWriteItem may carry.
const BATCH_WRITE_MAX: usize = 25;
/// Scan requests one `list_leads` or `campaign_enrollments` page may make before it answers a
/// short page.
const LIST_SCAN_REQUESTS: u32 = 10;
/// Query requests one `open_leads_of` page may make: a page ends early only at DynamoDB's 1 MB
/// cap per request, which a page of leads (a few KB each) meets only with a large `limit`.
const OPEN_LEAD_QUERIES: u32 = 10;
/// Longer than any cursor a listing (`list_leads`, `campaign_enrollments`) hands out (two keys of at most 2 KB and 1 KB, in hex).
const MAX_CURSOR_LEN: usize = 8 * 1024;
/// Rounds of `erase_lead` against concurrent writes to the lead.
const ERASE_ATTEMPTS: u32 = 3;
/// BatchWriteItem rounds for items DynamoDB left unprocessed.
const UNPROCESSED_ATTEMPTS: u32 = 6;

const CONDITIONAL_CHECK_FAILED: &str = "ConditionalCheckFailed";
const TRANSACTION_CONFLICT: &str = "TransactionConflict";

/// A stored item as the SDK hands it over.
type Item = HashMap<String, AttributeValue>;

/// How an `erase_lead` round ended.
enum Erasure {
    /// The tombstone replaced the lead, with the email key in the same transaction.
    Written,
    /// No lead, or its tombstone was written before: only the cleanup is left.
    NothingToWrite,
}

/// The lead store in one DynamoDB table. Cloning is cheap and shares the client.
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

/// What a due-enrollment scan returned and what it cost, from the Query outputs.
#[derive(Debug, Clone, Default)]
pub struct DueScan {
    pub enrollments: Vec<Enrollment>,
    /// Query requests sent (one per shard and page).
    pub queries: u32,
    /// Items DynamoDB read (`ScannedCount`), summed over the queries.
    pub scanned: u64,
    /// Items the queries returned (`Count`), summed, before the merge truncated to the limit.
    pub returned: u64,
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }

    /// The DynamoDB client the store sends with.
    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// [`Enrollments::due_enrollments`] with the cost of the reads, for logs and tests.
    pub async fn due_scan(&self, now: DateTime<Utc>, limit: usize) -> Result<DueScan, StoreError> {
        let merged = self.query_due_index(DUE_PARTITION, "due enrollments", now, limit, false).await?;
        let mut scan = DueScan {
            enrollments: Vec::with_capacity(merged.items.len()),
            queries: merged.queries,
            scanned: merged.scanned,
            returned: merged.returned,
        };
        for (_, item) in &merged.items {
            scan.enrollments.push(enrollment_of(item)?);
        }
        Ok(scan)
    }

    /// Queries every shard of one partition family of the `due` index up to `now`, and merges
    /// the answers by sort key (due time first), keeping `limit`. `keys_only` projects the index
    /// sort key alone (the SLA scan needs nothing else).
    async fn query_due_index(
        &self,
        partition: &'static str,
        op: &'static str,
        now: DateTime<Utc>,
        limit: usize,
        keys_only: bool,
    ) -> Result<ShardPage, StoreError> {
        let mut merged = ShardPage { items: Vec::new(), queries: 0, scanned: 0, returned: 0 };
        if limit == 0 {
            return Ok(merged);
        }
        // '~' sorts after every character of a ULID and a campaign id's usual alphabet, so the
        // bound takes every item due at `now` itself.
        let upto = format!("{}#~", due_millis(now));
        let mut shards = tokio::task::JoinSet::new();
        for shard in 0..DUE_SHARDS {
            let query = ShardQuery {
                client: self.client.clone(),
                table: self.table.clone(),
                pk: format!("{partition}{shard}"),
                upto: upto.clone(),
                limit,
                keys_only,
                op,
            };
            shards.spawn(query.run());
        }
        while let Some(joined) = shards.join_next().await {
            let shard = joined.map_err(|e| StoreError::Unavailable(format!("{op}: query task failed: {e}")))??;
            merged.queries += shard.queries;
            merged.scanned += shard.scanned;
            merged.returned += shard.returned;
            merged.items.extend(shard.items);
        }
        merged.items.sort_by(|a, b| a.0.cmp(&b.0));
        merged.items.truncate(limit);
        Ok(merged)
    }

    async fn get_item(&self, op: &'static str, pk: String, sk: &str) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PK, s(pk))
            .key(SK, s(sk))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| unavailable(op, &e))?;
        Ok(out.item)
    }

    /// A conditional PutItem; `Err(Some(item))`/`Err(None)` when the condition failed, with the
    /// item as it was stored when DynamoDB hands it back.
    async fn put_if(&self, op: &'static str, item: Item, cond: Cond) -> Result<Result<(), Option<Item>>, StoreError> {
        let sent = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(cond.expr)
            .set_expression_attribute_names(non_empty(cond.names))
            .set_expression_attribute_values(non_empty(cond.values))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        conditional(op, sent, |e| match e {
            PutItemError::ConditionalCheckFailedException(e) => Ok(e.item),
            other => Err(describe_service_error(&other)),
        })
    }

    /// Deletes the item at `pk`/`sk` if `cond` holds; an item the condition does not hold for
    /// (or no item) stays, and that is not an error: the callers delete only what is theirs.
    async fn delete_if(&self, op: &'static str, pk: String, sk: &str, cond: Cond) -> Result<(), StoreError> {
        let sent = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key(PK, s(pk))
            .key(SK, s(sk))
            .condition_expression(cond.expr)
            .set_expression_attribute_names(non_empty(cond.names))
            .set_expression_attribute_values(non_empty(cond.values))
            .send()
            .await;
        match sent {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(ctx))
                if matches!(ctx.err(), DeleteItemError::ConditionalCheckFailedException(_)) =>
            {
                Ok(())
            }
            Err(e) => Err(unavailable(op, &e)),
        }
    }

    /// Runs a transaction. `Ok(None)` when it committed; `Ok(Some(reasons))` when a condition
    /// failed or it collided with a concurrent transaction on the same items (the caller reads
    /// again and decides); every other failure is `Unavailable`.
    async fn transact(
        &self,
        op: &'static str,
        items: Vec<TransactWriteItem>,
    ) -> Result<Option<Vec<CancellationReason>>, StoreError> {
        let sent = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            // A fresh token per attempt: should the SDK resend a request that did commit (a
            // timeout on the answer), DynamoDB answers success again instead of failing the
            // conditions against our own write.
            .client_request_token(request_token())
            .send()
            .await;
        match sent {
            Ok(_) => Ok(None),
            Err(SdkError::ServiceError(ctx)) => match ctx.into_err() {
                TransactWriteItemsError::TransactionCanceledException(e) => {
                    let reasons = e.cancellation_reasons.unwrap_or_default();
                    let decided = reasons
                        .iter()
                        .any(|r| matches!(r.code(), Some(CONDITIONAL_CHECK_FAILED | TRANSACTION_CONFLICT)));
                    if decided {
                        Ok(Some(reasons))
                    } else {
                        let codes: Vec<&str> = reasons.iter().filter_map(CancellationReason::code).collect();
                        Err(StoreError::Unavailable(format!("{op}: transaction cancelled ({})", codes.join(", "))))
                    }
                }
                other => Err(StoreError::Unavailable(format!("{op}: {}", describe_service_error(&other)))),
            },
            Err(e) => Err(unavailable(op, &e)),
        }
    }

    /// A conditional put and the trail that tells it, in one transaction: `true` when written,
    /// `false` when the put's condition failed (then nothing is written).
    async fn put_with_trail(
        &self,
        op: &'static str,
        item: Item,
        cond: Cond,
        trail: &[Activity],
    ) -> Result<bool, StoreError> {
        let mut items = vec![cond.put(&self.table, item, false)?];
        items.extend(trail_puts(&self.table, trail)?);
        let Some(reasons) = self.transact(op, items).await? else {
            return Ok(true);
        };
        match reasons.first().and_then(CancellationReason::code) {
            Some(CONDITIONAL_CHECK_FAILED) => Ok(false),
            _ => Err(StoreError::Unavailable(format!("{op}: a concurrent write touched the same items; retry"))),
        }
    }

    /// Writes a lead item whose stored version must be `expected_version`, moving the rep-load
    /// counters when its `owner_open` changes, with `trail` (inside the item while the lead is
    /// young, see `lead_trail`) and the other writes of `also` (the team cursor, a claim) in the
    /// same transaction. `Ok(false)`: a condition failed for good.
    ///
    /// The stored `owner_open` is not known without a read, so the first attempt guesses it
    /// (`guess`) and conditions on the guess; a wrong guess fails the condition, DynamoDB hands
    /// back the stored item, and the second attempt uses the stored value. The version
    /// condition makes a redelivered write fail rather than count twice.
    async fn write_lead(
        &self,
        op: &'static str,
        lead: &Lead,
        expected_version: u64,
        guess: Option<String>,
        trail: &[Activity],
        mut also: Vec<TransactWriteItem>,
    ) -> Result<bool, StoreError> {
        let new_version = expected_version.saturating_add(1);
        let new_open = open_owner(lead).map(str::to_string);
        let inline = inline_entries(new_version, trail)?;
        if inline.is_empty() {
            also.extend(trail_puts(&self.table, trail)?);
        }
        let mut old_open = guess;
        // Two attempts settle it: the second uses what was stored at `expected_version`, and any
        // change since then bumped the version, which no attempt can get past.
        for _ in 0..2 {
            let mut cond = Cond::new("#v = :expected").name("#v", VERSION).value(":expected", n(expected_version));
            cond = match &old_open {
                Some(rep) => cond.and("#o = :old_open").name("#o", OWNER_OPEN).value(":old_open", s(rep)),
                None => cond.and("attribute_not_exists(#o)").name("#o", OWNER_OPEN),
            };
            let update = LeadUpdate::new(lead_item(lead, new_version)?, inline.clone(), cond);
            let stored = if also.is_empty() && old_open == new_open {
                match self.update_lead_if(op, update).await? {
                    Ok(()) => return Ok(true),
                    Err(stored) => stored,
                }
            } else {
                let mut items = vec![update.in_transaction(&self.table, true)?];
                items.extend(also.iter().cloned());
                if old_open != new_open {
                    if let Some(rep) = &old_open {
                        items.push(load_update(&self.table, rep, -1)?);
                    }
                    if let Some(rep) = &new_open {
                        items.push(load_update(&self.table, rep, 1)?);
                    }
                }
                let Some(reasons) = self.transact(op, items).await? else {
                    return Ok(true);
                };
                // The cursor (or a counter, on a collision) is stale: the caller reads again.
                if reasons.iter().skip(1).any(is_cause) {
                    return Ok(false);
                }
                match reasons.first() {
                    Some(r) if r.code() == Some(CONDITIONAL_CHECK_FAILED) => r.item.clone(),
                    _ => return Ok(false),
                }
            };
            let stored = match stored {
                Some(item) => Some(item),
                None => self.get_item(op, lead_pk(lead.id), PROFILE).await?,
            };
            let Some(stored) = stored else {
                return Ok(false);
            };
            if num_u64(&stored, VERSION, "lead")? != expected_version {
                return Ok(false);
            }
            let stored_open = str_attr(&stored, OWNER_OPEN).map(str::to_string);
            if stored_open == old_open {
                // The item now passes the condition that failed: it was read after yet another
                // change (DynamoDB handed back no item). The caller reads again.
                return Ok(false);
            }
            old_open = stored_open;
        }
        Ok(false)
    }
}

/// A conditional write's answer: `Ok(Ok(()))` when written, `Ok(Err(stored))` when its condition
/// failed (`condition_failed` picks that error out, with the stored item if DynamoDB handed it
/// back, and describes any other), and every other failure `Unavailable`.
fn conditional<O, E: ProvideErrorMetadata, R>(
    op: &str,
    sent: Result<O, SdkError<E, R>>,
    condition_failed: impl FnOnce(E) -> Result<Option<Item>, String>,
) -> Result<Result<(), Option<Item>>, StoreError> {
    match sent {
        Ok(_) => Ok(Ok(())),
        Err(SdkError::ServiceError(ctx)) => match condition_failed(ctx.into_err()) {
            Ok(stored) => Ok(Err(stored)),
            Err(other) => Err(StoreError::Unavailable(format!("{op}: {other}"))),
        },
        Err(e) => Err(unavailable(op, &e)),
    }
}

/// Cancellation reasons name every item; no code (or the literal "None") means that item was
/// not the cause.
fn is_cause(reason: &CancellationReason) -> bool {
    matches!(reason.code(), Some(code) if code != "None")
}

/// One partition's answer from the `due` index: (index sort key, item), and what it cost.
struct ShardPage {
    items: Vec<(String, Item)>,
    queries: u32,
    scanned: u64,
    returned: u64,
}

struct ShardQuery {
    client: Client,
    table: String,
    pk: String,
    upto: String,
    limit: usize,
    keys_only: bool,
    op: &'static str,
}

impl ShardQuery {
    async fn run(self) -> Result<ShardPage, StoreError> {
        let mut page = ShardPage { items: Vec::new(), queries: 0, scanned: 0, returned: 0 };
        let page_limit = i32::try_from(self.limit).unwrap_or(i32::MAX);
        let mut start: Option<Item> = None;
        loop {
            let mut query = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(DUE_INDEX)
                .key_condition_expression("#pk = :pk AND #sk <= :upto")
                .expression_attribute_names("#pk", GSI1PK)
                .expression_attribute_names("#sk", GSI1SK)
                .expression_attribute_values(":pk", s(&self.pk))
                .expression_attribute_values(":upto", s(&self.upto))
                .scan_index_forward(true)
                .limit(page_limit)
                .set_exclusive_start_key(start.take());
            if self.keys_only {
                query = query.projection_expression("#sk");
            }
            let out = query.send().await.map_err(|e| unavailable(self.op, &e))?;
            page.queries += 1;
            page.scanned += u64::try_from(out.scanned_count).unwrap_or(0);
            page.returned += u64::try_from(out.count).unwrap_or(0);
            for item in out.items.unwrap_or_default() {
                let sort = str_attr(&item, GSI1SK).unwrap_or_default().to_string();
                page.items.push((sort, item));
            }
            // A page ends early only at DynamoDB's 1 MB cap; past `limit` this shard has nothing
            // the merge could keep.
            match out.last_evaluated_key {
                Some(key) if page.items.len() < self.limit => start = Some(key),
                _ => return Ok(page),
            }
        }
    }
}

/// Trail Queries [`Trails::trails`] keeps in flight.
const TRAILS_IN_FLIGHT: usize = 16;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_sort_keys_sort_like_times() {
        let t = |ms| DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or_default();
        assert!(due_millis(t(999)) < due_millis(t(1_000)));
        assert!(format!("{}#01J", due_millis(t(5))) < format!("{}#~", due_millis(t(5))));
        assert!(format!("{}#~", due_millis(t(5))) < format!("{}#01J", due_millis(t(6))));
    }

    #[test]
    fn ttl_never_rounds_down() {
        let t = |ms| DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or_default();
        assert_eq!(ttl_seconds(t(10_000)), 10);
        assert_eq!(ttl_seconds(t(10_001)), 11);
    }

    #[test]
    fn redaction_drops_addresses_and_keeps_the_rest() {
        assert_eq!(
            redact("Email address is not verified: ada@example.com, <b@c.d>."),
            "Email address is not verified: <redacted> <redacted>"
        );
    }

    #[test]
    fn tokens_are_short_and_fresh() {
        let (a, b) = (request_token(), request_token());
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
    }
}
