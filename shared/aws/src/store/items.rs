//! How the store's records are DynamoDB items: the keys, each record's item and back, condition
//! expressions, cursors, and the errors a user reads.

use super::*;
/// A condition expression with the names and values it uses (DynamoDB refuses unused ones).
pub(super) struct Cond {
    pub(super) expr: String,
    pub(super) names: HashMap<String, String>,
    pub(super) values: HashMap<String, AttributeValue>,
}

impl Cond {
    pub(super) fn new(expr: &str) -> Self {
        Self { expr: expr.to_string(), names: HashMap::new(), values: HashMap::new() }
    }

    pub(super) fn and(mut self, expr: &str) -> Self {
        self.expr = format!("({}) AND ({expr})", self.expr);
        self
    }

    pub(super) fn name(mut self, placeholder: &str, name: &str) -> Self {
        self.names.insert(placeholder.to_string(), name.to_string());
        self
    }

    pub(super) fn value(mut self, placeholder: &str, value: AttributeValue) -> Self {
        self.values.insert(placeholder.to_string(), value);
        self
    }

    /// A transaction Put of `item` under this condition; `return_old` asks DynamoDB to put the
    /// stored item into the cancellation reason when the condition fails.
    pub(super) fn put(self, table: &str, item: Item, return_old: bool) -> Result<TransactWriteItem, StoreError> {
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

    /// A transaction ConditionCheck: the item at `key` must meet this condition; nothing is
    /// written to it.
    pub(super) fn check(self, table: &str, key: Item) -> Result<TransactWriteItem, StoreError> {
        let check = ConditionCheck::builder()
            .table_name(table)
            .set_key(Some(key))
            .condition_expression(self.expr)
            .set_expression_attribute_names(non_empty(self.names))
            .set_expression_attribute_values(non_empty(self.values))
            .build()
            .map_err(|e| build_failed("transaction condition check", &e))?;
        Ok(TransactWriteItem::builder().condition_check(check).build())
    }
}

pub(super) fn activity_item(activity: &Activity) -> Result<Item, StoreError> {
    Ok(Item::from([
        (PK.into(), s(lead_pk(activity.lead_id))),
        (SK.into(), s(format!("{ACT_PREFIX}{}", activity.id))),
        (DOC.into(), s(encode(activity, "activity")?)),
        (AT.into(), n(activity.at.timestamp_millis())),
    ]))
}

pub(super) fn plain_put(table: &str, item: Item) -> Result<TransactWriteItem, StoreError> {
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
pub(super) fn trail_puts(table: &str, trail: &[Activity]) -> Result<Vec<TransactWriteItem>, StoreError> {
    trail.iter().map(|a| plain_put(table, activity_item(a)?)).collect()
}

pub(super) fn load_update(table: &str, rep: &str, delta: i64) -> Result<TransactWriteItem, StoreError> {
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
pub(super) fn email_key_delete(table: &str, key: &str, lead: LeadId) -> Result<TransactWriteItem, StoreError> {
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

pub(super) fn non_empty<K, V>(map: HashMap<K, V>) -> Option<HashMap<K, V>> {
    (!map.is_empty()).then_some(map)
}

pub(super) fn lead_pk(id: LeadId) -> String {
    format!("LEAD#{id}")
}

/// The lead id of a `LEAD#<ulid>` partition key.
pub(super) fn pk_lead(item: &Item, op: &str) -> Result<LeadId, StoreError> {
    str_attr(item, PK)
        .and_then(|pk| pk.strip_prefix("LEAD#"))
        .and_then(|id| id.parse().ok())
        .ok_or_else(|| StoreError::Corrupt(format!("{op}: a key's {PK} is not a lead's")))
}

pub(super) fn email_pk(key: &str) -> String {
    format!("EMAIL#{key}")
}

pub(super) fn suppress_pk(email_key: &str) -> String {
    format!("SUPPRESS#{email_key}")
}

pub(super) fn doc_pk(name: &str) -> String {
    format!("DOC#{name}")
}

/// Zero-padded so that text order is version order (a `u32` has at most 10 digits).
pub(super) fn doc_sk(version: u32) -> String {
    format!("V#{version:010}")
}

/// The lead a lead item holds, with the item's version; for tests and tools that read the table
/// directly as well.
pub fn lead_of(item: &Item) -> Result<Lead, StoreError> {
    let mut lead: Lead = decode(item, "lead")?;
    lead.version = num_u64(item, VERSION, &format!("lead {}", lead.id))?;
    Ok(lead)
}

pub(super) fn is_erased(item: &Item) -> bool {
    item.get(ERASED).and_then(|v| v.as_bool().ok()).copied().unwrap_or(false)
}

/// The lead id at the end of an SLA index key (`<ms>#<lead id>`).
pub(super) fn sla_lead(sort: &str) -> Result<LeadId, StoreError> {
    sort.split_once('#')
        .and_then(|(_, id)| id.parse().ok())
        .ok_or_else(|| StoreError::Corrupt(format!("due SLAs: index key {sort:?} does not end in a lead id")))
}

/// The table key (`PK`, `SK`) of an item.
pub(super) fn key_of(item: &Item) -> Result<Item, StoreError> {
    let mut key = Item::new();
    for name in [PK, SK] {
        let value = item.get(name).ok_or_else(|| StoreError::Corrupt(format!("an item has no {name}")))?;
        key.insert(name.to_string(), value.clone());
    }
    Ok(key)
}

/// A listing cursor (`list_leads`, `campaign_enrollments`): the hex of the JSON of the key's
/// string attributes.
pub(super) fn encode_cursor(op: &str, key: &Item) -> Result<String, StoreError> {
    let mut plain = BTreeMap::new();
    for (name, value) in key {
        let text =
            value.as_s().map_err(|_| StoreError::Corrupt(format!("{op}: key attribute {name} is not a string")))?;
        plain.insert(name.as_str(), text.as_str());
    }
    Ok(hex::encode(encode(&plain, "cursor")?))
}

pub(super) fn decode_cursor(op: &str, cursor: &str) -> Result<Item, StoreError> {
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
pub(super) fn open_owner(lead: &Lead) -> Option<&str> {
    if leadflow_core::erasure::is_erased(lead) {
        return None;
    }
    match lead.status {
        SalesStatus::Won | SalesStatus::Lost => None,
        SalesStatus::New | SalesStatus::Contacted => lead.owner.as_ref().map(|o| o.rep_id.as_str()),
    }
}

pub(super) fn lead_item(lead: &Lead, version: u64) -> Result<Item, StoreError> {
    let doc = if lead.version == version {
        encode(lead, "lead")?
    } else {
        encode(&Lead { version, ..lead.clone() }, "lead")?
    };
    let mut item = Item::from([
        (PK.into(), s(lead_pk(lead.id))),
        (SK.into(), s(PROFILE)),
        (DOC.into(), AttributeValue::B(Blob::new(super::packed::pack(doc.as_bytes())?))),
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
        item.extend(listing_index::recent_keys(lead.id));
    }
    Ok(item)
}

/// When the lead's SLA expires, while one runs: owned, valid and not yet contacted (or closed).
pub(super) fn sla_due(lead: &Lead) -> Option<DateTime<Utc>> {
    match (&lead.owner, lead.status) {
        (Some(owner), SalesStatus::New) if lead.is_valid() => Some(owner.sla_due_at),
        _ => None,
    }
}

/// The tombstone as stored: a closed lead (no open count, no SLA) flagged as erased.
pub(super) fn tombstone_item(tombstone: &Lead) -> Result<Item, StoreError> {
    let mut item = lead_item(tombstone, tombstone.version)?;
    item.remove(OWNER_OPEN);
    item.remove(GSI1PK);
    item.remove(GSI1SK);
    item.remove(GSI2PK);
    item.remove(GSI2SK);
    item.insert(ERASED.into(), AttributeValue::Bool(true));
    Ok(item)
}

pub(super) fn enrollment_item(enrollment: &Enrollment, version: u64) -> Result<Item, StoreError> {
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

pub(super) fn enrollment_of(item: &Item) -> Result<Enrollment, StoreError> {
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
pub(super) fn due_millis(at: DateTime<Utc>) -> String {
    format!("{:015}", at.timestamp_millis().max(0))
}

/// Whole seconds for DynamoDB's TTL, rounded up so that TTL never removes a binding early.
pub(super) fn ttl_seconds(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis().div_euclid(1000) + i64::from(at.timestamp_millis().rem_euclid(1000) != 0)
}

/// A per-attempt transaction token (at most 36 characters): unique within the 10 minutes
/// DynamoDB remembers tokens.
pub(super) fn request_token() -> String {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let seed = format!("{nanos}:{}:{}", std::process::id(), SEQ.fetch_add(1, Ordering::Relaxed));
    hex::encode(&Sha256::digest(seed.as_bytes())[..16])
}

pub(super) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub(super) fn n(v: impl std::fmt::Display) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

pub(super) fn str_attr<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name).and_then(|v| v.as_s().ok()).map(String::as_str)
}

pub(super) fn num_i64(item: &Item, name: &str, what: &str) -> Result<i64, StoreError> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|t| t.parse().ok())
        .ok_or_else(|| StoreError::Corrupt(format!("{what}: attribute {name} is missing or not an integer")))
}

pub(super) fn num_u64(item: &Item, name: &str, what: &str) -> Result<u64, StoreError> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|t| t.parse().ok())
        .ok_or_else(|| StoreError::Corrupt(format!("{what}: attribute {name} is missing or not a version")))
}

pub(super) fn lead_id_attr(item: &Item, name: &str, what: &str) -> Result<LeadId, StoreError> {
    str_attr(item, name)
        .and_then(|t| t.parse().ok())
        .ok_or_else(|| StoreError::Corrupt(format!("{what}: attribute {name} is missing or not a lead id")))
}

pub(super) fn encode<T: Serialize>(value: &T, what: &str) -> Result<String, StoreError> {
    // Serializing our own types fails only on a bug (a map with non-string keys); the serde
    // message names no field values.
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt(format!("{what} cannot be encoded: {e}")))
}

pub(super) fn decode<T: DeserializeOwned>(item: &Item, what: &str) -> Result<T, StoreError> {
    let packed;
    let doc = match item.get(DOC) {
        Some(AttributeValue::S(text)) => text.as_bytes(),
        Some(AttributeValue::B(blob)) => {
            packed = super::packed::unpack(blob.as_ref())?;
            packed.as_slice()
        }
        _ => return Err(StoreError::Corrupt(format!("{what}: attribute doc is missing"))),
    };
    // serde's own message can quote the offending value (an address, a name): only its
    // category and position go into the error.
    serde_json::from_slice(doc).map_err(|e| {
        StoreError::Corrupt(format!(
            "{what}: doc does not decode ({:?} error at line {}, column {})",
            e.classify(),
            e.line(),
            e.column()
        ))
    })
}

pub(super) fn build_failed(op: &str, e: &BuildError) -> StoreError {
    StoreError::Unavailable(format!("{op}: the request could not be built: {e}"))
}

pub(super) fn unavailable<E: ProvideErrorMetadata, R>(op: &str, err: &SdkError<E, R>) -> StoreError {
    StoreError::Unavailable(format!("{op}: {}", describe_sdk_error(err)))
}

pub(super) fn describe_service_error<E: ProvideErrorMetadata>(err: &E) -> String {
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
