//! The lead store over one DynamoDB table (the single-table design of docs/architecture.md, "Data").
//!
//! | item | PK | SK | attributes |
//! |---|---|---|---|
//! | lead | `LEAD#<ulid>` | `PROFILE` | `doc`, `version`, `owner_open` (rep id while owned and not won/lost, never on a tombstone), `GSI1PK`/`GSI1SK` while its SLA runs, `GSI2PK`/`GSI2SK` unless erased, `erased` on a tombstone |
//! | email key | `EMAIL#<email_key>` | `LEAD` | `lead_id` |
//! | alias | `LEAD#<capture id>` | `ALIAS` | `into` |
//! | activity | `LEAD#<ulid>` | `ACT#<activity id>` | `doc`, `at` (ms) |
//! | enrollment | `LEAD#<ulid>` | `ENR#<campaign>` | `doc`, `version`, `GSI1PK`/`GSI1SK` while active and due |
//! | team cursor | `TEAM#<id>` | `CURSOR` | `doc`, `version` |
//! | rep load | `REPLOAD` | `<rep id>` | `open` |
//! | idempotency key | `IDEM#<key>` | `-` | `lead_id`, `until` (ms), `expires_at` (s, the table's TTL) |
//! | effect | `EFFECT#<key>` | `-` | `state` (`claimed`/`done`), `lease_until` (ms), `detail` |
//! | suppression | `SUPPRESS#<email_key>` | `-` | `doc`, `reason`, `at` (ms), `GSI2PK`/`GSI2SK` |
//! | document version | `DOC#<name>` | `V#<10-digit version>` | `doc`, `version` |
//! | latest document | `DOCS` | `<name>` | `doc` (the latest version, body included), `version` |
//!
//! Documents are JSON text in `doc`; the attributes beside it are the ones that conditions
//! compare, indexes sort or counters add up. The `version` attribute, not the copy inside the
//! document, is the truth that conditional writes test.
//!
//! Rep loads are counters kept in step with the leads' `owner_open` attribute: every write that
//! changes a lead's `owner_open` is one transaction with the counter updates, conditioned on the
//! `owner_open` value it replaces. So `rep_loads` is one small query instead of a scan of leads.
//!
//! The sparse index `due` serves two scans, in separate partitions: due enrollments
//! (`GSI1PK = DUE#<shard>`, `GSI1SK = <ms>#<lead>#<campaign>`) and running SLAs
//! (`GSI1PK = SLA#<shard>`, `GSI1SK = <ms of owner.sla_due_at>#<lead>`). A lead item is in the SLA
//! partition exactly while it is owned, valid and still `new`; every lead write is a whole-item
//! Put, so a lead that leaves that state drops the attributes and leaves the index.
//!
//! The sparse index `owner` (hash `owner_open`, range `PK`, every attribute) holds exactly the
//! open leads, by rep: `open_leads_of` queries a rep's partition backwards, newest lead (highest
//! ULID) first. Only lead items carry `owner_open`, so nothing else lands in it.
//!
//! The sparse, keys-only index `listing` (`GSI2PK`, `GSI2SK`) lists the leads newest first and the
//! suppression list newest first, for the console; see the `listing` module.
//!
//! Erasure writes the tombstone as a closed lead: no `owner_open` (its rep's count drops), no
//! SLA entry and no listing entry, whatever owner and status the tombstone document still shows,
//! and an `erased` flag.
//! An erased lead is final: callers do not update tombstones.

mod listing;

pub use listing::{LISTING_INDEX, ListingCost, RECENT_SHARDS, recent_shard};

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{BuildError, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, CancellationReason, Delete, DeleteRequest, KeysAndAttributes, Put,
    ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update, WriteRequest,
};
use chrono::{DateTime, Utc};
use leadflow_core::error::StoreError;
use leadflow_core::funnel::LeadFacts;
use leadflow_core::model::{
    Activity, Document, Enrollment, EnrollmentState, Lead, LeadId, RepId, SalesStatus, Suppression, TeamCursor,
};
use leadflow_core::normalize::email_key;
use leadflow_core::ports::{
    AssignOutcome, AssignmentWrite, CreateOutcome, EffectClaim, EnrollmentPage, FactsPage, IdempotencyClaim, LeadPage,
    LeadStore, SuppressionPage, WriteOutcome,
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

    pub fn table(&self) -> &str {
        &self.table
    }

    /// [`LeadStore::due_enrollments`] with the cost of the reads, for logs and tests.
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
        match sent {
            Ok(_) => Ok(Ok(())),
            Err(SdkError::ServiceError(ctx)) => match ctx.into_err() {
                PutItemError::ConditionalCheckFailedException(e) => Ok(Err(e.item)),
                other => Err(StoreError::Unavailable(format!("{op}: {}", describe_service_error(&other)))),
            },
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
    /// counters when its `owner_open` changes, with the other writes of `also` (the team cursor,
    /// trail entries) in the same transaction. `Ok(false)`: a condition failed for good.
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
        also: Vec<TransactWriteItem>,
    ) -> Result<bool, StoreError> {
        let new_version = expected_version.saturating_add(1);
        let new_open = open_owner(lead).map(str::to_string);
        let mut old_open = guess;
        // Two attempts settle it: the second uses what was stored at `expected_version`, and any
        // change since then bumped the version, which no attempt can get past.
        for _ in 0..2 {
            let item = lead_item(lead, new_version)?;
            let mut cond = Cond::new("#v = :expected").name("#v", VERSION).value(":expected", n(expected_version));
            cond = match &old_open {
                Some(rep) => cond.and("#o = :old_open").name("#o", OWNER_OPEN).value(":old_open", s(rep)),
                None => cond.and("attribute_not_exists(#o)").name("#o", OWNER_OPEN),
            };
            let stored = if also.is_empty() && old_open == new_open {
                match self.put_if(op, item, cond).await? {
                    Ok(()) => return Ok(true),
                    Err(stored) => stored,
                }
            } else {
                let mut items = vec![cond.put(&self.table, item, true)?];
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

/// Trail Queries [`LeadStore::trails`] keeps in flight.
const TRAILS_IN_FLIGHT: usize = 16;

impl LeadStore for DynamoStore {
    async fn claim_idempotency_key(
        &self,
        key: &str,
        lead_id: LeadId,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<IdempotencyClaim, StoreError> {
        const OP: &str = "claim idempotency key";
        let pk = format!("IDEM#{key}");
        // A second round only when the binding vanished (TTL) between the failed put and the
        // read: the key is free then.
        for _ in 0..2 {
            let item = Item::from([
                (PK.into(), s(&pk)),
                (SK.into(), s(NO_SORT)),
                (LEAD_ID.into(), s(lead_id.to_string())),
                (UNTIL.into(), n(expires_at.timestamp_millis())),
                (EXPIRES_AT.into(), n(ttl_seconds(expires_at))),
            ]);
            // TTL deletes lazily, up to days late: an expired binding is free whether or not it
            // is still there.
            let cond = Cond::new("attribute_not_exists(#pk) OR #until < :now")
                .name("#pk", PK)
                .name("#until", UNTIL)
                .value(":now", n(now.timestamp_millis()));
            let stored = match self.put_if(OP, item, cond).await? {
                Ok(()) => return Ok(IdempotencyClaim::Claimed),
                Err(Some(stored)) => Some(stored),
                Err(None) => self.get_item(OP, pk.clone(), NO_SORT).await?,
            };
            if let Some(stored) = stored {
                let until = num_i64(&stored, UNTIL, "idempotency key")?;
                if until >= now.timestamp_millis() {
                    return Ok(IdempotencyClaim::Seen(lead_id_attr(&stored, LEAD_ID, "idempotency key")?));
                }
            }
        }
        Err(StoreError::Unavailable(format!("{OP}: the key kept changing while it was claimed")))
    }

    async fn create_lead(&self, lead: &Lead, trail: &[Activity]) -> Result<CreateOutcome, StoreError> {
        const OP: &str = "create lead";
        let item = lead_item(lead, lead.version)?;
        let absent = || Cond::new("attribute_not_exists(#pk)").name("#pk", PK);
        let email = lead.is_valid().then(|| email_key(&lead.contact.email));
        let owner = open_owner(lead);
        if email.is_none() && owner.is_none() && trail.is_empty() {
            return Ok(match self.put_if(OP, item, absent()).await? {
                Ok(()) => CreateOutcome::Created,
                Err(_) => CreateOutcome::AlreadyExists,
            });
        }
        let mut items = vec![absent().put(&self.table, item, false)?];
        if let Some(key) = &email {
            let email_item = Item::from([
                (PK.into(), s(email_pk(key))),
                (SK.into(), s(EMAIL_SK)),
                (LEAD_ID.into(), s(lead.id.to_string())),
            ]);
            items.push(absent().put(&self.table, email_item, true)?);
        }
        // A lead can be born owned (imports, tests); its rep's count must include it.
        if let Some(rep) = owner {
            items.push(load_update(&self.table, rep, 1)?);
        }
        items.extend(trail_puts(&self.table, trail)?);
        let Some(reasons) = self.transact(OP, items).await? else {
            return Ok(CreateOutcome::Created);
        };
        let failed = |i: usize| reasons.get(i).and_then(CancellationReason::code) == Some(CONDITIONAL_CHECK_FAILED);
        if failed(0) {
            return Ok(CreateOutcome::AlreadyExists);
        }
        if let Some(key) = email.as_ref().filter(|_| failed(1)) {
            let stored = match reasons.get(1).and_then(|r| r.item.clone()) {
                Some(item) => Some(item),
                None => self.get_item(OP, email_pk(key), EMAIL_SK).await?,
            };
            if let Some(stored) = stored {
                return Ok(CreateOutcome::EmailTaken(lead_id_attr(&stored, LEAD_ID, "email key")?));
            }
        }
        // A collision with a concurrent transaction, or an email key erased in between.
        Err(StoreError::Unavailable(format!("{OP}: a concurrent write touched the same items; retry")))
    }

    async fn update_lead(
        &self,
        lead: &Lead,
        expected_version: u64,
        trail: &[Activity],
    ) -> Result<WriteOutcome, StoreError> {
        // Most updates (scores, merges) leave the owner as it was: guessing so makes them one
        // plain conditional put, or one transaction with their trail.
        let guess = open_owner(lead).map(str::to_string);
        let trail = trail_puts(&self.table, trail)?;
        Ok(match self.write_lead("update lead", lead, expected_version, guess, trail).await? {
            true => WriteOutcome::Written,
            false => WriteOutcome::VersionConflict,
        })
    }

    async fn record_alias(&self, alias: LeadId, into: LeadId) -> Result<bool, StoreError> {
        let item =
            Item::from([(PK.into(), s(lead_pk(alias))), (SK.into(), s(ALIAS)), (INTO.into(), s(into.to_string()))]);
        let cond = Cond::new("attribute_not_exists(#pk)").name("#pk", PK);
        Ok(self.put_if("record alias", item, cond).await?.is_ok())
    }

    async fn resolve_lead(&self, id: LeadId) -> Result<Option<LeadId>, StoreError> {
        const OP: &str = "resolve lead";
        let key = |sk: &str| Item::from([(PK.into(), s(lead_pk(id))), (SK.into(), s(sk))]);
        // Both candidates in one round trip: the lead itself, or the alias a merge left.
        let wanted = KeysAndAttributes::builder()
            .keys(key(PROFILE))
            .keys(key(ALIAS))
            .consistent_read(true)
            .projection_expression("#sk, #into")
            .expression_attribute_names("#sk", SK)
            .expression_attribute_names("#into", INTO)
            .build()
            .map_err(|e| build_failed(OP, &e))?;
        let out = self
            .client
            .batch_get_item()
            .request_items(&self.table, wanted)
            .send()
            .await
            .map_err(|e| unavailable(OP, &e))?;
        if out.unprocessed_keys.as_ref().is_some_and(|u| !u.is_empty()) {
            return Err(StoreError::Unavailable(format!("{OP}: DynamoDB left the read unprocessed (throttled)")));
        }
        let found = out.responses.and_then(|mut r| r.remove(&self.table)).unwrap_or_default();
        if found.iter().any(|item| str_attr(item, SK) == Some(PROFILE)) {
            return Ok(Some(id));
        }
        found.iter().find(|item| str_attr(item, SK) == Some(ALIAS)).map(|a| lead_id_attr(a, INTO, "alias")).transpose()
    }

    async fn get_lead(&self, id: LeadId) -> Result<Option<Lead>, StoreError> {
        let Some(item) = self.get_item("get lead", lead_pk(id), PROFILE).await? else {
            return Ok(None);
        };
        lead_of(&item).map(Some)
    }

    async fn find_by_email_key(&self, email_key: &str) -> Result<Option<LeadId>, StoreError> {
        self.get_item("find by email key", email_pk(email_key), EMAIL_SK)
            .await?
            .map(|item| lead_id_attr(&item, LEAD_ID, "email key"))
            .transpose()
    }

    async fn record_activity(&self, activity: &Activity) -> Result<(), StoreError> {
        let item = activity_item(activity)?;
        let cond = Cond::new("attribute_not_exists(#pk)").name("#pk", PK);
        // A condition failure is the activity recorded already: nothing to do.
        self.put_if("record activity", item, cond).await.map(|_| ())
    }

    async fn activities(&self, lead_id: LeadId) -> Result<Vec<Activity>, StoreError> {
        let items = self.query_prefix("activities", lead_id, ACT_PREFIX).await?;
        let mut out = Vec::with_capacity(items.len());
        for item in &items {
            out.push(decode::<Activity>(item, "activity")?);
        }
        // The sort key holds the id only (redeliveries may carry another time), so time order
        // is restored here.
        out.sort_by(|a, b| (a.at, &a.id).cmp(&(b.at, &b.id)));
        Ok(out)
    }

    async fn trails(&self, lead_ids: &[LeadId]) -> Result<Vec<Vec<Activity>>, StoreError> {
        use futures_util::{StreamExt, TryStreamExt};
        // One Query per lead; a few in flight keep a thousand from taking a thousand round trips.
        let ids: Vec<LeadId> = lead_ids.to_vec();
        futures_util::stream::iter(ids.into_iter().map(|id| async move { self.activities(id).await }))
            .buffered(TRAILS_IN_FLIGHT)
            .try_collect()
            .await
    }

    async fn team_cursor(&self, team_id: &str) -> Result<TeamCursor, StoreError> {
        let Some(item) = self.get_item("team cursor", format!("TEAM#{team_id}"), CURSOR).await? else {
            return Ok(TeamCursor::default());
        };
        let what = format!("team cursor {team_id}");
        let mut cursor: TeamCursor = decode(&item, &what)?;
        cursor.version = num_u64(&item, VERSION, &what)?;
        Ok(cursor)
    }

    async fn rep_loads(&self) -> Result<BTreeMap<RepId, u32>, StoreError> {
        let mut loads = BTreeMap::new();
        let mut start: Option<Item> = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("#pk = :pk")
                .expression_attribute_names("#pk", PK)
                .expression_attribute_values(":pk", s(REPLOAD))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| unavailable("rep loads", &e))?;
            for item in out.items.unwrap_or_default() {
                let Some(rep) = str_attr(&item, SK) else { continue };
                let open = num_i64(&item, OPEN, "rep load")?;
                // Reps whose leads all closed keep a zero counter; the SQLite adapter does not
                // list them, nor do we.
                if open > 0 {
                    loads.insert(rep.to_string(), u32::try_from(open).unwrap_or(u32::MAX));
                }
            }
            match out.last_evaluated_key {
                Some(key) => start = Some(key),
                None => return Ok(loads),
            }
        }
    }

    async fn assign(&self, write: &AssignmentWrite) -> Result<AssignOutcome, StoreError> {
        const OP: &str = "assign";
        let cursor = match &write.team_cursor {
            Some((team_id, cursor)) => {
                let next = TeamCursor { credit: cursor.credit.clone(), version: cursor.version.saturating_add(1) };
                let item = Item::from([
                    (PK.into(), s(format!("TEAM#{team_id}"))),
                    (SK.into(), s(CURSOR)),
                    (DOC.into(), s(encode(&next, "team cursor")?)),
                    (VERSION.into(), n(next.version)),
                ]);
                // An absent cursor is the default one, version 0.
                let cond = if cursor.version == 0 {
                    Cond::new("attribute_not_exists(#pk)").name("#pk", PK)
                } else {
                    Cond::new("#v = :cursor_version").name("#v", VERSION).value(":cursor_version", n(cursor.version))
                };
                Some(cond.put(&self.table, item, false)?)
            }
            None => None,
        };
        let mut also: Vec<TransactWriteItem> = cursor.into_iter().collect();
        also.extend(trail_puts(&self.table, &write.trail)?);
        // Route assigns leads that have no owner yet; a re-route after an expired SLA costs a
        // second attempt that moves the count from the old rep to the new one. The counters
        // follow the lead's owner (`write.lead`).
        let assigned = self.write_lead(OP, &write.lead, write.expected_lead_version, None, also).await?;
        Ok(if assigned { AssignOutcome::Assigned } else { AssignOutcome::Conflict })
    }

    async fn claim_effect(
        &self,
        key: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<EffectClaim, StoreError> {
        const OP: &str = "claim effect";
        let pk = format!("EFFECT#{key}");
        for _ in 0..2 {
            let item = Item::from([
                (PK.into(), s(&pk)),
                (SK.into(), s(NO_SORT)),
                (STATE.into(), s("claimed")),
                (LEASE_UNTIL.into(), n(lease_until.timestamp_millis())),
            ]);
            // A claim whose lease ran out belongs to a claimant presumed dead.
            let cond = Cond::new("attribute_not_exists(#pk) OR (#state = :claimed AND #lease <= :now)")
                .name("#pk", PK)
                .name("#state", STATE)
                .name("#lease", LEASE_UNTIL)
                .value(":claimed", s("claimed"))
                .value(":now", n(now.timestamp_millis()));
            let stored = match self.put_if(OP, item, cond).await? {
                Ok(()) => return Ok(EffectClaim::Claimed),
                Err(Some(stored)) => stored,
                Err(None) => match self.get_item(OP, pk.clone(), NO_SORT).await? {
                    Some(stored) => stored,
                    // Released between the put and the read: claim again.
                    None => continue,
                },
            };
            return Ok(match str_attr(&stored, STATE) {
                Some("done") => EffectClaim::Done(str_attr(&stored, DETAIL).unwrap_or_default().to_string()),
                _ => EffectClaim::Busy,
            });
        }
        Ok(EffectClaim::Busy)
    }

    async fn finish_effect(&self, key: &str, detail: &str, trail: &[Activity]) -> Result<(), StoreError> {
        const OP: &str = "finish effect";
        // Unconditional: the effect happened, so it is remembered even if the claim was lost in
        // between (taken over, or released by mistake).
        let item = Item::from([
            (PK.into(), s(format!("EFFECT#{key}"))),
            (SK.into(), s(NO_SORT)),
            (STATE.into(), s("done")),
            (LEASE_UNTIL.into(), n(0)),
            (DETAIL.into(), s(detail)),
        ]);
        if !trail.is_empty() {
            let mut items = vec![plain_put(&self.table, item)?];
            items.extend(trail_puts(&self.table, trail)?);
            // No conditions: only a collision with a concurrent transaction cancels it.
            return match self.transact(OP, items).await? {
                None => Ok(()),
                Some(_) => {
                    Err(StoreError::Unavailable(format!("{OP}: a concurrent write touched the same items; retry")))
                }
            };
        }
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| unavailable("finish effect", &e))?;
        Ok(())
    }

    async fn release_effect(&self, key: &str) -> Result<(), StoreError> {
        let sent = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key(PK, s(format!("EFFECT#{key}")))
            .key(SK, s(NO_SORT))
            .condition_expression("#state = :claimed")
            .expression_attribute_names("#state", STATE)
            .expression_attribute_values(":claimed", s("claimed"))
            .send()
            .await;
        match sent {
            Ok(_) => Ok(()),
            // Done (or gone) already: a finished effect is never forgotten by a release.
            Err(SdkError::ServiceError(ctx))
                if matches!(ctx.err(), DeleteItemError::ConditionalCheckFailedException(_)) =>
            {
                Ok(())
            }
            Err(e) => Err(unavailable("release effect", &e)),
        }
    }

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

    async fn suppress(&self, entry: &Suppression, trail: &[Activity]) -> Result<bool, StoreError> {
        let mut item = Item::from([
            (PK.into(), s(suppress_pk(&entry.email_key))),
            (SK.into(), s(NO_SORT)),
            (DOC.into(), s(encode(entry, "suppression")?)),
            (REASON.into(), s(entry.reason.as_str())),
            (AT.into(), n(entry.at.timestamp_millis())),
        ]);
        item.extend(listing::suppression_keys(entry));
        // The first entry wins: its reason and time are what the list keeps.
        let cond = Cond::new("attribute_not_exists(#pk)").name("#pk", PK);
        if trail.is_empty() {
            return Ok(self.put_if("suppress", item, cond).await?.is_ok());
        }
        if self.put_with_trail("suppress", item, cond, trail).await? {
            return Ok(true);
        }
        // Suppressed before: the trail still tells this opt-out, on its own, and an entry the
        // lead has already stays as it was.
        for a in trail {
            self.record_activity(a).await?;
        }
        Ok(false)
    }

    async fn suppression(&self, email_key: &str) -> Result<Option<Suppression>, StoreError> {
        let Some(item) = self.get_item("suppression", suppress_pk(email_key), NO_SORT).await? else {
            return Ok(None);
        };
        decode(&item, "suppression").map(Some)
    }

    async fn put_document(&self, doc: &Document) -> Result<WriteOutcome, StoreError> {
        const OP: &str = "put document";
        if doc.name.is_empty() {
            return Err(StoreError::Corrupt(format!("{OP}: a document needs a name")));
        }
        // Versions count from 1: version 0 is never the next one.
        let Some(previous) = doc.version.checked_sub(1) else {
            return Ok(WriteOutcome::VersionConflict);
        };
        let body = encode(doc, "document")?;
        let version_item = Item::from([
            (PK.into(), s(doc_pk(&doc.name))),
            (SK.into(), s(doc_sk(doc.version))),
            (DOC.into(), s(&body)),
            (VERSION.into(), n(doc.version)),
        ]);
        let latest_item = Item::from([
            (PK.into(), s(DOCS)),
            (SK.into(), s(&doc.name)),
            (DOC.into(), s(body)),
            (VERSION.into(), n(doc.version)),
        ]);
        let absent = || Cond::new("attribute_not_exists(#pk)").name("#pk", PK);
        let follows_latest = if previous == 0 {
            absent()
        } else {
            Cond::new("#v = :previous").name("#v", VERSION).value(":previous", n(previous))
        };
        let items =
            vec![absent().put(&self.table, version_item, false)?, follows_latest.put(&self.table, latest_item, false)?];
        // Cancelled: another writer stored this version first (or is storing it right now).
        Ok(match self.transact(OP, items).await? {
            None => WriteOutcome::Written,
            Some(_) => WriteOutcome::VersionConflict,
        })
    }

    async fn document(&self, name: &str, version: Option<u32>) -> Result<Option<Document>, StoreError> {
        const OP: &str = "document";
        if name.is_empty() {
            return Ok(None);
        }
        let found = match version {
            None => self.get_item(OP, DOCS.to_string(), name).await?,
            Some(v) => self.get_item(OP, doc_pk(name), &doc_sk(v)).await?,
        };
        found.map(|item| decode(&item, "document")).transpose()
    }

    async fn latest_documents(&self, prefix: &str) -> Result<Vec<Document>, StoreError> {
        const OP: &str = "latest documents";
        let mut docs = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let mut query = self
                .client
                .query()
                .table_name(&self.table)
                .expression_attribute_names("#pk", PK)
                .expression_attribute_values(":pk", s(DOCS))
                .consistent_read(true)
                .set_exclusive_start_key(start.take());
            // DynamoDB refuses an empty string as a key condition value: no prefix, no condition.
            query = if prefix.is_empty() {
                query.key_condition_expression("#pk = :pk")
            } else {
                query
                    .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
                    .expression_attribute_names("#sk", SK)
                    .expression_attribute_values(":prefix", s(prefix))
            };
            let out = query.send().await.map_err(|e| unavailable(OP, &e))?;
            // The sort key is the name: the items come in name order.
            for item in out.items.unwrap_or_default() {
                docs.push(decode(&item, "document")?);
            }
            match out.last_evaluated_key {
                Some(key) => start = Some(key),
                None => return Ok(docs),
            }
        }
    }

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

    async fn suppressions(&self, cursor: Option<String>, limit: usize) -> Result<SuppressionPage, StoreError> {
        self.suppressions_page(cursor, limit).await
    }

    async fn due_slas(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<LeadId>, StoreError> {
        let merged = self.query_due_index(SLA_PARTITION, "due SLAs", now, limit, true).await?;
        merged.items.iter().map(|(sort, _)| sla_lead(sort)).collect()
    }

    async fn erase_lead(&self, tombstone: &Lead, email_key: Option<&str>) -> Result<(), StoreError> {
        const OP: &str = "erase lead";
        let id = tombstone.id;
        let Some(expected) = tombstone.version.checked_sub(1) else {
            return Err(StoreError::Corrupt(format!(
                "{OP} {id}: a tombstone's version is the stored one + 1, so at least 1"
            )));
        };
        // The profile and the email key go in one transaction; a key that points at another
        // lead (the address was taken over after a merge) is left alone.
        let mut email = email_key;
        let mut outcome = None;
        for _ in 0..ERASE_ATTEMPTS {
            let Some(stored) = self.get_item(OP, lead_pk(id), PROFILE).await? else {
                // Nothing to replace; the trail and the key may still be there.
                outcome = Some(Erasure::NothingToWrite);
                break;
            };
            let version = num_u64(&stored, VERSION, "lead")?;
            if is_erased(&stored) && version >= tombstone.version {
                // A redelivered erasure: finish what the first one may have left.
                outcome = Some(Erasure::NothingToWrite);
                break;
            }
            if version != expected {
                return Err(StoreError::Unavailable(format!(
                    "{OP} {id}: the lead is at version {version}, the tombstone follows {expected}; read it again and retry"
                )));
            }
            let old_open = str_attr(&stored, OWNER_OPEN).map(str::to_string);
            let mut cond = Cond::new("#v = :expected").name("#v", VERSION).value(":expected", n(expected));
            cond = match &old_open {
                Some(rep) => cond.and("#o = :old_open").name("#o", OWNER_OPEN).value(":old_open", s(rep)),
                None => cond.and("attribute_not_exists(#o)").name("#o", OWNER_OPEN),
            };
            let mut items = vec![cond.put(&self.table, tombstone_item(tombstone)?, false)?];
            if let Some(key) = email {
                items.push(email_key_delete(&self.table, key, id)?);
            }
            // An erased lead is closed: its rep's open count drops.
            if let Some(rep) = &old_open {
                items.push(load_update(&self.table, rep, -1)?);
            }
            let Some(reasons) = self.transact(OP, items).await? else {
                outcome = Some(Erasure::Written);
                break;
            };
            if email.is_some() && reasons.get(1).and_then(CancellationReason::code) == Some(CONDITIONAL_CHECK_FAILED) {
                // The key belongs to another lead now: not ours to delete.
                email = None;
            }
            // Otherwise the lead changed between the read and the write: read again.
        }
        match outcome {
            None => {
                return Err(StoreError::Unavailable(format!(
                    "{OP} {id}: the lead kept changing while it was erased; retry"
                )));
            }
            // The key went with the profile, or belongs to another lead.
            Some(Erasure::Written) => {}
            Some(Erasure::NothingToWrite) => {
                if let Some(key) = email {
                    self.delete_email_key_of(key, id).await?;
                }
            }
        }
        self.delete_activities(id).await
    }
}

impl DynamoStore {
    /// One page of a Scan filtered to the items whose sort key is `sort`, resumed from the
    /// cursor, and the cursor of the next page. DynamoDB counts its `Limit` before the filter,
    /// over every kind of item, so a page stops after [`LIST_SCAN_REQUESTS`] requests however
    /// few items it found: pages may be short, or even empty, while the cursor is `Some`. A page
    /// never holds more than `limit` items (at least one). The cursor is the hex of the last
    /// evaluated key (`PK`/`SK`, which hold no personal data); a cursor this store did not hand
    /// out is an error.
    async fn scan_page<T>(
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

    async fn query_prefix(&self, op: &'static str, lead_id: LeadId, prefix: &str) -> Result<Vec<Item>, StoreError> {
        self.query_lead_items(op, lead_id, prefix, false).await
    }

    /// The lead's items whose sort key starts with `prefix`; with `keys_only`, their keys alone.
    async fn query_lead_items(
        &self,
        op: &'static str,
        lead_id: LeadId,
        prefix: &str,
        keys_only: bool,
    ) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let mut query = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
                .expression_attribute_names("#pk", PK)
                .expression_attribute_names("#sk", SK)
                .expression_attribute_values(":pk", s(lead_pk(lead_id)))
                .expression_attribute_values(":prefix", s(prefix))
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
    async fn delete_email_key_of(&self, key: &str, lead: LeadId) -> Result<(), StoreError> {
        let sent = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key(PK, s(email_pk(key)))
            .key(SK, s(EMAIL_SK))
            .condition_expression("#lead = :lead")
            .expression_attribute_names("#lead", LEAD_ID)
            .expression_attribute_values(":lead", s(lead.to_string()))
            .send()
            .await;
        match sent {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(ctx))
                if matches!(ctx.err(), DeleteItemError::ConditionalCheckFailedException(_)) =>
            {
                Ok(())
            }
            Err(e) => Err(unavailable("erase email key", &e)),
        }
    }

    /// Deletes the lead's activities in batches of 25, retrying what DynamoDB leaves unprocessed.
    async fn delete_activities(&self, lead: LeadId) -> Result<(), StoreError> {
        const OP: &str = "erase activities";
        let keys = self.query_lead_items(OP, lead, ACT_PREFIX, true).await?;
        for chunk in keys.chunks(BATCH_WRITE_MAX) {
            let mut requests = Vec::with_capacity(chunk.len());
            for item in chunk {
                let key = key_of(item)?;
                let delete = DeleteRequest::builder().set_key(Some(key)).build().map_err(|e| build_failed(OP, &e))?;
                requests.push(WriteRequest::builder().delete_request(delete).build());
            }
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

/// A condition expression with the names and values it uses (DynamoDB refuses unused ones).
struct Cond {
    expr: String,
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

impl Cond {
    fn new(expr: &str) -> Self {
        Self { expr: expr.to_string(), names: HashMap::new(), values: HashMap::new() }
    }

    fn and(mut self, expr: &str) -> Self {
        self.expr = format!("({}) AND ({expr})", self.expr);
        self
    }

    fn name(mut self, placeholder: &str, name: &str) -> Self {
        self.names.insert(placeholder.to_string(), name.to_string());
        self
    }

    fn value(mut self, placeholder: &str, value: AttributeValue) -> Self {
        self.values.insert(placeholder.to_string(), value);
        self
    }

    /// A transaction Put of `item` under this condition; `return_old` asks DynamoDB to put the
    /// stored item into the cancellation reason when the condition fails.
    fn put(self, table: &str, item: Item, return_old: bool) -> Result<TransactWriteItem, StoreError> {
        let mut put = Put::builder()
            .table_name(table)
            .set_item(Some(item))
            .condition_expression(self.expr)
            .set_expression_attribute_names(non_empty(self.names))
            .set_expression_attribute_values(non_empty(self.values));
        if return_old {
            put = put.return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        }
        let put = put.build().map_err(|e| build_failed("transaction put", &e))?;
        Ok(TransactWriteItem::builder().put(put).build())
    }
}

fn activity_item(activity: &Activity) -> Result<Item, StoreError> {
    Ok(Item::from([
        (PK.into(), s(lead_pk(activity.lead_id))),
        (SK.into(), s(format!("{ACT_PREFIX}{}", activity.id))),
        (DOC.into(), s(encode(activity, "activity")?)),
        (AT.into(), n(activity.at.timestamp_millis())),
    ]))
}

fn plain_put(table: &str, item: Item) -> Result<TransactWriteItem, StoreError> {
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .build()
        .map_err(|e| build_failed("transaction put", &e))?;
    Ok(TransactWriteItem::builder().put(put).build())
}

/// A trail's entries as unconditional puts inside the transaction of the change they tell: an
/// entry replaces one of the same id (see `LeadStore` on trails). A condition here would cancel
/// the change itself.
fn trail_puts(table: &str, trail: &[Activity]) -> Result<Vec<TransactWriteItem>, StoreError> {
    trail.iter().map(|a| plain_put(table, activity_item(a)?)).collect()
}

fn load_update(table: &str, rep: &str, delta: i64) -> Result<TransactWriteItem, StoreError> {
    let update = Update::builder()
        .table_name(table)
        .key(PK, s(REPLOAD))
        .key(SK, s(rep))
        .update_expression("ADD #open :delta")
        .expression_attribute_names("#open", OPEN)
        .expression_attribute_values(":delta", n(delta))
        .build()
        .map_err(|e| build_failed("rep load update", &e))?;
    Ok(TransactWriteItem::builder().update(update).build())
}

/// A transaction Delete of the email key, if it is absent or points at `lead`.
fn email_key_delete(table: &str, key: &str, lead: LeadId) -> Result<TransactWriteItem, StoreError> {
    let delete = Delete::builder()
        .table_name(table)
        .key(PK, s(email_pk(key)))
        .key(SK, s(EMAIL_SK))
        .condition_expression("attribute_not_exists(#pk) OR #lead = :lead")
        .expression_attribute_names("#pk", PK)
        .expression_attribute_names("#lead", LEAD_ID)
        .expression_attribute_values(":lead", s(lead.to_string()))
        .build()
        .map_err(|e| build_failed("email key delete", &e))?;
    Ok(TransactWriteItem::builder().delete(delete).build())
}

fn non_empty<K, V>(map: HashMap<K, V>) -> Option<HashMap<K, V>> {
    (!map.is_empty()).then_some(map)
}

fn lead_pk(id: LeadId) -> String {
    format!("LEAD#{id}")
}

/// The lead id of a `LEAD#<ulid>` partition key.
fn pk_lead(item: &Item, op: &str) -> Result<LeadId, StoreError> {
    str_attr(item, PK)
        .and_then(|pk| pk.strip_prefix("LEAD#"))
        .and_then(|id| id.parse().ok())
        .ok_or_else(|| StoreError::Corrupt(format!("{op}: a key's {PK} is not a lead's")))
}

fn email_pk(key: &str) -> String {
    format!("EMAIL#{key}")
}

fn suppress_pk(email_key: &str) -> String {
    format!("SUPPRESS#{email_key}")
}

fn doc_pk(name: &str) -> String {
    format!("DOC#{name}")
}

/// Zero-padded so that text order is version order (a `u32` has at most 10 digits).
fn doc_sk(version: u32) -> String {
    format!("V#{version:010}")
}

fn lead_of(item: &Item) -> Result<Lead, StoreError> {
    let mut lead: Lead = decode(item, "lead")?;
    lead.version = num_u64(item, VERSION, &format!("lead {}", lead.id))?;
    Ok(lead)
}

fn is_erased(item: &Item) -> bool {
    item.get(ERASED).and_then(|v| v.as_bool().ok()).copied().unwrap_or(false)
}

/// The lead id at the end of an SLA index key (`<ms>#<lead id>`).
fn sla_lead(sort: &str) -> Result<LeadId, StoreError> {
    sort.split_once('#')
        .and_then(|(_, id)| id.parse().ok())
        .ok_or_else(|| StoreError::Corrupt(format!("due SLAs: index key {sort:?} does not end in a lead id")))
}

/// The table key (`PK`, `SK`) of an item.
fn key_of(item: &Item) -> Result<Item, StoreError> {
    let mut key = Item::new();
    for name in [PK, SK] {
        let value = item.get(name).ok_or_else(|| StoreError::Corrupt(format!("an item has no {name}")))?;
        key.insert(name.to_string(), value.clone());
    }
    Ok(key)
}

/// A listing cursor (`list_leads`, `campaign_enrollments`): the hex of the JSON of the key's
/// string attributes.
fn encode_cursor(op: &str, key: &Item) -> Result<String, StoreError> {
    let mut plain = BTreeMap::new();
    for (name, value) in key {
        let text =
            value.as_s().map_err(|_| StoreError::Corrupt(format!("{op}: key attribute {name} is not a string")))?;
        plain.insert(name.as_str(), text.as_str());
    }
    Ok(hex::encode(encode(&plain, "cursor")?))
}

fn decode_cursor(op: &str, cursor: &str) -> Result<Item, StoreError> {
    // Not a stored item, but what the variant means to a caller: this input will never read.
    let bad = || StoreError::Corrupt(format!("{op}: the cursor is not one this store handed out"));
    if cursor.len() > MAX_CURSOR_LEN {
        return Err(bad());
    }
    let bytes = hex::decode(cursor).map_err(|_| bad())?;
    let plain: BTreeMap<String, String> = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    let well_formed = plain.len() == 2 && [PK, SK].iter().all(|name| plain.get(*name).is_some_and(|v| !v.is_empty()));
    if !well_formed {
        return Err(bad());
    }
    Ok(plain.into_iter().map(|(name, value)| (name, s(value))).collect())
}

/// The rep whose open-lead count (and `owner` index partition) includes this lead, if any. A
/// tombstone is nobody's open lead whatever its document says, as in the SQLite store, so that
/// even an update of one (which callers do not make) keeps it out of the counts and the index.
fn open_owner(lead: &Lead) -> Option<&str> {
    if leadflow_core::erasure::is_erased(lead) {
        return None;
    }
    match lead.status {
        SalesStatus::Won | SalesStatus::Lost => None,
        SalesStatus::New | SalesStatus::Contacted => lead.owner.as_ref().map(|o| o.rep_id.as_str()),
    }
}

fn lead_item(lead: &Lead, version: u64) -> Result<Item, StoreError> {
    let doc = if lead.version == version {
        encode(lead, "lead")?
    } else {
        encode(&Lead { version, ..lead.clone() }, "lead")?
    };
    let mut item = Item::from([
        (PK.into(), s(lead_pk(lead.id))),
        (SK.into(), s(PROFILE)),
        (DOC.into(), s(doc)),
        (VERSION.into(), n(version)),
    ]);
    if let Some(rep) = open_owner(lead) {
        item.insert(OWNER_OPEN.into(), s(rep));
    }
    if let Some(due) = sla_due(lead) {
        item.insert(GSI1PK.into(), s(format!("{SLA_PARTITION}{}", due_shard(lead.id))));
        item.insert(GSI1SK.into(), s(format!("{}#{}", due_millis(due), lead.id)));
    }
    // Every whole-item put of a lead carries them, so an update keeps it listed.
    if !leadflow_core::erasure::is_erased(lead) {
        item.extend(listing::recent_keys(lead.id));
    }
    Ok(item)
}

/// When the lead's SLA expires, while one runs: owned, valid and not yet contacted (or closed).
fn sla_due(lead: &Lead) -> Option<DateTime<Utc>> {
    match (&lead.owner, lead.status) {
        (Some(owner), SalesStatus::New) if lead.is_valid() => Some(owner.sla_due_at),
        _ => None,
    }
}

/// The tombstone as stored: a closed lead (no open count, no SLA) flagged as erased.
fn tombstone_item(tombstone: &Lead) -> Result<Item, StoreError> {
    let mut item = lead_item(tombstone, tombstone.version)?;
    item.remove(OWNER_OPEN);
    item.remove(GSI1PK);
    item.remove(GSI1SK);
    item.remove(GSI2PK);
    item.remove(GSI2SK);
    item.insert(ERASED.into(), AttributeValue::Bool(true));
    Ok(item)
}

fn enrollment_item(enrollment: &Enrollment, version: u64) -> Result<Item, StoreError> {
    let doc = if enrollment.version == version {
        encode(enrollment, "enrollment")?
    } else {
        encode(&Enrollment { version, ..enrollment.clone() }, "enrollment")?
    };
    let mut item = Item::from([
        (PK.into(), s(lead_pk(enrollment.lead_id))),
        (SK.into(), s(format!("{ENR_PREFIX}{}", enrollment.campaign_id))),
        (DOC.into(), s(doc)),
        (VERSION.into(), n(version)),
    ]);
    // Only active enrollments with a due time are in the (sparse) due index, whatever time the
    // document of an ended one still holds.
    if let (EnrollmentState::Active, Some(due)) = (&enrollment.state, enrollment.next_due_at) {
        item.insert(GSI1PK.into(), s(format!("{DUE_PARTITION}{}", due_shard(enrollment.lead_id))));
        item.insert(GSI1SK.into(), s(format!("{}#{}#{}", due_millis(due), enrollment.lead_id, enrollment.campaign_id)));
    }
    Ok(item)
}

fn enrollment_of(item: &Item) -> Result<Enrollment, StoreError> {
    let mut e: Enrollment = decode(item, "enrollment")?;
    e.version = num_u64(item, VERSION, "enrollment")?;
    Ok(e)
}

/// The due-index shard of a lead's enrollments and SLA: stable across builds and processes (a
/// digest, not `std`'s randomly seeded hasher).
pub fn due_shard(lead: LeadId) -> u32 {
    let digest = Sha256::digest(lead.to_string().as_bytes());
    u32::from(digest[0]) % DUE_SHARDS
}

/// Milliseconds since the epoch, zero-padded so that text order is time order.
fn due_millis(at: DateTime<Utc>) -> String {
    format!("{:015}", at.timestamp_millis().max(0))
}

/// Whole seconds for DynamoDB's TTL, rounded up so that TTL never removes a binding early.
fn ttl_seconds(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis().div_euclid(1000) + i64::from(at.timestamp_millis().rem_euclid(1000) != 0)
}

/// A per-attempt transaction token (at most 36 characters): unique within the 10 minutes
/// DynamoDB remembers tokens.
fn request_token() -> String {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let seed = format!("{nanos}:{}:{}", std::process::id(), SEQ.fetch_add(1, Ordering::Relaxed));
    hex::encode(&Sha256::digest(seed.as_bytes())[..16])
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: impl std::fmt::Display) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn str_attr<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name).and_then(|v| v.as_s().ok()).map(String::as_str)
}

fn num_i64(item: &Item, name: &str, what: &str) -> Result<i64, StoreError> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|t| t.parse().ok())
        .ok_or_else(|| StoreError::Corrupt(format!("{what}: attribute {name} is missing or not an integer")))
}

fn num_u64(item: &Item, name: &str, what: &str) -> Result<u64, StoreError> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|t| t.parse().ok())
        .ok_or_else(|| StoreError::Corrupt(format!("{what}: attribute {name} is missing or not a version")))
}

fn lead_id_attr(item: &Item, name: &str, what: &str) -> Result<LeadId, StoreError> {
    str_attr(item, name)
        .and_then(|t| t.parse().ok())
        .ok_or_else(|| StoreError::Corrupt(format!("{what}: attribute {name} is missing or not a lead id")))
}

fn encode<T: Serialize>(value: &T, what: &str) -> Result<String, StoreError> {
    // Serializing our own types fails only on a bug (a map with non-string keys); the serde
    // message names no field values.
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt(format!("{what} cannot be encoded: {e}")))
}

fn decode<T: DeserializeOwned>(item: &Item, what: &str) -> Result<T, StoreError> {
    let doc = str_attr(item, DOC).ok_or_else(|| StoreError::Corrupt(format!("{what}: attribute doc is missing")))?;
    // serde's own message can quote the offending value (an address, a name): only its
    // category and position go into the error.
    serde_json::from_str(doc).map_err(|e| {
        StoreError::Corrupt(format!(
            "{what}: doc does not decode ({:?} error at line {}, column {})",
            e.classify(),
            e.line(),
            e.column()
        ))
    })
}

fn build_failed(op: &str, e: &BuildError) -> StoreError {
    StoreError::Unavailable(format!("{op}: the request could not be built: {e}"))
}

fn unavailable<E: ProvideErrorMetadata, R>(op: &str, err: &SdkError<E, R>) -> StoreError {
    StoreError::Unavailable(format!("{op}: {}", describe_sdk_error(err)))
}

fn describe_service_error<E: ProvideErrorMetadata>(err: &E) -> String {
    let code = err.code().unwrap_or("unknown service error");
    match err.message() {
        Some(message) => format!("{code}: {}", redact(message)),
        None => code.to_string(),
    }
}

/// An SDK failure as one line for an error message: the service's code and (redacted)
/// message, or what went wrong on the way. Shared by every adapter of this crate: the SDK
/// crates re-export the same `SdkError`.
pub(crate) fn describe_sdk_error<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> String {
    match err {
        SdkError::ServiceError(ctx) => describe_service_error(ctx.err()),
        SdkError::TimeoutError(_) => "the request timed out".to_string(),
        SdkError::DispatchFailure(failure) if failure.is_timeout() => "the connection timed out".to_string(),
        SdkError::DispatchFailure(failure) if failure.is_io() => "the connection failed".to_string(),
        SdkError::DispatchFailure(_) => "the request could not be sent".to_string(),
        SdkError::ResponseError(_) => "the response could not be read".to_string(),
        _ => "the request could not be built".to_string(),
    }
}

/// Services quote addresses in their messages ("… failed the check: ada@example.com"); every
/// word with an `@` goes.
pub(crate) fn redact(message: &str) -> String {
    message.split_whitespace().map(|w| if w.contains('@') { "<redacted>" } else { w }).collect::<Vec<_>>().join(" ")
}

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
