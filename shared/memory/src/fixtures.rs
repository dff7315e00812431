//! Values the adapter tests build leads and enrollments from, shared so that the SQLite and the
//! DynamoDB suites exercise their stores with the same data.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeZone, Utc};
use leadflow_core::model::{
    Assignment, Attribution, Contact, DomainKind, Enrollment, EnrollmentState, Lead, LeadId, Lifecycle, SalesStatus,
    Touch, Validity,
};
use leadflow_core::ports::{EmailCategory, Mailbox, OutgoingEmail};

pub fn t(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_750_000_000 + secs, 0).single().unwrap_or_default()
}

/// A transactional email with the key `key`, from a sales address to a rep, with no headers or
/// tags: for the tests of mailers and of what happens around a send.
pub fn outgoing_email(key: &str) -> OutgoingEmail {
    OutgoingEmail {
        key: key.to_string(),
        category: EmailCategory::Transactional,
        from: Mailbox { name: None, email: "sales@acme.example".into() },
        to: Mailbox { name: None, email: "rep@acme.example".into() },
        subject: "A lead".into(),
        text: "A lead.".into(),
        html: "<p>A lead.</p>".into(),
        headers: Vec::new(),
        tags: Vec::new(),
    }
}

pub fn id(n: u64) -> LeadId {
    LeadId::from_parts(1_750_000_000_000 + n, u128::from(n))
}

pub fn lead(n: u64, email: &str) -> Lead {
    Lead {
        id: id(n),
        version: 0,
        created_at: t(0),
        updated_at: t(0),
        validity: Validity::Valid,
        warnings: Vec::new(),
        contact: Contact {
            email: email.to_string(),
            email_domain: email.rsplit('@').next().unwrap_or_default().to_string(),
            domain_kind: DomainKind::Corporate,
            role_address: false,
            first_name: Some("Ada".into()),
            last_name: Some("Lovelace".into()),
            phone: None,
            phone_display: None,
            phone_country: None,
            company: Some("Analytical Engines".into()),
            job_title: None,
            country: Some("GB".into()),
            time_zone: None,
        },
        consent: None,
        attribution: Attribution { first_touch: Touch::default(), last_touch: Touch::default() },
        custom: BTreeMap::new(),
        submissions: 1,
        score: None,
        lifecycle: Lifecycle::Lead,
        status: SalesStatus::New,
        owner: None,
    }
}

pub fn owned_by(mut lead: Lead, rep: &str) -> Lead {
    lead.owner = Some(Assignment {
        rep_id: rep.to_string(),
        team_id: Some("emea".into()),
        assigned_at: t(10),
        sla_due_at: t(3600),
        explanation: vec!["round robin".into()],
        via_fallback: false,
    });
    lead
}

pub fn enrollment(lead: u64, campaign: &str, due: Option<DateTime<Utc>>, state: EnrollmentState) -> Enrollment {
    Enrollment {
        lead_id: id(lead),
        campaign_id: campaign.to_string(),
        campaign_version: 1,
        enrolled_at: t(0),
        next_step: 0,
        next_due_at: due,
        state,
        version: 0,
    }
}
