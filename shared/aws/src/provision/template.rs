//! Reading `template.yaml`: resources by type, intrinsic functions and the references they make,
//! and property values, each refusing what the provisioning does not know.

use std::collections::BTreeSet;

use serde_yaml_ng::{Mapping, Value};

use super::ProvisionError;

pub(super) fn of_type<'a>(resources: &'a Mapping, ty: &str) -> Result<Vec<(String, &'a Mapping)>, ProvisionError> {
    let mut found = Vec::new();
    for (id, resource) in resources {
        if resource.get("Type").and_then(Value::as_str) != Some(ty) {
            continue;
        }
        let id =
            id.as_str().ok_or_else(|| ProvisionError::Template(format!("a resource id is not a string: {id:?}")))?;
        if resource.get("Condition").is_some() {
            // Whether it exists depends on parameters this module does not have.
            return Err(ProvisionError::Unsupported { resource: id.into(), what: "Condition".into() });
        }
        static EMPTY: std::sync::LazyLock<Mapping> = std::sync::LazyLock::new(Mapping::new);
        let props = match resource.get("Properties") {
            None => &*EMPTY,
            Some(p) => {
                p.as_mapping().ok_or_else(|| ProvisionError::Template(format!("{id}: Properties is not a mapping")))?
            }
        };
        found.push((id.to_string(), props));
    }
    Ok(found)
}

/// An intrinsic function, in either the short (`!GetAtt`) or the long (`Fn::GetAtt:`) form.
pub(super) fn intrinsic(v: &Value) -> Option<(&str, &Value)> {
    match v {
        Value::Tagged(t) => {
            let tag = t.tag.to_string();
            let name = tag.trim_start_matches('!');
            // The short tags are the long names without the `Fn::` (except `Ref`).
            INTRINSICS.iter().find(|n| n.trim_start_matches("Fn::") == name).map(|n| (*n, &t.value))
        }
        Value::Mapping(m) if m.len() == 1 => {
            let (k, v) = m.iter().next()?;
            let k = k.as_str()?;
            INTRINSICS.iter().find(|n| **n == k).map(|n| (*n, v))
        }
        _ => None,
    }
}

const INTRINSICS: &[&str] = &[
    "Ref",
    "Fn::GetAtt",
    "Fn::Sub",
    "Fn::Join",
    "Fn::If",
    "Fn::Select",
    "Fn::Split",
    "Fn::ImportValue",
    "Fn::FindInMap",
    "Fn::Base64",
    "Fn::GetAZs",
    "Fn::Equals",
    "Fn::Not",
    "Fn::And",
    "Fn::Or",
];

/// `!GetAtt X.Y` or `Fn::GetAtt: [X, Y]` → (X, Y).
pub(super) fn get_att(v: &Value) -> Option<(String, String)> {
    let ("Fn::GetAtt", arg) = intrinsic(v)? else { return None };
    match arg {
        Value::String(s) => s.split_once('.').map(|(r, a)| (r.to_string(), a.to_string())),
        Value::Sequence(parts) => match parts.as_slice() {
            [r, a] => Some((r.as_str()?.to_string(), a.as_str()?.to_string())),
            _ => None,
        },
        _ => None,
    }
}

/// The resources a value refers to.
pub(super) fn references(v: &Value, out: &mut BTreeSet<String>) {
    if let Some((name, arg)) = intrinsic(v) {
        match name {
            "Ref" => {
                if let Some(r) = arg.as_str().filter(|r| !r.starts_with("AWS::")) {
                    out.insert(r.to_string());
                }
            }
            "Fn::GetAtt" => {
                if let Some((r, _)) = get_att(v) {
                    out.insert(r);
                }
            }
            _ => references(arg, out),
        }
        return;
    }
    match v {
        Value::Sequence(s) => s.iter().for_each(|v| references(v, out)),
        Value::Mapping(m) => m.values().for_each(|v| references(v, out)),
        Value::Tagged(t) => references(&t.value, out),
        _ => {}
    }
}

pub(super) fn check_properties(
    id: &str,
    props: &Mapping,
    known: &[&str],
    ignored: &[&str],
) -> Result<(), ProvisionError> {
    for key in props.keys() {
        let key = key.as_str().unwrap_or_default();
        if !known.contains(&key) && !ignored.contains(&key) {
            return Err(ProvisionError::Unsupported { resource: id.into(), what: format!("property {key}") });
        }
    }
    Ok(())
}

/// A plain scalar as a string; intrinsics are only resolved where the template needs them.
pub(super) fn scalar(id: &str, what: &str, v: &Value) -> Result<String, ProvisionError> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        _ => Err(ProvisionError::Unsupported { resource: id.into(), what: format!("{what} = {}", brief(v)) }),
    }
}

pub(super) fn brief(v: &Value) -> String {
    serde_yaml_ng::to_string(v).map(|s| s.trim().replace('\n', " ")).unwrap_or_else(|_| format!("{v:?}"))
}

pub(super) fn field<'a>(id: &str, m: &'a Value, key: &str) -> Result<&'a str, ProvisionError> {
    match m.get(key) {
        Some(Value::String(s)) => Ok(s),
        Some(v) => Err(ProvisionError::Unsupported { resource: id.into(), what: format!("{key} = {}", brief(v)) }),
        None => Err(ProvisionError::Template(format!("{id}: {key} is missing"))),
    }
}

pub(super) fn list<'a>(id: &str, props: &'a Mapping, key: &str) -> Result<&'a [Value], ProvisionError> {
    match props.get(key) {
        None => Ok(&[]),
        Some(Value::Sequence(s)) => Ok(s),
        Some(v) => Err(ProvisionError::Unsupported { resource: id.into(), what: format!("{key} = {}", brief(v)) }),
    }
}
