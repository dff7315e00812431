//! Reading `template.yaml` in the tests that hold code and template together.
#![allow(dead_code)] // each test binary uses its own part of these helpers

use std::path::Path;

use serde_yaml_ng::Value;

/// The workspace's `template.yaml`, parsed (short-form intrinsics kept as tagged values).
pub fn template() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../template.yaml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_yaml_ng::from_str(&text).expect("template.yaml is YAML")
}

/// A resource's property `key`.
pub fn prop<'a>(resource: &'a Value, key: &str) -> Option<&'a Value> {
    resource.get("Properties")?.get(key)
}

/// The argument of a short-form intrinsic (`!Ref X`, `!Sub "…"`) named `tag`.
pub fn tagged<'a>(v: &'a Value, tag: &str) -> Option<&'a Value> {
    match v {
        Value::Tagged(t) if t.tag == tag => Some(&t.value),
        _ => None,
    }
}
