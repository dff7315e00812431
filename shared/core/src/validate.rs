//! From a submission to a lead: normalization, validation, enrichment, and merging a repeat
//! submission into the lead that has the same email.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::error::FieldProblem;
use crate::model::{
    Attribution, CheckedEmail, Consent, Contact, DomainKind, Lead, Lifecycle, SalesStatus, Submission, Touch, Utm,
    Validity,
};
use crate::normalize::{
    EMAIL_RULES, MAX_EMAIL_LEN, MAX_NAME_CHARS, Phone, check_text, classify_domain, is_role_address, longer_than,
    normalize_country, normalize_email, normalize_text, normalize_time_zone, plain_normalized_email, read_phone,
};

/// Longest value of a single-line field other than names and URLs, in characters.
pub const MAX_TEXT_CHARS: usize = 200;
/// Longest page URL or referrer kept, in characters.
pub const MAX_URL_CHARS: usize = 2048;
/// Longest custom field name, in characters.
pub const MAX_CUSTOM_KEY_CHARS: usize = 64;
/// Longest custom field value, in characters.
pub const MAX_CUSTOM_VALUE_CHARS: usize = 1000;
/// Most custom fields a lead keeps.
pub const MAX_CUSTOM_FIELDS: usize = 50;
/// Longest consent wording kept, in characters: a checkbox label, not a privacy policy.
pub const MAX_CONSENT_WORDING_CHARS: usize = 2000;

const DEFAULT_CONSENT_PURPOSE: &str = "marketing";

#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ValidationSettings {
    /// Region used to read phone numbers written without a country code when the lead gave none.
    pub default_country: Option<String>,
}

/// The single-line fields of a submission with the names problems use and their limits.
fn single_line_fields(sub: &Submission) -> [(&'static str, Option<&str>, usize); 15] {
    [
        ("first_name", sub.first_name.as_deref(), MAX_NAME_CHARS),
        ("last_name", sub.last_name.as_deref(), MAX_NAME_CHARS),
        ("company", sub.company.as_deref(), MAX_TEXT_CHARS),
        ("job_title", sub.job_title.as_deref(), MAX_TEXT_CHARS),
        ("phone", sub.phone.as_deref(), MAX_TEXT_CHARS),
        ("country", sub.country.as_deref(), MAX_TEXT_CHARS),
        ("time_zone", sub.time_zone.as_deref(), MAX_TEXT_CHARS),
        ("form", sub.form.as_deref(), MAX_TEXT_CHARS),
        ("utm_source", sub.utm.source.as_deref(), MAX_TEXT_CHARS),
        ("utm_medium", sub.utm.medium.as_deref(), MAX_TEXT_CHARS),
        ("utm_campaign", sub.utm.campaign.as_deref(), MAX_TEXT_CHARS),
        ("utm_term", sub.utm.term.as_deref(), MAX_TEXT_CHARS),
        ("utm_content", sub.utm.content.as_deref(), MAX_TEXT_CHARS),
        ("page_url", sub.page_url.as_deref(), MAX_URL_CHARS),
        ("referrer", sub.referrer.as_deref(), MAX_URL_CHARS),
    ]
}

/// Capture's synchronous checks, cheap enough to answer in the request: the email's syntax,
/// control characters and lengths. Every problem found, not just the first. When there is
/// none, the normalized address, for capture to send with the submission
/// ([`Submission::checked_email`]) so that validation does not normalize it a second time.
pub fn check_submission(sub: &Submission) -> Result<CheckedEmail, Vec<FieldProblem>> {
    let mut problems = Vec::new();
    let checked_email = match normalize_email(&sub.email) {
        Ok(normalized) => Some(CheckedEmail { rules: EMAIL_RULES, address: normalized.address }),
        Err(p) => {
            problems.push(p);
            None
        }
    };
    for (field, value, max) in single_line_fields(sub) {
        if let Some(value) = value
            && let Err(p) = check_text(field, value, max)
        {
            problems.push(p);
        }
    }
    if let Some(consent) = &sub.consent {
        if let Some(purpose) = consent.purpose.as_deref()
            && let Err(p) = check_text("consent.purpose", purpose, MAX_TEXT_CHARS)
        {
            problems.push(p);
        }
        if let Some(wording) = consent.wording.as_deref()
            && let Some(p) = check_multi_line(|| "consent.wording".to_string(), wording, MAX_CONSENT_WORDING_CHARS)
        {
            problems.push(p);
        }
    }
    for (key, value) in &sub.custom {
        if !is_valid_custom_key(key) {
            problems.push(FieldProblem::new(
                custom_field_name(key),
                "invalid_field_name",
                "Custom field names can only use letters, digits, '_', '.' and '-', at most 64 of them.",
            ));
        } else if let Some(p) = check_multi_line(|| custom_field_name(key), value, MAX_CUSTOM_VALUE_CHARS) {
            problems.push(p);
        }
    }
    match checked_email {
        Some(checked) if problems.is_empty() => Ok(checked),
        _ => Err(problems),
    }
}

fn is_valid_custom_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= MAX_CUSTOM_KEY_CHARS
        && key.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// `custom.<key>` with only the characters a key may have, so that a hostile key (megabytes,
/// control characters, someone's address) does not travel into answers and logs.
fn custom_field_name(key: &str) -> String {
    let safe: String = key
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        .take(MAX_CUSTOM_KEY_CHARS)
        .collect();
    if safe.is_empty() { "custom".to_string() } else { format!("custom.{safe}") }
}

/// Multi-line values (a "message" textarea) may hold line breaks and tabs, but no other control
/// character: NUL breaks stores and C strings, escape sequences rewrite terminals and exports.
/// The field's name is only made when there is a problem to name it in.
fn check_multi_line(field: impl FnOnce() -> String, value: &str, max_chars: usize) -> Option<FieldProblem> {
    let control = |c: char| c.is_control() && !matches!(c, '\n' | '\r' | '\t');
    let has_control =
        if value.is_ascii() { value.bytes().any(|b| control(char::from(b))) } else { value.chars().any(control) };
    if has_control {
        Some(FieldProblem::new(field(), "invalid_characters", "This field contains control characters."))
    } else if longer_than(value, max_chars) {
        Some(FieldProblem::new(field(), "too_long", format!("This field is longer than {max_chars} characters.")))
    } else {
        None
    }
}

/// A single-line value made safe to keep no matter what came in: control characters become
/// spaces, whitespace is collapsed, NFC, cut at `max_chars`.
fn sanitize_line(raw: &str, max_chars: usize) -> String {
    let spaced: String = raw.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    match normalize_text("", &spaced, usize::MAX) {
        Ok(Some(clean)) => clean.chars().take(max_chars).collect::<String>().trim_end().to_string(),
        _ => String::new(),
    }
}

/// A normalized optional text field; a value that cannot be used becomes a warning and `None`.
fn optional_text(field: &str, raw: Option<&str>, max_chars: usize, warnings: &mut Vec<FieldProblem>) -> Option<String> {
    match normalize_text(field, raw?, max_chars) {
        Ok(value) => value,
        Err(p) => {
            warnings.push(p);
            None
        }
    }
}

/// An attribution field: kept even when malformed (a cut URL still says where a lead came
/// from), with a warning.
fn touch_text(field: &str, raw: Option<&str>, max_chars: usize, warnings: &mut Vec<FieldProblem>) -> Option<String> {
    let raw = raw?;
    match normalize_text(field, raw, max_chars) {
        Ok(value) => value,
        Err(p) => {
            warnings.push(p);
            Some(sanitize_line(raw, max_chars)).filter(|s| !s.is_empty())
        }
    }
}

fn non_blank(raw: Option<&str>) -> Option<&str> {
    raw.map(str::trim).filter(|s| !s.is_empty())
}

/// The address as typed, for showing an invalid lead: trimmed, control characters replaced
/// (it may be put in a header or a CSV some day), at most 254 characters.
fn displayable_email(raw: &str) -> String {
    raw.trim()
        .chars()
        .map(|c| if c.is_control() { char::REPLACEMENT_CHARACTER } else { c })
        .take(MAX_EMAIL_LEN)
        .collect()
}

/// A new lead (version 0) from a submission. Problems that make it unusable make it invalid;
/// the others become warnings.
pub fn build_lead(sub: &Submission, settings: &ValidationSettings) -> Lead {
    let mut reasons = Vec::new();
    let mut warnings = Vec::new();

    // The address capture normalized, when it is still plain and of today's rules.
    let carried = sub.checked_email.as_ref().filter(|c| c.rules == EMAIL_RULES);
    let normalized = match carried.and_then(|c| plain_normalized_email(&c.address)) {
        Some(normalized) => Ok(normalized),
        None => normalize_email(&sub.email),
    };
    let (email, email_domain, domain_kind, role_address) = match normalized {
        Ok(normalized) => {
            let kind = classify_domain(&normalized.domain);
            if kind == DomainKind::Disposable {
                reasons.push(FieldProblem::new(
                    "email",
                    "disposable_email",
                    "Addresses from throwaway email services are not accepted; use a permanent address.",
                ));
            }
            let role = is_role_address(&normalized.local);
            (normalized.address, normalized.domain, kind, role)
        }
        Err(p) => {
            reasons.push(p);
            let shown = displayable_email(&sub.email);
            let (local, domain) = shown.rsplit_once('@').unwrap_or((shown.as_str(), ""));
            let (domain, kind, role) = (domain.to_string(), classify_domain(domain), is_role_address(local));
            (shown, domain, kind, role)
        }
    };

    let first_name = optional_text("first_name", sub.first_name.as_deref(), MAX_NAME_CHARS, &mut warnings);
    let last_name = optional_text("last_name", sub.last_name.as_deref(), MAX_NAME_CHARS, &mut warnings);
    let company = optional_text("company", sub.company.as_deref(), MAX_TEXT_CHARS, &mut warnings);
    let job_title = optional_text("job_title", sub.job_title.as_deref(), MAX_TEXT_CHARS, &mut warnings);

    let country = non_blank(sub.country.as_deref()).and_then(|raw| {
        let code = normalize_country(raw);
        if code.is_none() {
            warnings.push(FieldProblem::new(
                "country",
                "unknown_country",
                "The country was not recognised; use its English name or two-letter ISO code.",
            ));
        }
        code
    });
    let time_zone = non_blank(sub.time_zone.as_deref()).and_then(|raw| {
        let tz = normalize_time_zone(raw);
        if tz.is_none() {
            warnings.push(FieldProblem::new(
                "time_zone",
                "unknown_time_zone",
                "The time zone was not recognised; use an IANA name such as Europe/Berlin.",
            ));
        }
        tz
    });

    let phone_region = country.clone().or_else(|| settings.default_country.as_deref().and_then(normalize_country));
    let phone = non_blank(sub.phone.as_deref()).and_then(|raw| match read_phone(raw, phone_region.as_deref()) {
        Ok(phone) => Some(phone),
        Err(p) => {
            warnings.push(p);
            None
        }
    });
    let (phone, phone_display, phone_country) = match phone {
        Some(Phone { e164, display, country }) => (Some(e164), Some(display), country),
        None => (None, None, None),
    };

    let touch = Touch {
        at: sub.received_at,
        form: touch_text("form", sub.form.as_deref(), MAX_TEXT_CHARS, &mut warnings),
        utm: Utm {
            source: touch_text("utm_source", sub.utm.source.as_deref(), MAX_TEXT_CHARS, &mut warnings),
            medium: touch_text("utm_medium", sub.utm.medium.as_deref(), MAX_TEXT_CHARS, &mut warnings),
            campaign: touch_text("utm_campaign", sub.utm.campaign.as_deref(), MAX_TEXT_CHARS, &mut warnings),
            term: touch_text("utm_term", sub.utm.term.as_deref(), MAX_TEXT_CHARS, &mut warnings),
            content: touch_text("utm_content", sub.utm.content.as_deref(), MAX_TEXT_CHARS, &mut warnings),
        },
        page_url: touch_text("page_url", sub.page_url.as_deref(), MAX_URL_CHARS, &mut warnings),
        referrer: touch_text("referrer", sub.referrer.as_deref(), MAX_URL_CHARS, &mut warnings),
    };

    let consent = sub.consent.as_ref().map(|raw| Consent {
        given: raw.given,
        // A purpose that cannot be read is kept in cleaned form rather than replaced by the
        // default: recording consent to "marketing" when the form said something else would
        // overstate what the person agreed to.
        purpose: raw
            .purpose
            .as_deref()
            .map(|p| sanitize_line(p, MAX_TEXT_CHARS))
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| DEFAULT_CONSENT_PURPOSE.to_string()),
        wording: raw.wording.as_deref().map(clean_wording).filter(|w| !w.is_empty()),
        at: sub.received_at,
        source: touch.form.clone().or_else(|| touch.page_url.clone()).unwrap_or_else(|| "unknown".to_string()),
    });

    let mut custom = sub.custom.clone();
    if custom.len() > MAX_CUSTOM_FIELDS {
        custom = sub.custom.iter().take(MAX_CUSTOM_FIELDS).map(|(k, v)| (k.clone(), v.clone())).collect();
        warnings.push(FieldProblem::new(
            "custom",
            "too_many_fields",
            format!("Only the first {MAX_CUSTOM_FIELDS} custom fields are kept."),
        ));
    }

    Lead {
        id: sub.lead_id,
        version: 0,
        created_at: sub.received_at,
        updated_at: sub.received_at,
        validity: if reasons.is_empty() { Validity::Valid } else { Validity::Invalid { reasons } },
        warnings,
        contact: Contact {
            email,
            email_domain,
            domain_kind,
            role_address,
            first_name,
            last_name,
            phone,
            phone_display,
            phone_country,
            company,
            job_title,
            country,
            time_zone,
        },
        consent,
        attribution: Attribution { first_touch: touch.clone(), last_touch: touch },
        custom,
        submissions: 1,
        score: None,
        lifecycle: Lifecycle::Lead,
        status: SalesStatus::New,
        owner: None,
    }
}

/// Consent wording as shown on the form: line breaks kept, other control characters dropped,
/// bounded.
fn clean_wording(raw: &str) -> String {
    let trimmed = raw.trim();
    // The usual checkbox label: nothing to replace and well under the bound, so kept as it is
    // (what the character-by-character copy below would give, without it).
    if trimmed.len() <= MAX_CONSENT_WORDING_CHARS && !trimmed.chars().any(char::is_control) {
        return trimmed.to_string();
    }
    let mut kept: String = trimmed
        .chars()
        .filter(|c| *c != '\r')
        .map(|c| if c.is_control() && !matches!(c, '\n' | '\t') { ' ' } else { c })
        .take(MAX_CONSENT_WORDING_CHARS)
        .collect();
    kept.truncate(kept.trim_end().len());
    kept
}

/// The existing lead with a repeat submission merged in.
pub fn merge_into(existing: &Lead, incoming: &Lead, now: DateTime<Utc>) -> Lead {
    let mut lead = existing.clone();

    // Newest wins: people correct a typo or change jobs, and the latest form is what they now
    // say about themselves. The email is what matched the two, so it stays.
    let (c, new) = (&mut lead.contact, &incoming.contact);
    for (field, value) in [
        (&mut c.first_name, &new.first_name),
        (&mut c.last_name, &new.last_name),
        (&mut c.company, &new.company),
        (&mut c.job_title, &new.job_title),
        (&mut c.country, &new.country),
        (&mut c.time_zone, &new.time_zone),
    ] {
        if value.is_some() {
            field.clone_from(value);
        }
    }

    // The number and what was read from it go together.
    if new.phone.is_some() {
        c.phone.clone_from(&new.phone);
        c.phone_display.clone_from(&new.phone_display);
        c.phone_country.clone_from(&new.phone_country);
    }

    lead.custom = merge_custom(&existing.custom, &incoming.custom);
    if incoming.consent.is_some() {
        lead.consent.clone_from(&incoming.consent);
    }
    lead.attribution.last_touch = incoming.attribution.last_touch.clone();
    lead.submissions = existing.submissions.saturating_add(1);
    lead.warnings.clone_from(&incoming.warnings);
    lead.updated_at = now;
    lead
}

/// Incoming values win per key; when the union exceeds the cap, the incoming keys are kept
/// first (they are the form's current fields) and the older ones fill the rest in key order.
fn merge_custom(existing: &BTreeMap<String, String>, incoming: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let mut merged: BTreeMap<String, String> =
        incoming.iter().take(MAX_CUSTOM_FIELDS).map(|(k, v)| (k.clone(), v.clone())).collect();
    for (key, value) in existing {
        if merged.len() >= MAX_CUSTOM_FIELDS {
            break;
        }
        merged.entry(key.clone()).or_insert_with(|| value.clone());
    }
    merged
}
