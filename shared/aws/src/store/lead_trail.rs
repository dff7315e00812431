//! A lead's first trail entries kept in its own item, and the lead write that keeps them.
//!
//! DynamoDB bills each item of a transaction twice, so an entry as an item of its own cost a
//! stage two write units beside its lead, and turned score's lone conditional write into a
//! transaction. The entries of the writes that make a lead's first versions (validate's create,
//! score's rescore, route's assignment) are therefore attributes of the lead item, one per entry
//! (`a#<activity id>`, its JSON packed like the lead's document): the change and its entries are
//! one item, atomic without a transaction. Later writes (status changes, merges, re-routes, any
//! number of them over a lead's life) put their entries in items of their own as before, so an
//! item holds at most the entries of `INLINE_VERSIONS` writes and keeps its size after them.
//!
//! Because the item carries entries its writers do not hold, a lead write after the create is an
//! UpdateItem that sets the lead's attributes and removes the ones it no longer has, never a
//! whole-item Put, which would drop them. The tombstone of an erasure is a Put on purpose: it
//! drops them with the lead.

use super::*;

/// The attribute name prefix of an entry inside a lead item.
const ENTRY_PREFIX: &str = "a#";

/// Writes that make versions `0..INLINE_VERSIONS` of a lead keep their entries in its item: the
/// pipeline's three. A full lead with their five entries packed is ≈ 860 bytes (the adapter test
/// `a_leads_first_entries_live_in_its_item_and_later_ones_beside_it`); a rep's status change with
/// a note could take it past 1 KB, and every write after would cost twice.
pub(super) const INLINE_VERSIONS: u64 = 3;

/// The lead item's attributes a write may drop; they are removed when the new item lacks them.
const DROPPABLE: [&str; 6] = [OWNER_OPEN, GSI1PK, GSI1SK, GSI2PK, GSI2SK, ERASED];

/// The entries as the lead item's attributes, when a write of `version` keeps them inline.
pub(super) fn inline_entries(version: u64, trail: &[Activity]) -> Result<Vec<(String, AttributeValue)>, StoreError> {
    if version >= INLINE_VERSIONS {
        return Ok(Vec::new());
    }
    entry_attributes(trail)
}

/// The entries as attributes of an item of the lead's partition (its own item, or a finished
/// effect's record), which [`entries_of`] reads back.
pub(super) fn entry_attributes(trail: &[Activity]) -> Result<Vec<(String, AttributeValue)>, StoreError> {
    trail
        .iter()
        .map(|a| {
            let json = encode(&Entry { id: &a.id, at: a.at, kind: &a.kind }, "activity")?;
            Ok((format!("{ENTRY_PREFIX}{}", a.id), AttributeValue::B(Blob::new(super::packed::pack(json.as_bytes())?))))
        })
        .collect()
}

/// The entries an item of the lead's partition holds, in no particular order.
pub(super) fn entries_of(item: &Item, lead_id: LeadId) -> Result<Vec<Activity>, StoreError> {
    let mut out = Vec::new();
    for (name, value) in item {
        if !name.starts_with(ENTRY_PREFIX) {
            continue;
        }
        let AttributeValue::B(blob) = value else {
            return Err(StoreError::Corrupt(format!("lead {lead_id}: trail entry {name} is not binary")));
        };
        let json = super::packed::unpack(blob.as_ref())?;
        let entry: OwnedEntry = serde_json::from_slice(&json).map_err(|e| {
            StoreError::Corrupt(format!("lead {lead_id}: a trail entry does not decode ({:?} error)", e.classify()))
        })?;
        out.push(Activity { id: entry.id, lead_id, at: entry.at, kind: entry.kind });
    }
    Ok(out)
}

/// `item` with the entries it holds taken out (an erasure keeps a finished effect's record, not
/// what its entries tell).
pub(super) fn without_entries(mut item: Item) -> Item {
    item.retain(|name, _| !name.starts_with(ENTRY_PREFIX));
    item
}

/// An entry without its lead's id, which the item's key holds.
#[derive(Serialize)]
struct Entry<'a> {
    id: &'a str,
    at: DateTime<Utc>,
    #[serde(flatten)]
    kind: &'a ActivityKind,
}

#[derive(serde::Deserialize)]
struct OwnedEntry {
    id: String,
    at: DateTime<Utc>,
    #[serde(flatten)]
    kind: ActivityKind,
}

/// A lead write as an UpdateItem: `item`'s attributes set (its key apart), the droppable ones
/// it lacks removed, and `entries` added; under `cond`.
pub(super) struct LeadUpdate {
    pub(super) key: Item,
    pub(super) expr: String,
    pub(super) cond: Cond,
}

impl LeadUpdate {
    pub(super) fn new(mut item: Item, entries: Vec<(String, AttributeValue)>, mut cond: Cond) -> Self {
        let key: Item = [PK, SK].iter().filter_map(|k| item.remove_entry(*k)).collect();
        let mut sets = Vec::with_capacity(item.len() + entries.len());
        let removes: Vec<&str> = DROPPABLE.iter().copied().filter(|name| !item.contains_key(*name)).collect();
        for (i, (name, value)) in item.into_iter().chain(entries).enumerate() {
            sets.push(format!("#u{i} = :u{i}"));
            cond = cond.name(&format!("#u{i}"), &name).value(&format!(":u{i}"), value);
        }
        let mut expr = format!("SET {}", sets.join(", "));
        if !removes.is_empty() {
            let names: Vec<String> = (0..removes.len()).map(|i| format!("#r{i}")).collect();
            expr.push_str(&format!(" REMOVE {}", names.join(", ")));
            for (placeholder, name) in names.iter().zip(removes) {
                cond = cond.name(placeholder, name);
            }
        }
        Self { key, expr, cond }
    }

    /// This write inside a transaction; `return_old` as for [`Cond::put`].
    pub(super) fn in_transaction(self, table: &str, return_old: bool) -> Result<TransactWriteItem, StoreError> {
        let mut update = Update::builder()
            .table_name(table)
            .set_key(Some(self.key))
            .update_expression(self.expr)
            .condition_expression(self.cond.expr)
            .set_expression_attribute_names(non_empty(self.cond.names))
            .set_expression_attribute_values(non_empty(self.cond.values));
        if return_old {
            update = update.return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        }
        let update = update.build().map_err(|e| build_failed("transaction update", &e))?;
        Ok(TransactWriteItem::builder().update(update).build())
    }
}

impl DynamoStore {
    /// A conditional UpdateItem of a lead; `Err(Some(item))`/`Err(None)` when the condition
    /// failed, with the stored item when DynamoDB hands it back.
    pub(super) async fn update_lead_if(
        &self,
        op: &'static str,
        update: LeadUpdate,
    ) -> Result<Result<(), Option<Item>>, StoreError> {
        let sent = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(update.key))
            .update_expression(update.expr)
            .condition_expression(update.cond.expr)
            .set_expression_attribute_names(non_empty(update.cond.names))
            .set_expression_attribute_values(non_empty(update.cond.values))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        super::conditional(op, sent, |e| match e {
            UpdateItemError::ConditionalCheckFailedException(e) => Ok(e.item),
            other => Err(describe_service_error(&other)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use leadflow_core::model::Lifecycle;

    fn entry(id: &str) -> Activity {
        Activity {
            id: id.into(),
            lead_id: LeadId::from_parts(1, 7),
            at: DateTime::from_timestamp_millis(1_700_000_000_123).unwrap_or_default(),
            kind: ActivityKind::StageChanged { from: Lifecycle::Lead, to: Lifecycle::Mql },
        }
    }

    #[test]
    fn entries_read_back_as_written_with_the_lead_id_of_the_item() {
        let written = [entry("stage-mql"), entry("scored-1")];
        let item: Item = inline_entries(0, &written).unwrap_or_default().into_iter().collect();
        let mut read = entries_of(&item, written[0].lead_id).unwrap_or_default();
        read.sort_by(|a, b| a.id.cmp(&b.id));
        assert_eq!(read, [written[1].clone(), written[0].clone()]);
    }

    #[test]
    fn only_a_leads_first_versions_keep_their_entries() {
        let trail = [entry("x")];
        assert_eq!(inline_entries(INLINE_VERSIONS - 1, &trail).map(|e| e.len()).ok(), Some(1));
        assert_eq!(inline_entries(INLINE_VERSIONS, &trail).map(|e| e.len()).ok(), Some(0));
    }

    #[test]
    fn an_update_sets_the_items_attributes_and_removes_the_ones_it_lacks() {
        let item = Item::from([
            (PK.into(), s("LEAD#x")),
            (SK.into(), s(PROFILE)),
            (VERSION.into(), n(2)),
            (OWNER_OPEN.into(), s("ben")),
        ]);
        let update = LeadUpdate::new(item, vec![("a#e".into(), s("entry"))], Cond::new("#v = :expected"));
        assert_eq!(update.key.len(), 2);
        let (set, remove) = update.expr.split_once(" REMOVE ").unwrap_or_default();
        assert_eq!(set.matches(" = :u").count(), 3, "{set}");
        let removed: Vec<&str> =
            remove.split(", ").filter_map(|p| update.cond.names.get(p)).map(String::as_str).collect();
        assert_eq!(removed, [GSI1PK, GSI1SK, GSI2PK, GSI2SK, ERASED]);
    }
}
