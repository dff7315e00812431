//! DynamoDB write units the functions' writes are billed, read from each request's body by the
//! item-size rules AWS publishes: an item's size is its attribute names plus their values
//! (a string's UTF-8 bytes, a number's significant digits two to a byte plus one, a binary's
//! bytes); a write is one unit per started KB, twice inside a transaction.
//!
//! Only a Put carries the item it writes. An Update, Delete or ConditionCheck is billed by the
//! larger of the item stored before and after, which the request does not show. For lead items
//! the count keeps each one's attribute sizes as the Puts and Updates it saw left them (so a
//! lead must have been created through the counted client, and every write counted is taken to
//! succeed, as on the pipeline's path); every other one the pipeline makes names a counter, a
//! claim, an email key or an alias, all far under 1 KB, so each counts as one KB.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use base64::Engine;
use serde_json::Value;

use crate::common::{Recorder, target_operation};

/// Write units billed, one entry per DynamoDB request.
#[derive(Debug, Clone)]
pub(crate) struct WriteUnits(Recorder<u32>);

impl Default for WriteUnits {
    fn default() -> Self {
        let leads = Arc::new(Mutex::new(LeadItems::default()));
        Self(Recorder::new(move |request| {
            let operation = target_operation(request)?;
            let body: Value = serde_json::from_slice(request.body().bytes()?).ok()?;
            let mut leads = leads.lock().ok()?;
            Some(units_of(&operation, &body, &mut leads))
        }))
    }
}

/// Each lead item's attribute sizes by name, keyed by its `PK`, as the counted writes left it.
#[derive(Default)]
struct LeadItems(HashMap<String, BTreeMap<String, usize>>);

const LEAD_SORT: &str = "PROFILE";

impl LeadItems {
    /// Units of a Put of `item`; a lead item's sizes are kept.
    fn put(&mut self, item: &Value) -> u32 {
        if item["SK"]["S"].as_str() == Some(LEAD_SORT) {
            let pk = item["PK"]["S"].as_str().unwrap_or_default().to_string();
            let before = self.0.get(&pk).map_or(0, |attrs| attrs.values().sum());
            let sizes = attribute_sizes(item);
            let after = sizes.values().sum::<usize>();
            self.0.insert(pk, sizes);
            return kb(before.max(after));
        }
        kb(item_size(item))
    }

    /// Units of an Update (`write` holds `Key`, `UpdateExpression` and the expression's names
    /// and values, as our store sends them: `SET #a = :a, … REMOVE #b, …`).
    fn update(&mut self, write: &Value) -> u32 {
        let key = &write["Key"];
        if key["SK"]["S"].as_str() != Some(LEAD_SORT) {
            return stored_item_units(key);
        }
        let pk = key["PK"]["S"].as_str().unwrap_or_default();
        let attrs = self.0.get_mut(pk).unwrap_or_else(|| panic!("an update of a lead the count did not see created"));
        let before: usize = attrs.values().sum();
        let expr = write["UpdateExpression"].as_str().unwrap_or_default();
        let name =
            |placeholder: &str| write["ExpressionAttributeNames"][placeholder.trim()].as_str().map(str::to_string);
        let (set, remove) = expr.split_once(" REMOVE ").unwrap_or((expr, ""));
        for assignment in set.trim_start_matches("SET ").split(", ").filter(|a| !a.is_empty()) {
            let (placeholder, value) = assignment.split_once(" = ").unwrap_or_else(|| panic!("SET {assignment}?"));
            let name = name(placeholder).unwrap_or_else(|| panic!("no name for {placeholder}"));
            let size = name.len() + value_size(&write["ExpressionAttributeValues"][value.trim()]);
            attrs.insert(name, size);
        }
        for placeholder in remove.split(", ").filter(|r| !r.is_empty()) {
            if let Some(name) = name(placeholder) {
                attrs.remove(&name);
            }
        }
        let after: usize = attrs.values().sum();
        kb(before.max(after))
    }
}

impl WriteUnits {
    /// The interceptor for the DynamoDB client.
    pub(crate) fn interceptor(&self) -> Recorder<u32> {
        self.0.clone()
    }

    /// Units since the last call.
    pub(crate) fn take(&self) -> u32 {
        self.0.take().iter().sum()
    }
}

fn units_of(operation: &str, body: &Value, leads: &mut LeadItems) -> u32 {
    match operation {
        "PutItem" => leads.put(&body["Item"]),
        "UpdateItem" => leads.update(body),
        "DeleteItem" => stored_item_units(&body["Key"]),
        "TransactWriteItems" => body["TransactItems"]
            .as_array()
            .map_or(0, |items| items.iter().map(|write| 2 * transaction_write_units(write, leads)).sum()),
        "BatchWriteItem" => panic!("the pipeline makes no batch writes: count them before relying on this"),
        _ => 0,
    }
}

fn transaction_write_units(write: &Value, leads: &mut LeadItems) -> u32 {
    if let Some(put) = write.get("Put") {
        return leads.put(&put["Item"]);
    }
    if let Some(update) = write.get("Update") {
        return leads.update(update);
    }
    let key = ["Delete", "ConditionCheck"].iter().find_map(|kind| write.get(*kind)).map(|w| &w["Key"]);
    key.map_or(0, stored_item_units)
}

fn stored_item_units(key: &Value) -> u32 {
    let sort = key["SK"]["S"].as_str().unwrap_or_default();
    assert_ne!(sort, "PROFILE", "a write to a lead item without its item: count it by the stored lead's size");
    1
}

fn kb(size: usize) -> u32 {
    u32::try_from(size.div_ceil(1024).max(1)).unwrap_or(u32::MAX)
}

/// The size of an item (`{"name": {"S": …}, …}` as the DynamoDB JSON protocol sends it).
fn item_size(item: &Value) -> usize {
    attribute_sizes(item).values().sum()
}

fn attribute_sizes(item: &Value) -> BTreeMap<String, usize> {
    item.as_object().map_or_else(BTreeMap::new, |attrs| {
        attrs.iter().map(|(name, value)| (name.clone(), name.len() + value_size(value))).collect()
    })
}

/// The attribute types our items use; any other fails the count rather than guess.
fn value_size(value: &Value) -> usize {
    let Some((kind, v)) = value.as_object().and_then(|o| o.iter().next()) else { return 0 };
    match (kind.as_str(), v) {
        ("S", Value::String(s)) => s.len(),
        ("N", Value::String(n)) => number_size(n),
        ("B", Value::String(b64)) => base64::engine::general_purpose::STANDARD.decode(b64).map_or(0, |b| b.len()),
        ("BOOL" | "NULL", _) => 1,
        _ => panic!("an attribute of type {kind}: add its size rule"),
    }
}

/// One byte per two significant digits, plus one.
fn number_size(n: &str) -> usize {
    let digits: String = n.chars().filter(char::is_ascii_digit).collect();
    let significant = digits.trim_start_matches('0').trim_end_matches('0').len().max(1);
    significant.div_ceil(2) + 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sizes_follow_the_published_rules() {
        // A name's bytes plus the value's: 4 for "LEAD", 2 for two digits, 3 for "AAAA" in base64.
        assert_eq!(item_size(&json!({"PK": {"S": "LEAD"}})), 6);
        assert_eq!(item_size(&json!({"version": {"N": "12"}})), 7 + 2);
        assert_eq!(item_size(&json!({"doc": {"B": "AAAA"}})), 3 + 3);
        assert_eq!(kb(1024), 1);
        assert_eq!(kb(1025), 2);
        let put = json!({"TransactItems": [{"Put": {"Item": {"doc": {"S": "x".repeat(1500)}}}},
                                           {"ConditionCheck": {"Key": {"PK": {"S": "LEAD#a"}, "SK": {"S": "ALIAS"}}}}]});
        let mut leads = LeadItems::default();
        assert_eq!(units_of("TransactWriteItems", &put, &mut leads), 2 * 2 + 2);
    }

    #[test]
    fn a_lead_update_is_billed_by_the_larger_of_the_item_before_and_after() {
        let mut leads = LeadItems::default();
        let lead =
            json!({"PK": {"S": "LEAD#a"}, "SK": {"S": "PROFILE"}, "doc": {"S": "x".repeat(900)}, "o": {"S": "ben"}});
        assert_eq!(units_of("PutItem", &json!({"Item": lead}), &mut leads), 1);
        let grow = json!({"Key": {"PK": {"S": "LEAD#a"}, "SK": {"S": "PROFILE"}},
            "UpdateExpression": "SET #u0 = :u0 REMOVE #r0",
            "ExpressionAttributeNames": {"#u0": "a#1", "#r0": "o"},
            "ExpressionAttributeValues": {":u0": {"S": "y".repeat(200)}}});
        assert_eq!(units_of("UpdateItem", &grow, &mut leads), 2, "900 + 200 bytes after");
        let shrink = json!({"Key": {"PK": {"S": "LEAD#a"}, "SK": {"S": "PROFILE"}},
            "UpdateExpression": "SET #u0 = :u0",
            "ExpressionAttributeNames": {"#u0": "doc"},
            "ExpressionAttributeValues": {":u0": {"S": "x"}}});
        assert_eq!(units_of("TransactWriteItems", &json!({"TransactItems": [{"Update": shrink}]}), &mut leads), 2 * 2);
        assert_eq!(units_of("UpdateItem", &shrink, &mut leads), 1, "the item is small now");
    }
}
