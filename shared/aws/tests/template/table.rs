//! The DynamoDB table: the key design the store is written against.

use serde_yaml_ng::Value;

use crate::resources::Template;
use crate::yaml::{prop, seq};

#[test]
fn table_has_the_key_design_the_store_is_written_against() {
    let t = Template::load();
    let tables = t.of_type("AWS::DynamoDB::Table");
    let [(_, table)] = tables.as_slice() else { panic!("one table") };
    let pairs = |v: Option<&Value>, a: &str, b: &str| -> Vec<(String, String)> {
        seq(v)
            .into_iter()
            .map(|e| {
                let s = |k| e.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
                (s(a), s(b))
            })
            .collect()
    };
    let owned = |v: &[(&str, &str)]| v.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect::<Vec<_>>();
    assert_eq!(
        pairs(prop(table, "AttributeDefinitions"), "AttributeName", "AttributeType"),
        owned(&[
            ("PK", "S"),
            ("SK", "S"),
            ("GSI1PK", "S"),
            ("GSI1SK", "S"),
            ("owner_open", "S"),
            ("GSI2PK", "S"),
            ("GSI2SK", "S")
        ])
    );
    assert_eq!(pairs(prop(table, "KeySchema"), "AttributeName", "KeyType"), owned(&[("PK", "HASH"), ("SK", "RANGE")]));
    let gsis = seq(prop(table, "GlobalSecondaryIndexes"));
    let indexes: Vec<_> = gsis
        .iter()
        .map(|g| {
            let name = g.get("IndexName").and_then(Value::as_str).unwrap_or_default();
            let projection = g.get("Projection").and_then(|p| p.get("ProjectionType")).and_then(Value::as_str);
            (name, pairs(g.get("KeySchema"), "AttributeName", "KeyType"), projection)
        })
        .collect();
    assert_eq!(
        indexes,
        [
            ("due", owned(&[("GSI1PK", "HASH"), ("GSI1SK", "RANGE")]), Some("ALL")),
            // `open_leads_of`: a rep's open leads by lead key, read backwards for newest first.
            ("owner", owned(&[("owner_open", "HASH"), ("PK", "RANGE")]), Some("ALL")),
            // `leads_before` and `suppressions`: keys only, so that lead updates are not copied
            // into it; a page reads its items with BatchGetItem.
            ("listing", owned(&[("GSI2PK", "HASH"), ("GSI2SK", "RANGE")]), Some("KEYS_ONLY")),
        ]
    );
    assert_eq!(prop(table, "BillingMode").and_then(Value::as_str), Some("PAY_PER_REQUEST"));
    let ttl = prop(table, "TimeToLiveSpecification").expect("TTL");
    assert_eq!(ttl.get("AttributeName").and_then(Value::as_str), Some("expires_at"));
    assert_eq!(ttl.get("Enabled").and_then(Value::as_bool), Some(true));
    let pitr = prop(table, "PointInTimeRecoverySpecification").and_then(|p| p.get("PointInTimeRecoveryEnabled"));
    assert_eq!(pitr.and_then(Value::as_bool), Some(true));
}
