//! Reading CloudFormation values: intrinsics in either form, one-or-many values, and what a
//! value renders to once deployed.

use std::collections::BTreeSet;

use serde_yaml_ng::Value;

pub(crate) fn prop<'a>(resource: &'a Value, key: &str) -> Option<&'a Value> {
    resource.get("Properties")?.get(key)
}

pub(crate) fn binary_of(function: &Value) -> Option<&str> {
    function.get("Metadata")?.get("BuildProperties")?.get("Binary")?.as_str()
}

pub(crate) fn events<'a>(function: &'a Value, types: &[&str]) -> Vec<&'a Value> {
    let Some(Value::Mapping(events)) = prop(function, "Events") else { return Vec::new() };
    events.values().filter(|e| types.contains(&e.get("Type").and_then(Value::as_str).unwrap_or_default())).collect()
}

pub(crate) fn sqs_events(function: &Value) -> Vec<&Value> {
    events(function, &["SQS"])
}

pub(crate) fn schedule_events(function: &Value) -> Vec<&Value> {
    events(function, &["ScheduleV2", "Schedule"])
}

/// A value that may be one item or a list of them.
pub(crate) fn seq(v: Option<&Value>) -> Vec<&Value> {
    match v {
        None => Vec::new(),
        Some(Value::Sequence(s)) => s.iter().collect(),
        Some(v) => vec![v],
    }
}

/// The strings in a value that may be one string or a list of them.
pub(crate) fn strings(v: Option<&Value>) -> BTreeSet<&str> {
    seq(v).into_iter().filter_map(Value::as_str).collect()
}

pub(crate) fn int(v: &Value, what: &str) -> u64 {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
    .unwrap_or_else(|| panic!("{what} is not a whole number: {v:?}"))
}

/// An intrinsic function in its short (`!GetAtt`) or long (`Fn::GetAtt:`) form: its long name
/// and argument.
pub(crate) fn intrinsic(v: &Value) -> Option<(String, &Value)> {
    match v {
        Value::Tagged(t) => {
            let tag = t.tag.to_string();
            let name = tag.trim_start_matches('!');
            Some((if name == "Ref" { name.to_string() } else { format!("Fn::{name}") }, &t.value))
        }
        Value::Mapping(m) if m.len() == 1 => {
            let (k, v) = m.iter().next()?;
            let k = k.as_str()?;
            (k == "Ref" || k.starts_with("Fn::")).then(|| (k.to_string(), v))
        }
        _ => None,
    }
}

pub(crate) fn get_att(v: &Value) -> Option<(String, &str)> {
    let (name, arg) = intrinsic(v)?;
    if name != "Fn::GetAtt" {
        return None;
    }
    match arg {
        Value::String(s) => s.split_once('.').map(|(r, a)| (r.to_string(), a)),
        Value::Sequence(p) if p.len() == 2 => Some((p[0].as_str()?.to_string(), p[1].as_str()?)),
        _ => None,
    }
}

pub(crate) fn ref_of(v: &Value) -> Option<&str> {
    match intrinsic(v)? {
        (name, arg) if name == "Ref" => arg.as_str(),
        _ => None,
    }
}

/// Every intrinsic in the template, with the path to it.
pub(crate) fn walk<'a>(v: &'a Value, path: &str, out: &mut Vec<(String, &'a Value)>) {
    if intrinsic(v).is_some() {
        out.push((path.to_string(), v));
    }
    match v {
        Value::Sequence(s) => s.iter().enumerate().for_each(|(i, v)| walk(v, &format!("{path}[{i}]"), out)),
        Value::Mapping(m) => {
            for (k, v) in m {
                walk(v, &format!("{path}.{}", k.as_str().unwrap_or("?")), out);
            }
        }
        Value::Tagged(t) => walk(&t.value, path, out),
        _ => {}
    }
}

/// The `${…}` names in a `!Sub` string (`${!Literal}` is an escape, not a name).
pub(crate) fn sub_names(s: &str) -> Vec<&str> {
    let mut names = Vec::new();
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else { break };
        if !after.starts_with('!') {
            names.push(&after[..end]);
        }
        rest = &after[end + 1..];
    }
    names
}

/// The strings a value can become once deployed, with references left as `${Name}` and
/// `${Resource.Attribute}`: both branches of every `!If`, `!Sub` with its variables filled in,
/// `!Join`. Two spellings of the same URL render alike, so tests compare what the URL will be.
pub(crate) fn render(v: &Value) -> Vec<String> {
    let mut out = match intrinsic(v) {
        Some((name, arg)) => match (name.as_str(), arg) {
            ("Ref", Value::String(name)) => vec![format!("${{{name}}}")],
            ("Fn::GetAtt", _) => {
                let (resource, attr) = get_att(v).unwrap_or_else(|| panic!("malformed !GetAtt {arg:?}"));
                vec![format!("${{{resource}.{attr}}}")]
            }
            ("Fn::If", Value::Sequence(p)) if p.len() == 3 => [render(&p[1]), render(&p[2])].concat(),
            ("Fn::Sub", Value::String(s)) => vec![s.clone()],
            ("Fn::Sub", Value::Sequence(p)) if p.len() == 2 => {
                let mut texts = vec![p[0].as_str().expect("!Sub's string").to_string()];
                for (name, value) in p[1].as_mapping().expect("!Sub's variables") {
                    let placeholder = format!("${{{}}}", name.as_str().expect("a !Sub variable's name"));
                    let mut filled = Vec::new();
                    for text in &texts {
                        for r in render(value) {
                            filled.push(text.replace(&placeholder, &r));
                        }
                    }
                    texts = filled;
                }
                texts
            }
            ("Fn::Join", Value::Sequence(p)) if p.len() == 2 => {
                let sep = p[0].as_str().expect("!Join's separator");
                let mut texts = vec![String::new()];
                for (i, part) in seq(Some(&p[1])).into_iter().enumerate() {
                    let mut joined = Vec::new();
                    for text in &texts {
                        for r in render(part) {
                            joined.push(if i == 0 { r } else { format!("{text}{sep}{r}") });
                        }
                    }
                    texts = joined;
                }
                texts
            }
            _ => panic!("render: {name} {arg:?} is not supported here"),
        },
        None => match v {
            Value::String(s) => vec![s.clone()],
            Value::Number(n) => vec![n.to_string()],
            Value::Bool(b) => vec![b.to_string()],
            _ => panic!("render: {v:?} is not a scalar"),
        },
    };
    out.dedup();
    out
}

/// The lists a list-valued property can become: both branches of an `!If` around it, each item
/// rendered.
pub(crate) fn render_list(v: &Value) -> Vec<Vec<String>> {
    match intrinsic(v) {
        Some((name, Value::Sequence(p))) if name == "Fn::If" && p.len() == 3 => {
            [render_list(&p[1]), render_list(&p[2])].concat()
        }
        _ => {
            let mut lists: Vec<Vec<String>> = vec![Vec::new()];
            for item in seq(Some(v)) {
                let mut longer = Vec::new();
                for list in &lists {
                    for r in render(item) {
                        longer.push([list.clone(), vec![r]].concat());
                    }
                }
                lists = longer;
            }
            lists
        }
    }
}
