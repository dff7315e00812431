//! Reading a landing page's fields into a [`Submission`]: which names Leadflow knows and which
//! types it accepts for them. Pure, so that capture and the benchmarks read a body the same way.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::error::FieldProblem;
use crate::model::{RawConsent, Submission, Utm};

/// The field names capture reads itself; every other field is kept as a custom field.
pub const KNOWN_FIELDS: &[&str] = &[
    "email",
    "first_name",
    "last_name",
    "phone",
    "company",
    "job_title",
    "country",
    "time_zone",
    "form",
    "consent",
    "consent_purpose",
    "consent_text",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_term",
    "utm_content",
    "page_url",
    "referrer",
    "submission_id",
];

/// A submission from the posted fields (a JSON object, or a form's pairs as strings). The lead
/// id and the receive time are left for the caller. A problem with no single field to blame
/// (too many fields) has an empty `field`.
pub fn from_fields(
    fields: &Map<String, Value>,
    honeypot_field: &str,
    max_custom_fields: usize,
) -> Result<Submission, FieldProblem> {
    let email = match fields.get("email") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
        None | Some(Value::Null) | Some(Value::String(_)) => {
            return Err(FieldProblem::new("email", "required", "An email address is required."));
        }
        Some(_) => return Err(FieldProblem::new("email", "invalid_type", "email must be a string.")),
    };
    let mut custom = BTreeMap::new();
    for (k, v) in fields {
        if KNOWN_FIELDS.contains(&k.as_str()) || k == honeypot_field {
            continue;
        }
        let value = match v {
            Value::String(s) => s.clone(),
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
        custom.insert(k.clone(), value);
    }
    if custom.len() > max_custom_fields {
        return Err(FieldProblem::new(
            "",
            "too_many_fields",
            format!("At most {max_custom_fields} extra fields are kept per submission."),
        ));
    }
    Ok(Submission {
        form: text(fields, "form")?,
        email,
        first_name: text(fields, "first_name")?,
        last_name: text(fields, "last_name")?,
        phone: text(fields, "phone")?,
        company: text(fields, "company")?,
        job_title: text(fields, "job_title")?,
        country: text(fields, "country")?,
        time_zone: text(fields, "time_zone")?,
        consent: consent(fields)?,
        utm: Utm {
            source: text(fields, "utm_source")?,
            medium: text(fields, "utm_medium")?,
            campaign: text(fields, "utm_campaign")?,
            term: text(fields, "utm_term")?,
            content: text(fields, "utm_content")?,
        },
        page_url: text(fields, "page_url")?,
        referrer: text(fields, "referrer")?,
        custom,
        ..Submission::default()
    })
}

/// A string field, if present: strings as they are, numbers as written, null or blank as absent.
fn text(fields: &Map<String, Value>, name: &str) -> Result<Option<String>, FieldProblem> {
    match fields.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(_) => Err(FieldProblem::new(name, "invalid_type", format!("{name} must be a string."))),
    }
}

/// Consent as a JSON boolean or a form checkbox's text (`on`, `yes`, `true`, `1`).
fn consent(fields: &Map<String, Value>) -> Result<Option<RawConsent>, FieldProblem> {
    let given = match fields.get("consent") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "on" | "yes" | "1" => true,
            "false" | "off" | "no" | "0" | "" => false,
            _ => return Err(FieldProblem::new("consent", "invalid_value", "consent must be true or false.")),
        },
        Some(_) => return Err(FieldProblem::new("consent", "invalid_type", "consent must be true or false.")),
    };
    Ok(Some(RawConsent { given, purpose: text(fields, "consent_purpose")?, wording: text(fields, "consent_text")? }))
}
