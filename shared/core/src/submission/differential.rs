//! [`Fields::from_json`] and [`from_body`] against the `Value` tree and the reading they
//! replaced: the same bodies accepted, the same submissions, the same problems and errors.

use std::borrow::Cow;
use std::collections::BTreeMap;

use proptest::prelude::*;
use serde_json::Value;

use super::reference;
use super::*;

const NAMES: &[&str] = &["_gotcha", "employees", "message", "a", "b", "Email", "é", "", "x y"];

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::sample::select(KNOWN_FIELDS).prop_map(|n| format!("\"{n}\"")),
        proptest::sample::select(NAMES).prop_map(|n| format!("\"{n}\"")),
        // Escaped names are copied rather than borrowed, and still match the known ones.
        Just(r#""em\u0061il""#.to_string()),
        Just(r#""ph\u006fne""#.to_string()),
        Just(r#""a\"b""#.to_string()),
    ]
}

fn scalar() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("null".to_string()),
        Just("true".to_string()),
        Just("false".to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        prop_oneof![Just("1.0"), Just("-0.0"), Just("1e3"), Just("1.5e300"), Just("2.50")].prop_map(str::to_string),
        proptest::sample::select(
            &["", "  ", "on", "Yes", " no ", "maybe", "0", "a@x.io", " A@X.IO ", "+49 30 1234567", "DE", "Ana",][..]
        )
        .prop_map(|s| format!("\"{s}\"")),
        Just(r#""line\nbreak""#.to_string()),
        Just(r#""caf\u00e9""#.to_string()),
        Just(r#""\t""#.to_string()),
        "[a-zA-Z0-9 @.+-]{0,12}".prop_map(|s| format!("\"{s}\"")),
    ]
}

fn value() -> impl Strategy<Value = String> {
    scalar().prop_recursive(2, 8, 3, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..3).prop_map(|v| format!("[{}]", v.join(","))),
            proptest::collection::vec((name(), inner), 0..3).prop_map(|v| {
                let pairs: Vec<String> = v.into_iter().map(|(k, v)| format!("{k}:{v}")).collect();
                format!("{{{}}}", pairs.join(","))
            }),
        ]
    })
}

/// A JSON object as a client might write it: repeated names, spacing, any order.
fn object() -> impl Strategy<Value = String> {
    proptest::collection::vec((name(), value(), proptest::bool::ANY), 0..14).prop_map(|pairs| {
        let parts: Vec<String> = pairs
            .into_iter()
            .map(|(k, v, spaced)| if spaced { format!(" {k} : {v} ") } else { format!("{k}:{v}") })
            .collect();
        format!("{{{}}}", parts.join(","))
    })
}

fn old(body: &[u8], honeypot: &str, max: usize) -> Option<Result<Submission, FieldProblem>> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Some(reference::from_fields(map, honeypot, max)),
        _ => None,
    }
}

fn new(body: &[u8], honeypot: &str, max: usize) -> Option<Result<Submission, FieldProblem>> {
    Fields::from_json(body).ok().map(|fields| from_body(fields, honeypot, max))
}

/// The two parses agree on whether and how a body fails.
fn same_verdict(body: &[u8]) -> Result<(), TestCaseError> {
    match (serde_json::from_slice::<Value>(body), Fields::from_json(body)) {
        (Ok(Value::Object(map)), Ok(fields)) => {
            prop_assert_eq!(&fields.to_json_map(), &map);
            // What capture fingerprints for idempotency: the same text.
            let by_value: BTreeMap<&String, &Value> = map.iter().collect();
            let by_field: BTreeMap<&str, &FieldValue<'_>> = fields.iter().collect();
            prop_assert_eq!(serde_json::to_vec(&by_value).ok(), serde_json::to_vec(&by_field).ok());
        }
        (Ok(v), Err(BodyError::NotAnObject)) => prop_assert!(!v.is_object()),
        (Err(a), Err(BodyError::Malformed(b))) => {
            prop_assert_eq!((a.line(), a.column(), a.to_string()), (b.line(), b.column(), b.to_string()));
        }
        (a, b) => prop_assert!(false, "Value: {:?}, fields: {:?}", a, b),
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn the_typed_reading_gives_what_the_value_reading_gave(
        body in object(),
        honeypot in proptest::sample::select(&["_gotcha", "message", "email", ""][..]),
        max in 0usize..4,
    ) {
        same_verdict(body.as_bytes())?;
        prop_assert_eq!(new(body.as_bytes(), honeypot, max), old(body.as_bytes(), honeypot, max));
    }

    #[test]
    fn non_objects_and_broken_bodies_fail_alike(
        body in prop_oneof![
            value(),
            // Cut on a character boundary: the names include "é".
            object().prop_flat_map(|o| (0..=o.chars().count(), Just(o))).prop_map(|(cut, o)| o.chars().take(cut).collect::<String>()),
            "[ \\[\\]{}\":,0-9a-z\\\\ntrue\\-.eE]{0,24}",
        ],
        tail in prop_oneof![Just(""), Just(" "), Just("x"), Just("}"), Just("\n1")],
    ) {
        let body = format!("{body}{tail}");
        same_verdict(body.as_bytes())?;
    }

    #[test]
    fn bytes_that_are_not_utf8_fail_alike(
        body in proptest::collection::vec(prop_oneof![Just(b'"'), Just(b'['), Just(b'{'), Just(b':'), Just(b'a'), Just(0xff_u8), Just(0xc3_u8), Just(0xa9_u8)], 0..12),
    ) {
        same_verdict(&body)?;
    }
}

#[test]
fn form_pairs_keep_the_last_of_a_repeated_name() {
    let pairs = [("b", "1"), ("a", "x"), ("b", "2"), ("c", ""), ("b", "3"), ("a", "y")];
    let fields = Fields::from_pairs(pairs.map(|(k, v)| (Cow::Borrowed(k), FieldValue::Text(Cow::Borrowed(v)))));
    let got: Vec<(&str, Option<&str>)> = fields.iter().map(|(k, v)| (k, v.as_str())).collect();
    assert_eq!(got, vec![("a", Some("y")), ("b", Some("3")), ("c", Some(""))]);
}

#[test]
fn unescaped_text_is_borrowed_from_the_body() {
    let body = br#"{"email": "a@x.io", "first_name": "Jos\u00e9"}"#;
    let Ok(fields) = Fields::from_json(body) else { panic!("not read") };
    assert!(matches!(fields.get("email"), Some(FieldValue::Text(Cow::Borrowed("a@x.io")))));
    assert!(matches!(fields.get("first_name"), Some(FieldValue::Text(Cow::Owned(s))) if s == "José"));
}
