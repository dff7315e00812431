//! From a submission to a lead, and a repeat submission into the lead.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeZone, Utc};
use leadflow_core::model::{
    Assignment, CheckedEmail, DomainKind, Lead, LeadId, Lifecycle, RawConsent, SalesStatus, Submission, Utm, Validity,
};
use leadflow_core::normalize::{EMAIL_RULES, normalize_email};
use leadflow_core::validate::{ValidationSettings, build_lead, check_submission, merge_into};
use proptest::prelude::*;

fn at(hour: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, 14, hour, 0, 0).unwrap()
}

fn submission(email: &str) -> Submission {
    Submission {
        lead_id: LeadId::from_parts(1_741_950_000_000, 42),
        received_at: at(9),
        form: Some("demo-request".into()),
        email: email.into(),
        first_name: Some(" Ana ".into()),
        last_name: Some("Silva".into()),
        phone: Some("030 901820".into()),
        company: Some("Acme  GmbH".into()),
        job_title: Some("CTO".into()),
        country: Some("Germany".into()),
        time_zone: Some("europe/berlin".into()),
        consent: Some(RawConsent { given: true, purpose: None, wording: Some("Send me news.".into()) }),
        utm: Utm { source: Some("google".into()), medium: Some("cpc".into()), ..Utm::default() },
        page_url: Some("https://acme.io/demo".into()),
        referrer: Some("https://www.google.com/".into()),
        custom: BTreeMap::from([("message".to_string(), "Hi!\nCall me.".to_string())]),
        checked_email: None,
    }
}

fn settings() -> ValidationSettings {
    ValidationSettings { default_country: Some("US".into()) }
}

fn codes(problems: &[leadflow_core::FieldProblem]) -> Vec<(String, String)> {
    problems.iter().map(|p| (p.field.clone(), p.code.clone())).collect()
}

fn reasons(lead: &Lead) -> Vec<(String, String)> {
    match &lead.validity {
        Validity::Valid => vec![],
        Validity::Invalid { reasons } => codes(reasons),
    }
}

fn pair(field: &str, code: &str) -> (String, String) {
    (field.to_string(), code.to_string())
}

#[test]
fn a_clean_submission_passes_capture() {
    let checked = check_submission(&submission(" Ana@ACME.io "));
    assert_eq!(checked, Ok(CheckedEmail { rules: EMAIL_RULES, address: "ana@acme.io".into() }));
}

#[test]
fn capture_reports_every_problem_by_field_name() {
    let mut sub = submission("a@b.com\r\nBcc: x@y.z");
    sub.first_name = Some("Ana\r\nX-Injected: 1".into());
    sub.last_name = Some("S".repeat(101));
    sub.company = Some("C".repeat(201));
    sub.utm.campaign = Some("spring\0".into());
    sub.page_url = Some(format!("https://acme.io/{}", "p".repeat(2048)));
    sub.custom.insert("bad key!".into(), "x".into());
    sub.custom.insert("notes".into(), "n".repeat(1001));
    sub.custom.insert("nul".into(), "a\0b".into());
    let problems = check_submission(&sub).unwrap_err();
    assert_eq!(
        codes(&problems),
        vec![
            pair("email", "invalid_characters"),
            pair("first_name", "invalid_characters"),
            pair("last_name", "too_long"),
            pair("company", "too_long"),
            pair("utm_campaign", "invalid_characters"),
            pair("page_url", "too_long"),
            pair("custom.badkey", "invalid_field_name"),
            pair("custom.notes", "too_long"),
            pair("custom.nul", "invalid_characters"),
        ]
    );
    for p in &problems {
        assert!(!p.message.contains("Bcc") && !p.message.contains("nnnn"), "{p:?}");
    }
}

#[test]
fn capture_limits_are_inclusive() {
    let mut sub = submission("ana@acme.io");
    sub.first_name = Some("é".repeat(100));
    sub.company = Some("c".repeat(200));
    sub.referrer = Some(format!("https://x.io/{}", "r".repeat(2048 - 13)));
    sub.custom.insert("k".repeat(64), "v".repeat(1000));
    sub.custom.insert("a.b-c_D9".into(), "line one\r\nline two\ttabbed".into());
    assert!(check_submission(&sub).is_ok());
    sub.custom.insert("k".repeat(65), "v".into());
    assert_eq!(
        codes(&check_submission(&sub).unwrap_err()),
        vec![pair(&format!("custom.{}", "k".repeat(64)), "invalid_field_name")]
    );
}

#[test]
fn capture_rejects_a_missing_or_malformed_email() {
    assert_eq!(codes(&check_submission(&submission("")).unwrap_err()), vec![pair("email", "required")]);
    assert_eq!(codes(&check_submission(&submission("ana@acme")).unwrap_err()), vec![pair("email", "invalid_email")]);
    // Disposable domains are the validate stage's business, not capture's.
    assert!(check_submission(&submission("ana@mailinator.com")).is_ok());
}

#[test]
fn validation_takes_capture_s_address_only_when_it_is_plain_and_of_today_s_rules() {
    let carrying = |address: &str, rules: u32| Submission {
        checked_email: Some(CheckedEmail { rules, address: address.into() }),
        ..submission("Ana@Acme.io")
    };
    // Taken as carried: the typed address is not looked at again.
    assert_eq!(build_lead(&carrying("ana@acme.io", EMAIL_RULES), &settings()).contact.email, "ana@acme.io");
    assert_eq!(build_lead(&carrying("bo@acme.io", EMAIL_RULES), &settings()).contact.email_domain, "acme.io");
    // A message changed on its way, or queued under other rules: the typed address is
    // normalized instead, so no header break or capital gets in.
    for (address, rules) in [
        ("ana@acme.io\r\nBcc: x@evil.io", EMAIL_RULES),
        ("Ana@acme.io", EMAIL_RULES),
        ("ana@acme", EMAIL_RULES),
        ("ana@ac me.io", EMAIL_RULES),
        ("@acme.io", EMAIL_RULES),
        ("bo@acme.io", EMAIL_RULES + 1),
    ] {
        let lead = build_lead(&carrying(address, rules), &settings());
        assert_eq!(lead.contact.email, "ana@acme.io", "{address:?} under rules {rules}");
    }
}

#[test]
fn a_lead_is_built_normalized() {
    let sub = submission("  Ana@ACME.io ");
    let lead = build_lead(&sub, &settings());
    assert_eq!(lead.id, sub.lead_id);
    assert_eq!(lead.version, 0);
    assert_eq!((lead.created_at, lead.updated_at), (at(9), at(9)));
    assert_eq!(lead.validity, Validity::Valid);
    assert_eq!(lead.warnings, vec![]);
    let c = &lead.contact;
    assert_eq!(c.email, "ana@acme.io");
    assert_eq!(c.email_domain, "acme.io");
    assert_eq!(c.domain_kind, DomainKind::Corporate);
    assert!(!c.role_address);
    assert_eq!(c.first_name.as_deref(), Some("Ana"));
    assert_eq!(c.last_name.as_deref(), Some("Silva"));
    // Read in the lead's own country, not the default.
    assert_eq!(c.phone.as_deref(), Some("+4930901820"));
    assert_eq!(c.company.as_deref(), Some("Acme GmbH"));
    assert_eq!(c.country.as_deref(), Some("DE"));
    assert_eq!(c.time_zone.as_deref(), Some("Europe/Berlin"));
    let consent = lead.consent.as_ref().unwrap();
    assert!(consent.given);
    assert_eq!(consent.purpose, "marketing");
    assert_eq!(consent.wording.as_deref(), Some("Send me news."));
    assert_eq!(consent.at, at(9));
    assert_eq!(consent.source, "demo-request");
    let touch = &lead.attribution.first_touch;
    assert_eq!(touch, &lead.attribution.last_touch);
    assert_eq!(touch.at, at(9));
    assert_eq!(touch.form.as_deref(), Some("demo-request"));
    assert_eq!(touch.utm.source.as_deref(), Some("google"));
    assert_eq!(touch.page_url.as_deref(), Some("https://acme.io/demo"));
    assert_eq!(lead.custom, sub.custom);
    assert_eq!(lead.submissions, 1);
    assert_eq!(lead.score, None);
    assert_eq!((lead.lifecycle, lead.status), (Lifecycle::Lead, SalesStatus::New));
    assert_eq!(lead.owner, None);
}

#[test]
fn phone_without_country_uses_the_default_country() {
    let mut sub = submission("ana@acme.io");
    sub.country = None;
    sub.phone = Some("(201) 555-0123".into());
    let lead = build_lead(&sub, &settings());
    assert_eq!(lead.contact.phone.as_deref(), Some("+12015550123"));
    // Read once here, so that the stages after validation need no phone metadata.
    assert_eq!(lead.contact.phone_display.as_deref(), Some("+1 201-555-0123"));
    assert_eq!(lead.contact.phone_country.as_deref(), Some("US"));
    assert_eq!(lead.contact.country, None);
    // Without any country, the same number cannot be read.
    let lead = build_lead(&sub, &ValidationSettings::default());
    assert_eq!(lead.contact.phone, None);
    assert_eq!((lead.contact.phone_display, lead.contact.phone_country), (None, None));
    assert_eq!(codes(&lead.warnings), vec![pair("phone", "invalid_phone")]);
}

#[test]
fn unusable_optional_fields_are_warnings_not_invalidity() {
    let mut sub = submission("ana@acme.io");
    sub.phone = Some("call me maybe".into());
    sub.country = Some("Narnia".into());
    sub.time_zone = Some("Mars/Olympus".into());
    sub.first_name = Some("Ana\r\nBcc: x".into());
    let lead = build_lead(&sub, &settings());
    assert!(lead.is_valid());
    assert_eq!(
        codes(&lead.warnings),
        vec![
            pair("first_name", "invalid_characters"),
            pair("country", "unknown_country"),
            pair("time_zone", "unknown_time_zone"),
            pair("phone", "invalid_phone"),
        ]
    );
    let c = &lead.contact;
    assert_eq!((&c.phone, &c.country, &c.time_zone, &c.first_name), (&None, &None, &None, &None));
}

#[test]
fn disposable_addresses_make_the_lead_invalid() {
    let lead = build_lead(&submission("ana@mailinator.com"), &settings());
    assert_eq!(reasons(&lead), vec![pair("email", "disposable_email")]);
    assert_eq!(lead.contact.domain_kind, DomainKind::Disposable);
    assert_eq!(lead.contact.email, "ana@mailinator.com");
}

#[test]
fn free_mail_and_role_addresses_are_valid() {
    let lead = build_lead(&submission("Ana.Silva@GMail.com"), &settings());
    assert!(lead.is_valid());
    assert_eq!(lead.contact.domain_kind, DomainKind::FreeMail);
    let lead = build_lead(&submission("info@acme.io"), &settings());
    assert!(lead.is_valid());
    assert!(lead.contact.role_address);
}

#[test]
fn an_invalid_email_is_kept_for_display() {
    let lead = build_lead(&submission("  ana@acme "), &settings());
    assert_eq!(reasons(&lead), vec![pair("email", "invalid_email")]);
    assert_eq!(lead.contact.email, "ana@acme");
    assert_eq!(lead.contact.email_domain, "acme");

    let long = format!("{}@x.io", "é".repeat(300));
    let lead = build_lead(&submission(&long), &settings());
    assert_eq!(reasons(&lead), vec![pair("email", "too_long")]);
    assert_eq!(lead.contact.email.chars().count(), 254);
    assert_eq!(lead.contact.email_domain, "");

    let lead = build_lead(&submission("a@b.com\r\nBcc: x@y.z"), &settings());
    assert_eq!(reasons(&lead), vec![pair("email", "invalid_characters")]);
    assert!(!lead.contact.email.contains(['\r', '\n']));
    assert_eq!(lead.contact.email_domain, "y.z");

    let lead = build_lead(&submission(""), &settings());
    assert_eq!(reasons(&lead), vec![pair("email", "required")]);
    assert_eq!((lead.contact.email.as_str(), lead.contact.email_domain.as_str()), ("", ""));
}

#[test]
fn markup_is_kept_as_typed() {
    let mut sub = submission("ana@acme.io");
    sub.first_name = Some("<script>alert(1)</script>".into());
    let lead = build_lead(&sub, &settings());
    assert_eq!(lead.contact.first_name.as_deref(), Some("<script>alert(1)</script>"));
}

#[test]
fn consent_records_purpose_and_where_it_was_given() {
    let mut sub = submission("ana@acme.io");
    sub.consent = Some(RawConsent { given: false, purpose: Some(" product_updates ".into()), wording: None });
    sub.form = None;
    let consent = build_lead(&sub, &settings()).consent.unwrap();
    assert!(!consent.given);
    assert_eq!(consent.purpose, "product_updates");
    assert_eq!(consent.wording, None);
    assert_eq!(consent.source, "https://acme.io/demo");
    sub.page_url = None;
    assert_eq!(build_lead(&sub, &settings()).consent.unwrap().source, "unknown");
    sub.consent = None;
    assert_eq!(build_lead(&sub, &settings()).consent, None);
}

fn repeat_submission() -> Submission {
    Submission {
        lead_id: LeadId::from_parts(1_741_960_000_000, 7),
        received_at: at(12),
        form: Some("pricing".into()),
        email: "ANA@acme.io".into(),
        first_name: None,
        last_name: Some("Silva-Santos".into()),
        phone: None,
        company: Some("Acme Inc".into()),
        job_title: None,
        country: None,
        time_zone: None,
        consent: None,
        utm: Utm { source: Some("newsletter".into()), ..Utm::default() },
        page_url: Some("https://acme.io/pricing".into()),
        referrer: None,
        custom: BTreeMap::from([
            ("message".to_string(), "Second try".to_string()),
            ("seats".to_string(), "25".to_string()),
        ]),
        checked_email: None,
    }
}

fn owned(lead: Lead) -> Lead {
    Lead {
        version: 3,
        owner: Some(Assignment {
            rep_id: "rep-1".into(),
            team_id: Some("emea".into()),
            assigned_at: at(10),
            sla_due_at: at(14),
            explanation: vec!["EMEA round-robin".into()],
            via_fallback: false,
        }),
        status: SalesStatus::Contacted,
        lifecycle: Lifecycle::Mql,
        ..lead
    }
}

#[test]
fn a_repeat_submission_updates_what_it_provides() {
    let existing = owned(build_lead(&submission("ana@acme.io"), &settings()));
    let mut repeat = repeat_submission();
    repeat.phone = Some("garbage".into());
    let incoming = build_lead(&repeat, &settings());
    let merged = merge_into(&existing, &incoming, at(13));

    assert_eq!(merged.id, existing.id);
    assert_eq!(merged.version, 3);
    assert_eq!(merged.created_at, at(9));
    assert_eq!(merged.updated_at, at(13));
    assert_eq!(merged.owner, existing.owner);
    assert_eq!((merged.lifecycle, merged.status), (Lifecycle::Mql, SalesStatus::Contacted));
    assert_eq!(merged.submissions, 2);
    let c = &merged.contact;
    assert_eq!(c.email, "ana@acme.io");
    assert_eq!(c.first_name.as_deref(), Some("Ana"), "not provided again, kept");
    assert_eq!(c.last_name.as_deref(), Some("Silva-Santos"), "newest wins");
    assert_eq!(c.company.as_deref(), Some("Acme Inc"));
    assert_eq!(c.phone.as_deref(), Some("+4930901820"), "an unreadable new phone does not erase a good one");
    assert_eq!((c.phone_display.as_deref(), c.phone_country.as_deref()), (Some("+49 30 901820"), Some("DE")));
    assert_eq!(c.country.as_deref(), Some("DE"));
    assert_eq!(merged.consent, existing.consent, "no consent in the repeat: the earlier one stands");
    assert_eq!(merged.attribution.first_touch, existing.attribution.first_touch);
    assert_eq!(merged.attribution.last_touch.form.as_deref(), Some("pricing"));
    assert_eq!(merged.attribution.last_touch.at, at(12));
    assert_eq!(merged.custom.get("message").map(String::as_str), Some("Second try"));
    assert_eq!(merged.custom.get("seats").map(String::as_str), Some("25"));
    assert_eq!(codes(&merged.warnings), vec![pair("phone", "invalid_phone")]);
}

#[test]
fn a_new_phone_in_a_repeat_brings_its_display_form_and_region_along() {
    let existing = build_lead(&submission("ana@acme.io"), &settings());
    let mut repeat = repeat_submission();
    repeat.phone = Some("+44 20 7946 0958".into());
    let merged = merge_into(&existing, &build_lead(&repeat, &settings()), at(13));
    let c = &merged.contact;
    assert_eq!(
        (c.phone.as_deref(), c.phone_display.as_deref(), c.phone_country.as_deref()),
        (Some("+442079460958"), Some("+44 20 7946 0958"), Some("GB"))
    );
}

#[test]
fn a_repeat_consent_replaces_the_earlier_one() {
    let existing = build_lead(&submission("ana@acme.io"), &settings());
    let mut repeat = repeat_submission();
    repeat.consent = Some(RawConsent { given: false, purpose: None, wording: Some("Unsubscribe me".into()) });
    let merged = merge_into(&existing, &build_lead(&repeat, &settings()), at(13));
    let consent = merged.consent.unwrap();
    assert!(!consent.given);
    assert_eq!(consent.at, at(12));
    assert_eq!(consent.source, "pricing");
}

#[test]
fn merged_custom_fields_are_capped_at_fifty_with_the_newest_first() {
    let mut sub = submission("ana@acme.io");
    sub.custom = (0..40).map(|i| (format!("old{i:02}"), "o".to_string())).collect();
    let existing = build_lead(&sub, &settings());
    let mut repeat = repeat_submission();
    repeat.custom = (0..30).map(|i| (format!("new{i:02}"), "n".to_string())).collect();
    repeat.custom.insert("old00".into(), "updated".into());
    let merged = merge_into(&existing, &build_lead(&repeat, &settings()), at(13));
    assert_eq!(merged.custom.len(), 50);
    assert!((0..30).all(|i| merged.custom.contains_key(&format!("new{i:02}"))));
    assert_eq!(merged.custom.get("old00").map(String::as_str), Some("updated"));
    assert_eq!(merged.custom.keys().filter(|k| k.starts_with("old")).count(), 20);
}

fn arb_opt() -> impl Strategy<Value = Option<String>> {
    proptest::option::of(prop_oneof!["\\PC{0,40}", any::<String>(), "[ +()0-9-]{0,25}"])
}

prop_compose! {
    fn arb_submission()(
        email in prop_oneof!["[a-zA-Z0-9._+-]{1,20}@[a-zA-Z0-9-]{1,15}\\.[a-z]{2,4}", any::<String>(), "\\PC{0,300}"],
        names in (arb_opt(), arb_opt(), arb_opt(), arb_opt(), arb_opt()),
        place in (arb_opt(), arb_opt(), arb_opt()),
        utm in (arb_opt(), arb_opt(), arb_opt(), arb_opt(), arb_opt()),
        urls in (arb_opt(), arb_opt()),
        consent in proptest::option::of((any::<bool>(), arb_opt(), arb_opt())),
        custom in proptest::collection::btree_map(any::<String>(), any::<String>(), 0..60),
        millis in 0u64..4_000_000_000_000,
    ) -> Submission {
        Submission {
            lead_id: LeadId::from_parts(millis, u128::from(millis)),
            received_at: DateTime::from_timestamp_millis(millis as i64).unwrap_or_default(),
            form: names.4,
            email,
            first_name: names.0,
            last_name: names.1,
            phone: place.0,
            company: names.2,
            job_title: names.3,
            country: place.1,
            time_zone: place.2,
            consent: consent.map(|(given, purpose, wording)| RawConsent { given, purpose, wording }),
            utm: Utm { source: utm.0, medium: utm.1, campaign: utm.2, term: utm.3, content: utm.4 },
            page_url: urls.0,
            referrer: urls.1,
            custom,
            checked_email: None,
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

    #[test]
    fn build_lead_never_panics_and_agrees_with_capture(sub in arb_submission(), country in arb_opt()) {
        let settings = ValidationSettings { default_country: country };
        let lead = build_lead(&sub, &settings);
        prop_assert_eq!(lead.id, sub.lead_id);
        prop_assert_eq!(lead.submissions, 1);
        prop_assert!(lead.contact.email.chars().count() <= 254);
        prop_assert!(lead.custom.len() <= 50);
        if let Ok(checked) = check_submission(&sub) {
            let normalized = normalize_email(&sub.email);
            prop_assert!(normalized.is_ok());
            prop_assert_eq!(&lead.contact.email, &normalized.unwrap().address);
            // What capture let through stays visible on the lead as typed.
            prop_assert!(!lead.warnings.iter().any(|w| w.code == "invalid_characters" || w.code == "too_long"));
            // The address capture carries changes nothing about the lead but the work.
            let carried = Submission { checked_email: Some(checked), ..sub.clone() };
            prop_assert_eq!(build_lead(&carried, &settings), lead);
        }
    }

    #[test]
    fn merge_keeps_identity_and_counts(first in arb_submission(), second in arb_submission(), later in 0i64..1_000_000) {
        let existing = owned(build_lead(&first, &settings()));
        let incoming = build_lead(&second, &settings());
        let now = existing.updated_at + chrono::Duration::seconds(later);
        let merged = merge_into(&existing, &incoming, now);
        prop_assert_eq!(merged.id, existing.id);
        prop_assert_eq!(&merged.owner, &existing.owner);
        prop_assert_eq!(&merged.attribution.first_touch, &existing.attribution.first_touch);
        prop_assert_eq!(&merged.attribution.last_touch, &incoming.attribution.last_touch);
        prop_assert_eq!(&merged.contact.email, &existing.contact.email);
        prop_assert_eq!(merged.submissions, existing.submissions + 1);
        prop_assert_eq!(merged.version, existing.version);
        prop_assert_eq!(merged.created_at, existing.created_at);
        prop_assert_eq!(merged.updated_at, now);
        prop_assert!(merged.custom.len() <= 50);
        for (k, v) in &incoming.custom {
            if merged.custom.contains_key(k) {
                prop_assert_eq!(merged.custom.get(k), Some(v));
            }
        }
    }
}
