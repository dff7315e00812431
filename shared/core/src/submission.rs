//! Reading a landing page's fields into a [`Submission`]: which names Leadflow knows and which
//! types it accepts for them. Pure, so that capture and the benchmarks read a body the same way.

#[cfg(test)]
mod differential;
mod fields;
#[cfg(test)]
mod reference;

use std::collections::BTreeMap;

pub use fields::{BodyError, FieldValue, Fields};

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
///
/// The fields are taken, not borrowed: each value moves into the submission instead of being
/// copied, and each field name is looked at once. Problems are still reported in a fixed order
/// (email, custom fields in name order, their count, then the known fields in
/// [`KNOWN_FIELDS`]' order), whatever order the fields came in.
pub fn from_body(
    fields: Fields<'_>,
    honeypot_field: &str,
    max_custom_fields: usize,
) -> Result<Submission, FieldProblem> {
    let mut known: [Option<FieldValue<'_>>; KNOWN_FIELDS.len()] = Default::default();
    let mut others = Vec::new();
    for (k, v) in fields {
        match known_index(&k) {
            Some(i) => known[i] = Some(v),
            None if k == honeypot_field => {}
            None => others.push((k, v)),
        }
    }
    // By position, in KNOWN_FIELDS' order (`every_known_field_lands_in_its_place` holds the two
    // together): no name is looked up again.
    let [
        email,
        first_name,
        last_name,
        phone,
        company,
        job_title,
        country,
        time_zone,
        form,
        given,
        consent_purpose,
        consent_text,
        utm_source,
        utm_medium,
        utm_campaign,
        utm_term,
        utm_content,
        page_url,
        referrer,
        _submission_id,
    ] = known;

    let email = match email {
        Some(FieldValue::Text(s)) if !s.trim().is_empty() => s.into_owned(),
        None | Some(FieldValue::Null) | Some(FieldValue::Text(_)) => {
            return Err(FieldProblem::new("email", "required", "An email address is required."));
        }
        Some(_) => return Err(FieldProblem::new("email", "invalid_type", "email must be a string.")),
    };
    let mut custom = BTreeMap::new();
    for (k, v) in others {
        let value = match v {
            FieldValue::Text(s) => s.into_owned(),
            FieldValue::Number(n) => n.to_string(),
            FieldValue::Bool(b) => b.to_string(),
            FieldValue::Null => continue,
            FieldValue::Nested(_) => {
                return Err(FieldProblem::new(
                    k,
                    "invalid_type",
                    "Custom fields must be strings, numbers or booleans.",
                ));
            }
        };
        custom.insert(k.into_owned(), value);
    }
    if custom.len() > max_custom_fields {
        return Err(FieldProblem::new(
            "",
            "too_many_fields",
            format!("At most {max_custom_fields} extra fields are kept per submission."),
        ));
    }
    Ok(Submission {
        form: text("form", form)?,
        email,
        first_name: text("first_name", first_name)?,
        last_name: text("last_name", last_name)?,
        phone: text("phone", phone)?,
        company: text("company", company)?,
        job_title: text("job_title", job_title)?,
        country: text("country", country)?,
        time_zone: text("time_zone", time_zone)?,
        consent: consent(given, text("consent_purpose", consent_purpose), text("consent_text", consent_text))?,
        utm: Utm {
            source: text("utm_source", utm_source)?,
            medium: text("utm_medium", utm_medium)?,
            campaign: text("utm_campaign", utm_campaign)?,
            term: text("utm_term", utm_term)?,
            content: text("utm_content", utm_content)?,
        },
        page_url: text("page_url", page_url)?,
        referrer: text("referrer", referrer)?,
        custom,
        ..Submission::default()
    })
}

/// Where `name` is in [`KNOWN_FIELDS`]: a `match` on the name, which compiles to a length
/// switch and one comparison rather than a comparison with every known name. A test holds the
/// two lists to the same order.
fn known_index(name: &str) -> Option<usize> {
    Some(match name {
        "email" => 0,
        "first_name" => 1,
        "last_name" => 2,
        "phone" => 3,
        "company" => 4,
        "job_title" => 5,
        "country" => 6,
        "time_zone" => 7,
        "form" => 8,
        "consent" => 9,
        "consent_purpose" => 10,
        "consent_text" => 11,
        "utm_source" => 12,
        "utm_medium" => 13,
        "utm_campaign" => 14,
        "utm_term" => 15,
        "utm_content" => 16,
        "page_url" => 17,
        "referrer" => 18,
        "submission_id" => 19,
        _ => return None,
    })
}

/// A string field, if present: strings as they are, numbers as written, null or blank as absent.
fn text(name: &str, value: Option<FieldValue<'_>>) -> Result<Option<String>, FieldProblem> {
    match value {
        None | Some(FieldValue::Null) => Ok(None),
        Some(FieldValue::Text(s)) if s.trim().is_empty() => Ok(None),
        Some(FieldValue::Text(s)) => Ok(Some(s.into_owned())),
        Some(FieldValue::Number(n)) => Ok(Some(n.to_string())),
        Some(_) => Err(FieldProblem::new(name, "invalid_type", format!("{name} must be a string."))),
    }
}

/// Consent as a JSON boolean or a form checkbox's text (`on`, `yes`, `true`, `1`). Its purpose
/// and wording are only read (and their problems only reported) when consent is there.
fn consent(
    given: Option<FieldValue<'_>>,
    purpose: Result<Option<String>, FieldProblem>,
    wording: Result<Option<String>, FieldProblem>,
) -> Result<Option<RawConsent>, FieldProblem> {
    let given = match given {
        None | Some(FieldValue::Null) => return Ok(None),
        Some(FieldValue::Bool(b)) => b,
        Some(FieldValue::Text(s)) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "on" | "yes" | "1" => true,
            "false" | "off" | "no" | "0" | "" => false,
            _ => return Err(FieldProblem::new("consent", "invalid_value", "consent must be true or false.")),
        },
        Some(_) => return Err(FieldProblem::new("consent", "invalid_type", "consent must be true or false.")),
    };
    Ok(Some(RawConsent { given, purpose: purpose?, wording: wording? }))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// Through capture's own parse of the body's bytes.
    fn read(body: serde_json::Value) -> Result<Submission, (String, String)> {
        let bytes = serde_json::to_vec(&body).map_err(|e| ("".into(), e.to_string()))?;
        let fields = Fields::from_json(&bytes).map_err(|_| ("".to_string(), "not an object".to_string()))?;
        from_body(fields, "_gotcha", 2).map_err(|p| (p.field, p.code))
    }

    /// Each known field, given its own name as its value, lands in the submission's field of
    /// that name: `from_body` takes them by position.
    #[test]
    fn every_known_field_lands_in_its_place() {
        let mut body: serde_json::Map<String, serde_json::Value> =
            KNOWN_FIELDS.iter().map(|name| (name.to_string(), json!(name))).collect();
        body.insert("consent".into(), json!(true));
        let Ok(sub) = read(serde_json::Value::Object(body)) else { panic!("every known field is read") };
        let Some(consent) = &sub.consent else { panic!("consent is read") };
        let landed = [
            ("email", Some(sub.email.as_str())),
            ("first_name", sub.first_name.as_deref()),
            ("last_name", sub.last_name.as_deref()),
            ("phone", sub.phone.as_deref()),
            ("company", sub.company.as_deref()),
            ("job_title", sub.job_title.as_deref()),
            ("country", sub.country.as_deref()),
            ("time_zone", sub.time_zone.as_deref()),
            ("form", sub.form.as_deref()),
            ("consent_purpose", consent.purpose.as_deref()),
            ("consent_text", consent.wording.as_deref()),
            ("utm_source", sub.utm.source.as_deref()),
            ("utm_medium", sub.utm.medium.as_deref()),
            ("utm_campaign", sub.utm.campaign.as_deref()),
            ("utm_term", sub.utm.term.as_deref()),
            ("utm_content", sub.utm.content.as_deref()),
            ("page_url", sub.page_url.as_deref()),
            ("referrer", sub.referrer.as_deref()),
        ];
        for (name, value) in landed {
            assert_eq!(value, Some(name), "{name}");
        }
        assert!(consent.given);
        assert!(sub.custom.is_empty(), "{:?}", sub.custom);
    }

    #[test]
    fn known_index_follows_known_fields() {
        for (i, name) in KNOWN_FIELDS.iter().enumerate() {
            assert_eq!(known_index(name), Some(i), "{name}");
        }
        assert_eq!(known_index("Email"), None);
    }

    fn err(field: &str, code: &str) -> Result<Submission, (String, String)> {
        Err((field.into(), code.into()))
    }

    #[test]
    fn fields_move_into_the_submission() {
        let sub = read(json!({
            "email": "a@x.io", "first_name": "Ana", "phone": 4930, "company": "  ", "consent": "on",
            "consent_text": "Yes", "utm_source": "g", "_gotcha": "", "employees": 12, "vip": true, "gone": null,
        }));
        let Ok(sub) = sub else { panic!("{sub:?}") };
        assert_eq!(sub.email, "a@x.io");
        assert_eq!(sub.first_name.as_deref(), Some("Ana"));
        assert_eq!(sub.phone.as_deref(), Some("4930"));
        assert_eq!(sub.company, None);
        assert_eq!(sub.utm.source.as_deref(), Some("g"));
        assert_eq!(sub.consent, Some(RawConsent { given: true, purpose: None, wording: Some("Yes".into()) }));
        let custom: Vec<(&str, &str)> = sub.custom.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(custom, vec![("employees", "12"), ("vip", "true")]);
    }

    #[test]
    fn every_known_field_has_its_own_slot() {
        for (i, name) in KNOWN_FIELDS.iter().enumerate() {
            assert_eq!(known_index(name), Some(i), "{name}");
        }
        assert_eq!(known_index("Email"), None);
    }

    #[test]
    fn problems_come_in_a_fixed_order() {
        // The email first, whatever else is wrong.
        assert_eq!(read(json!({"first_name": [1], "x": {}})), err("email", "required"));
        assert_eq!(read(json!({"email": 1})), err("email", "invalid_type"));
        assert_eq!(read(json!({"email": "  "})), err("email", "required"));
        // Then custom fields in key order, then their count.
        assert_eq!(read(json!({"email": "a@x.io", "b": [], "a": {}, "form": []})), err("a", "invalid_type"));
        assert_eq!(read(json!({"email": "a@x.io", "a": 1, "b": 2, "c": 3, "form": []})), err("", "too_many_fields"));
        // Then the known fields, form first, consent before the UTM tags.
        assert_eq!(read(json!({"email": "a@x.io", "referrer": [], "form": {}})), err("form", "invalid_type"));
        assert_eq!(
            read(json!({"email": "a@x.io", "utm_source": [], "consent": "maybe"})),
            err("consent", "invalid_value")
        );
        assert_eq!(
            read(json!({"email": "a@x.io", "consent": true, "consent_text": [], "consent_purpose": {}})),
            err("consent_purpose", "invalid_type")
        );
        // Consent's wording is not read without consent.
        assert!(read(json!({"email": "a@x.io", "consent_text": []})).is_ok_and(|s| s.consent.is_none()));
        assert_eq!(read(json!({"email": "a@x.io", "consent": 1})), err("consent", "invalid_type"));
    }
}
