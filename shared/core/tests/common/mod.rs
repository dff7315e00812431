//! Values for the tests, built directly from the model's types so these tests do not depend on
//! normalization or validation.
#![allow(dead_code)] // each test crate uses a different part of this module

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use leadflow_core::model::{
    Activity, ActivityKind, Assignment, Attribution, Consent, Contact, DomainKind, Lead, LeadId, Lifecycle,
    SalesStatus, Touch, Utm, Validity,
};

/// An instant written as RFC 3339, e.g. `2025-01-06T05:00:00Z`.
pub fn at(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339).unwrap_or_else(|e| panic!("bad instant {rfc3339}: {e}")).with_timezone(&Utc)
}

/// Monday 6 January 2025, 12:00 UTC: the "now" of most tests.
pub fn now() -> DateTime<Utc> {
    at("2025-01-06T12:00:00Z")
}

/// A valid, consenting lead from Germany at a corporate domain, fresh at [`now`].
pub fn lead() -> Lead {
    let created = now() - Duration::days(3);
    let touch = Touch {
        at: created,
        form: Some("demo-request".into()),
        utm: Utm { source: Some("google".into()), medium: Some("cpc".into()), ..Utm::default() },
        page_url: Some("https://example.com/pricing".into()),
        referrer: None,
    };
    Lead {
        id: LeadId::from_parts(1_736_000_000_000, 42),
        version: 1,
        created_at: created,
        updated_at: created,
        validity: Validity::Valid,
        warnings: Vec::new(),
        contact: Contact {
            email: "ada@acme.example".into(),
            email_domain: "acme.example".into(),
            domain_kind: DomainKind::Corporate,
            role_address: false,
            first_name: Some("Ada".into()),
            last_name: Some("Lovelace".into()),
            phone: Some("+4930123456".into()),
            phone_display: Some("+49 30 123456".into()),
            phone_country: Some("DE".into()),
            company: Some("Acme GmbH".into()),
            job_title: Some("VP of Engineering".into()),
            country: Some("DE".into()),
            time_zone: Some("Europe/Berlin".into()),
        },
        consent: Some(Consent {
            given: true,
            purpose: "marketing".into(),
            wording: Some("Send me news".into()),
            at: created,
            source: "demo-request".into(),
        }),
        attribution: Attribution { first_touch: touch.clone(), last_touch: touch },
        custom: BTreeMap::from([("employees".to_string(), "250".to_string())]),
        submissions: 1,
        score: None,
        lifecycle: Lifecycle::Lead,
        status: SalesStatus::New,
        owner: None,
    }
}

/// [`lead`] with changes.
pub fn lead_with(change: impl FnOnce(&mut Lead)) -> Lead {
    let mut l = lead();
    change(&mut l);
    l
}

/// An activity of the kind behaviour rules call `name`, `age` before `now`.
pub fn activity(name: &str, now: DateTime<Utc>, age: Duration, n: u32) -> Activity {
    let kind = match name {
        "form_submission" => {
            ActivityKind::FormSubmission { submission_id: LeadId::from_parts(1, u128::from(n)), form: None }
        }
        "email_open" => ActivityKind::EmailOpened { message_id: format!("m{n}"), email: None },
        "email_click" => ActivityKind::EmailClicked { message_id: format!("m{n}"), email: None, url: None },
        "email_sent" => ActivityKind::EmailSent {
            email: "ada@acme.example".into(),
            message_id: format!("m{n}"),
            subject: "Hi".into(),
        },
        other => panic!("no activity kind named {other} in the test helper"),
    };
    assert_eq!(kind.name(), name, "the helper must build the kind rules call {name}");
    Activity { id: format!("{name}-{n}"), lead_id: lead().id, at: now - age, kind }
}

/// An owner, as the route stage records it.
pub fn assignment(rep: &str) -> Assignment {
    Assignment {
        rep_id: rep.into(),
        team_id: Some("dach".into()),
        assigned_at: now(),
        sla_due_at: now() + Duration::hours(4),
        explanation: vec!["test".into()],
        via_fallback: false,
    }
}

/// Points as hundredths, the unit scores are shown in.
pub fn hundredths(points: f64) -> i64 {
    (points * 100.0).round() as i64
}
