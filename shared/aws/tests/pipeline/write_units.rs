//! DynamoDB write units the functions' writes are billed, read from each request's body by the
//! item-size rules AWS publishes: an item's size is its attribute names plus their values
//! (a string's UTF-8 bytes, a number's significant digits two to a byte plus one, a binary's
//! bytes); a write is one unit per started KB, twice inside a transaction.
//!
//! Only a Put carries the item it writes. An Update, Delete or ConditionCheck is billed by the
//! item already stored, which the request does not show; each one the pipeline makes names a
//! counter, a claim, an email key or an alias, all far under 1 KB, so each counts as one KB, and
//! one that names a lead item fails the count rather than guess.

use base64::Engine;
use serde_json::Value;

use crate::common::{Recorder, target_operation};

/// Write units billed, one entry per DynamoDB request.
#[derive(Debug, Clone)]
pub(crate) struct WriteUnits(Recorder<u32>);

impl Default for WriteUnits {
    fn default() -> Self {
        Self(Recorder::new(|request| {
            let operation = target_operation(request)?;
            let body: Value = serde_json::from_slice(request.body().bytes()?).ok()?;
            Some(units_of(&operation, &body))
        }))
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

fn units_of(operation: &str, body: &Value) -> u32 {
    match operation {
        "PutItem" => kb(item_size(&body["Item"])),
        "UpdateItem" | "DeleteItem" => stored_item_units(&body["Key"]),
        "TransactWriteItems" => body["TransactItems"]
            .as_array()
            .map_or(0, |items| items.iter().map(|write| 2 * transaction_write_units(write)).sum()),
        "BatchWriteItem" => panic!("the pipeline makes no batch writes: count them before relying on this"),
        _ => 0,
    }
}

fn transaction_write_units(write: &Value) -> u32 {
    if let Some(put) = write.get("Put") {
        return kb(item_size(&put["Item"]));
    }
    let key = ["Update", "Delete", "ConditionCheck"].iter().find_map(|kind| write.get(*kind)).map(|w| &w["Key"]);
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
    item.as_object().map_or(0, |attrs| attrs.iter().map(|(name, value)| name.len() + value_size(value)).sum())
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
        assert_eq!(units_of("TransactWriteItems", &put), 2 * 2 + 2);
    }
}
