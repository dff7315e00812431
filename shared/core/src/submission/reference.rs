//! The reading of fields from a `serde_json::Map` as it was before [`super::from_body`], kept
//! for the tests only: the differential tests hold the new reading to it.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::KNOWN_FIELDS;
use crate::error::FieldProblem;
use crate::model::{RawConsent, Submission, Utm};

/// A submission from the posted fields (a JSON object, or a form's pairs as strings). The lead
/// id and the receive time are left for the caller. A problem with no single field to blame
/// (too many fields) has an empty `field`.
///
/// The fields are taken, not borrowed: each value moves into the submission instead of being
/// copied, and each field name is looked at once. Problems are still reported in a fixed order
/// (email, custom fields in the map's order, their count, then the known fields in
/// [`KNOWN_FIELDS`]' order), whatever order the fields came in.
pub(super) fn from_fields(
    fields: Map<String, Value>,
    honeypot_field: &str,
    max_custom_fields: usize,
) -> Result<Submission, FieldProblem> {
    let mut known: [Option<Value>; KNOWN_FIELDS.len()] = Default::default();
    let mut others = Vec::new();
    for (k, v) in fields {
        match KNOWN_FIELDS.iter().position(|f| *f == k) {
            Some(i) => known[i] = Some(v),
            None if k == honeypot_field => {}
            None => others.push((k, v)),
        }
    }
    let mut take = |name: &str| KNOWN_FIELDS.iter().position(|f| *f == name).and_then(|i| known[i].take());
    let given = take("consent");

    let email = match take("email") {
        Some(Value::String(s)) if !s.trim().is_empty() => s,
        None | Some(Value::Null) | Some(Value::String(_)) => {
            return Err(FieldProblem::new("email", "required", "An email address is required."));
        }
        Some(_) => return Err(FieldProblem::new("email", "invalid_type", "email must be a string.")),
    };
    let mut custom = BTreeMap::new();
    for (k, v) in others {
        let value = match v {
            Value::String(s) => s,
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Null => continue,
            _ => {
                return Err(FieldProblem::new(
                    k.as_str(),
                    "invalid_type",
                    "Custom fields must be strings, numbers or booleans.",
                ));
            }
        };
        custom.insert(k, value);
    }
    if custom.len() > max_custom_fields {
        return Err(FieldProblem::new(
            "",
            "too_many_fields",
            format!("At most {max_custom_fields} extra fields are kept per submission."),
        ));
    }
    let mut text = |name: &str| text(name, take(name));
    Ok(Submission {
        form: text("form")?,
        email,
        first_name: text("first_name")?,
        last_name: text("last_name")?,
        phone: text("phone")?,
        company: text("company")?,
        job_title: text("job_title")?,
        country: text("country")?,
        time_zone: text("time_zone")?,
        consent: consent(given, text("consent_purpose"), text("consent_text"))?,
        utm: Utm {
            source: text("utm_source")?,
            medium: text("utm_medium")?,
            campaign: text("utm_campaign")?,
            term: text("utm_term")?,
            content: text("utm_content")?,
        },
        page_url: text("page_url")?,
        referrer: text("referrer")?,
        custom,
        ..Submission::default()
    })
}

/// A string field, if present: strings as they are, numbers as written, null or blank as absent.
fn text(name: &str, value: Option<Value>) -> Result<Option<String>, FieldProblem> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(_) => Err(FieldProblem::new(name, "invalid_type", format!("{name} must be a string."))),
    }
}

/// Consent as a JSON boolean or a form checkbox's text (`on`, `yes`, `true`, `1`). Its purpose
/// and wording are only read (and their problems only reported) when consent is there.
fn consent(
    given: Option<Value>,
    purpose: Result<Option<String>, FieldProblem>,
    wording: Result<Option<String>, FieldProblem>,
) -> Result<Option<RawConsent>, FieldProblem> {
    let given = match given {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Bool(b)) => b,
        Some(Value::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "on" | "yes" | "1" => true,
            "false" | "off" | "no" | "0" | "" => false,
            _ => return Err(FieldProblem::new("consent", "invalid_value", "consent must be true or false.")),
        },
        Some(_) => return Err(FieldProblem::new("consent", "invalid_type", "consent must be true or false.")),
    };
    Ok(Some(RawConsent { given, purpose: purpose?, wording: wording? }))
}
