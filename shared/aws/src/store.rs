//! The lead store over one DynamoDB table (the single-table design of DESIGN.md, "Data").
//!
//! | item | PK | SK | attributes |
//! |---|---|---|---|
//! | lead | `LEAD#<ulid>` | `PROFILE` | `doc`, `version`, `owner_open` (rep id while owned and not won/lost) |
//! | email key | `EMAIL#<email_key>` | `LEAD` | `lead_id` |
//! | alias | `LEAD#<capture id>` | `ALIAS` | `into` |
//! | activity | `LEAD#<ulid>` | `ACT#<activity id>` | `doc`, `at` (ms) |
//! | enrollment | `LEAD#<ulid>` | `ENR#<campaign>` | `doc`, `version`, `GSI1PK`/`GSI1SK` while active and due |
//! | team cursor | `TEAM#<id>` | `CURSOR` | `doc`, `version` |
//! | rep load | `REPLOAD` | `<rep id>` | `open` |
//! | idempotency key | `IDEM#<key>` | `-` | `lead_id`, `until` (ms), `expires_at` (s, the table's TTL) |
//! | effect | `EFFECT#<key>` | `-` | `state` (`claimed`/`done`), `lease_until` (ms), `detail` |
//!
//! Documents are JSON text in `doc`; the attributes beside it are the ones that conditions
//! compare, indexes sort or counters add up. The `version` attribute, not the copy inside the
//! document, is the truth that conditional writes test.
//!
//! Rep loads are counters kept in step with the leads' `owner_open` attribute: every write that
//! changes a lead's `owner_open` is one transaction with the counter updates, conditioned on the
//! `owner_open` value it replaces. So `rep_loads` is one small query instead of a scan of leads.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{BuildError, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, CancellationReason, KeysAndAttributes, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem,
    Update,
};
use chrono::{DateTime, Utc};
use leadflow_core::error::StoreError;
use leadflow_core::model::{Activity, Enrollment, EnrollmentState, Lead, LeadId, RepId, SalesStatus, TeamCursor};
use leadflow_core::normalize::email_key;
use leadflow_core::ports::{
    AssignOutcome, AssignmentWrite, CreateOutcome, EffectClaim, IdempotencyClaim, LeadStore, WriteOutcome,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

/// The name of the global secondary index over due enrollments.
pub const DUE_INDEX: &str = "due";
/// How many partitions the due index is spread over, so that one hot `DUE#` key does not carry
/// every enrollment's writes.
pub const DUE_SHARDS: u32 = 8;

const PK: &str = "PK";
const SK: &str = "SK";
const GSI1PK: &str = "GSI1PK";
const GSI1SK: &str = "GSI1SK";
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

const PROFILE: &str = "PROFILE";
const ALIAS: &str = "ALIAS";
const CURSOR: &str = "CURSOR";
const REPLOAD: &str = "REPLOAD";
const NO_SORT: &str = "-";
const ACT_PREFIX: &str = "ACT#";
const ENR_PREFIX: &str = "ENR#";

const CONDITIONAL_CHECK_FAILED: &str = "ConditionalCheckFailed";
const TRANSACTION_CONFLICT: &str = "TransactionConflict";

/// A stored item as the SDK hands it over.
type Item = HashMap<String, AttributeValue>;

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
        if limit == 0 {
            return Ok(DueScan::default());
        }
        // '~' sorts after every character of a ULID and a campaign id's usual alphabet, so the
        // bound takes every enrollment due at `now` itself.
        let upto = format!("{}#~", due_millis(now));
        let page_limit = i32::try_from(limit).unwrap_or(i32::MAX);
        let mut shards = tokio::task::JoinSet::new();
        for shard in 0..DUE_SHARDS {
            let client = self.client.clone();
            let table = self.table.clone();
            let upto = upto.clone();
            shards.spawn(async move { query_due_shard(client, table, shard, upto, limit, page_limit).await });
        }
        let mut scan = DueScan::default();
        let mut keyed: Vec<(String, Enrollment)> = Vec::new();
        while let Some(joined) = shards.join_next().await {
            let shard = joined.map_err(|e| StoreError::Unavailable(format!("due query task failed: {e}")))??;
            scan.queries += shard.queries;
            scan.scanned += shard.scanned;
            scan.returned += shard.returned;
            keyed.extend(shard.items);
        }
        keyed.sort_by(|a, b| a.0.cmp(&b.0));
        keyed.truncate(limit);
        scan.enrollments = keyed.into_iter().map(|(_, e)| e).collect();
        Ok(scan)
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

    /// Writes a lead item whose stored version must be `expected_version`, moving the rep-load
    /// counters when its `owner_open` changes, optionally with another conditional write (the
    /// team cursor) in the same transaction. `Ok(false)`: a condition failed for good.
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
        also: Option<TransactWriteItem>,
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
            let stored = if also.is_none() && old_open == new_open {
                match self.put_if(op, item, cond).await? {
                    Ok(()) => return Ok(true),
                    Err(stored) => stored,
                }
            } else {
                let mut items = vec![cond.put(&self.table, item, true)?];
                items.extend(also.clone());
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

struct ShardPage {
    items: Vec<(String, Enrollment)>,
    queries: u32,
    scanned: u64,
    returned: u64,
}

async fn query_due_shard(
    client: Client,
    table: String,
    shard: u32,
    upto: String,
    limit: usize,
    page_limit: i32,
) -> Result<ShardPage, StoreError> {
    let mut page = ShardPage { items: Vec::new(), queries: 0, scanned: 0, returned: 0 };
    let mut start: Option<Item> = None;
    loop {
        let out = client
            .query()
            .table_name(&table)
            .index_name(DUE_INDEX)
            .key_condition_expression("#pk = :pk AND #sk <= :upto")
            .expression_attribute_names("#pk", GSI1PK)
            .expression_attribute_names("#sk", GSI1SK)
            .expression_attribute_values(":pk", s(format!("DUE#{shard}")))
            .expression_attribute_values(":upto", s(&upto))
            .scan_index_forward(true)
            .limit(page_limit)
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .map_err(|e| unavailable("due enrollments", &e))?;
        page.queries += 1;
        page.scanned += u64::try_from(out.scanned_count).unwrap_or(0);
        page.returned += u64::try_from(out.count).unwrap_or(0);
        for item in out.items.unwrap_or_default() {
            let sort = str_attr(&item, GSI1SK).unwrap_or_default().to_string();
            page.items.push((sort, enrollment_of(&item)?));
        }
        // A page ends early only at DynamoDB's 1 MB cap; past `limit` this shard has nothing
        // the merge could keep.
        match out.last_evaluated_key {
            Some(key) if page.items.len() < limit => start = Some(key),
            _ => return Ok(page),
        }
    }
}

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

    async fn create_lead(&self, lead: &Lead) -> Result<CreateOutcome, StoreError> {
        const OP: &str = "create lead";
        let item = lead_item(lead, lead.version)?;
        let absent = || Cond::new("attribute_not_exists(#pk)").name("#pk", PK);
        let email = lead.is_valid().then(|| email_key(&lead.contact.email));
        let owner = open_owner(lead);
        if email.is_none() && owner.is_none() {
            return Ok(match self.put_if(OP, item, absent()).await? {
                Ok(()) => CreateOutcome::Created,
                Err(_) => CreateOutcome::AlreadyExists,
            });
        }
        let mut items = vec![absent().put(&self.table, item, false)?];
        if let Some(key) = &email {
            let email_item = Item::from([
                (PK.into(), s(format!("EMAIL#{key}"))),
                (SK.into(), s("LEAD")),
                (LEAD_ID.into(), s(lead.id.to_string())),
            ]);
            items.push(absent().put(&self.table, email_item, true)?);
        }
        // A lead can be born owned (imports, tests); its rep's count must include it.
        if let Some(rep) = owner {
            items.push(load_update(&self.table, rep, 1)?);
        }
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
                None => self.get_item(OP, format!("EMAIL#{key}"), "LEAD").await?,
            };
            if let Some(stored) = stored {
                return Ok(CreateOutcome::EmailTaken(lead_id_attr(&stored, LEAD_ID, "email key")?));
            }
        }
        // A collision with a concurrent transaction, or an email key erased in between.
        Err(StoreError::Unavailable(format!("{OP}: a concurrent write touched the same items; retry")))
    }

    async fn update_lead(&self, lead: &Lead, expected_version: u64) -> Result<WriteOutcome, StoreError> {
        // Most updates (scores, merges) leave the owner as it was: guessing so makes them one
        // plain conditional put.
        let guess = open_owner(lead).map(str::to_string);
        Ok(match self.write_lead("update lead", lead, expected_version, guess, None).await? {
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
        let what = format!("lead {id}");
        let mut lead: Lead = decode(&item, &what)?;
        lead.version = num_u64(&item, VERSION, &what)?;
        Ok(Some(lead))
    }

    async fn find_by_email_key(&self, email_key: &str) -> Result<Option<LeadId>, StoreError> {
        self.get_item("find by email key", format!("EMAIL#{email_key}"), "LEAD")
            .await?
            .map(|item| lead_id_attr(&item, LEAD_ID, "email key"))
            .transpose()
    }

    async fn record_activity(&self, activity: &Activity) -> Result<(), StoreError> {
        let item = Item::from([
            (PK.into(), s(lead_pk(activity.lead_id))),
            (SK.into(), s(format!("{ACT_PREFIX}{}", activity.id))),
            (DOC.into(), s(encode(activity, "activity")?)),
            (AT.into(), n(activity.at.timestamp_millis())),
        ]);
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
        // Route assigns leads that have no owner yet; a re-route after an expired SLA costs a
        // second attempt that moves the count from the old rep to the new one. The counters
        // follow the lead's owner (`write.lead`).
        let assigned = self.write_lead(OP, &write.lead, write.expected_lead_version, None, cursor).await?;
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

    async fn finish_effect(&self, key: &str, detail: &str) -> Result<(), StoreError> {
        // Unconditional: the effect happened, so it is remembered even if the claim was lost in
        // between (taken over, or released by mistake).
        let item = Item::from([
            (PK.into(), s(format!("EFFECT#{key}"))),
            (SK.into(), s(NO_SORT)),
            (STATE.into(), s("done")),
            (LEASE_UNTIL.into(), n(0)),
            (DETAIL.into(), s(detail)),
        ]);
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

    async fn enroll(&self, enrollment: &Enrollment) -> Result<bool, StoreError> {
        let item = enrollment_item(enrollment, enrollment.version)?;
        let cond = Cond::new("attribute_not_exists(#pk)").name("#pk", PK);
        Ok(self.put_if("enroll", item, cond).await?.is_ok())
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
    ) -> Result<WriteOutcome, StoreError> {
        // A Put replaces the whole item: an enrollment that stopped drops its index attributes
        // and leaves the due index.
        let item = enrollment_item(enrollment, expected_version.saturating_add(1))?;
        let cond = Cond::new("#v = :expected").name("#v", VERSION).value(":expected", n(expected_version));
        Ok(match self.put_if("update enrollment", item, cond).await? {
            Ok(()) => WriteOutcome::Written,
            Err(_) => WriteOutcome::VersionConflict,
        })
    }
}

impl DynamoStore {
    async fn query_prefix(&self, op: &'static str, lead_id: LeadId, prefix: &str) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
                .expression_attribute_names("#pk", PK)
                .expression_attribute_names("#sk", SK)
                .expression_attribute_values(":pk", s(lead_pk(lead_id)))
                .expression_attribute_values(":prefix", s(prefix))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| unavailable(op, &e))?;
            items.extend(out.items.unwrap_or_default());
            match out.last_evaluated_key {
                Some(key) => start = Some(key),
                None => return Ok(items),
            }
        }
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

fn non_empty<K, V>(map: HashMap<K, V>) -> Option<HashMap<K, V>> {
    (!map.is_empty()).then_some(map)
}

fn lead_pk(id: LeadId) -> String {
    format!("LEAD#{id}")
}

/// The rep whose open-lead count includes this lead, if any.
fn open_owner(lead: &Lead) -> Option<&str> {
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
        item.insert(GSI1PK.into(), s(format!("DUE#{}", due_shard(enrollment.lead_id))));
        item.insert(GSI1SK.into(), s(format!("{}#{}#{}", due_millis(due), enrollment.lead_id, enrollment.campaign_id)));
    }
    Ok(item)
}

fn enrollment_of(item: &Item) -> Result<Enrollment, StoreError> {
    let mut e: Enrollment = decode(item, "enrollment")?;
    e.version = num_u64(item, VERSION, "enrollment")?;
    Ok(e)
}

/// The due-index partition of a lead's enrollments: stable across builds and processes (a
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
