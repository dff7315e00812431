//! Erasure: what is left of a lead after its person asked to be forgotten. The tombstone keeps
//! the figures reports count (when it came, where from, how far it got, who owned it) and none
//! of the personal data.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};

use crate::error::FieldProblem;
use crate::model::{Assignment, Attribution, Consent, Contact, Lead, Score, Touch, Utm, Validity};

/// The custom field that marks a tombstone; its value is when the lead was erased (RFC 3339).
/// A lead is erased when it carries this field *and* has no email address, which no captured
/// lead has, so a form that posts a field of this name cannot pass for an erased lead.
pub const ERASED_FIELD: &str = "leadflow_erased_at";

/// Whether `lead` is a tombstone.
pub fn is_erased(lead: &Lead) -> bool {
    lead.contact.email.is_empty() && lead.custom.contains_key(ERASED_FIELD)
}

/// When the lead was erased, if it is a tombstone.
pub fn erased_at(lead: &Lead) -> Option<DateTime<Utc>> {
    if !is_erased(lead) {
        return None;
    }
    lead.custom.get(ERASED_FIELD).and_then(|v| DateTime::parse_from_rfc3339(v).ok()).map(|t| t.with_timezone(&Utc))
}

/// The anonymous tombstone of `lead`, erased at `now`.
///
/// Kept: id, creation time, submission count, validity (its reasons reduced to field and code,
/// since a message may quote what was typed), domain kind, country, lifecycle, sales status,
/// score figures and grade (not the reasons), first and last touch (time, form, UTM source,
/// medium and campaign), whether consent was given and for what, and the owner (rep, team and
/// times, not the explanation).
///
/// Dropped: email address and domain, names, phone, company, job title, time zone, custom
/// fields, warnings, consent wording, page URLs, referrers, UTM term and content.
///
/// The version is the lead's + 1, as the store will write it.
pub fn tombstone(lead: &Lead, now: DateTime<Utc>) -> Lead {
    let validity = match &lead.validity {
        Validity::Valid => Validity::Valid,
        Validity::Invalid { reasons } => Validity::Invalid {
            reasons: reasons
                .iter()
                .map(|r| FieldProblem::new(r.field.clone(), r.code.clone(), format!("{} (erased)", r.code)))
                .collect(),
        },
    };
    let c = &lead.contact;
    let contact = Contact {
        email: String::new(),
        email_domain: String::new(),
        domain_kind: c.domain_kind,
        role_address: c.role_address,
        first_name: None,
        last_name: None,
        phone: None,
        phone_display: None,
        phone_country: None,
        company: None,
        job_title: None,
        country: c.country.clone(),
        time_zone: None,
    };
    let consent = lead.consent.as_ref().map(|k| Consent {
        given: k.given,
        purpose: k.purpose.clone(),
        wording: None,
        at: k.at,
        source: without_query(&k.source),
    });
    let mut custom = BTreeMap::new();
    custom.insert(ERASED_FIELD.to_string(), now.to_rfc3339_opts(SecondsFormat::Secs, true));
    Lead {
        id: lead.id,
        version: lead.version + 1,
        created_at: lead.created_at,
        updated_at: now,
        validity,
        warnings: Vec::new(),
        contact,
        consent,
        attribution: Attribution {
            first_touch: touch(&lead.attribution.first_touch),
            last_touch: touch(&lead.attribution.last_touch),
        },
        custom,
        submissions: lead.submissions,
        score: lead.score.as_ref().map(|s| Score {
            total: s.total,
            fit: s.fit,
            behaviour: s.behaviour,
            grade: s.grade,
            reasons: Vec::new(),
            computed_at: s.computed_at,
        }),
        lifecycle: lead.lifecycle,
        status: lead.status,
        owner: lead.owner.as_ref().map(|o| Assignment {
            rep_id: o.rep_id.clone(),
            team_id: o.team_id.clone(),
            assigned_at: o.assigned_at,
            sla_due_at: o.sla_due_at,
            explanation: Vec::new(),
            via_fallback: o.via_fallback,
        }),
    }
}

fn touch(t: &Touch) -> Touch {
    Touch {
        at: t.at,
        form: t.form.clone(),
        utm: Utm {
            source: t.utm.source.clone(),
            medium: t.utm.medium.clone(),
            campaign: t.utm.campaign.clone(),
            term: None,
            content: None,
        },
        page_url: None,
        referrer: None,
    }
}

/// A consent source is a form id or a page; a page's query string may carry personal data.
fn without_query(source: &str) -> String {
    source.split(['?', '#']).next().unwrap_or_default().to_string()
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::model::{DomainKind, LeadId, Lifecycle, SalesStatus};

    fn lead() -> Lead {
        let at = Utc.with_ymd_and_hms(2026, 1, 5, 9, 0, 0).single().unwrap_or_default();
        let touch = Touch {
            at,
            form: Some("demo".into()),
            utm: Utm {
                source: Some("google".into()),
                medium: Some("cpc".into()),
                campaign: Some("spring".into()),
                term: Some("ada lovelace".into()),
                content: Some("ad-1".into()),
            },
            page_url: Some("https://example.com/?email=ada@example.com".into()),
            referrer: Some("https://mail.example/inbox".into()),
        };
        let mut custom = BTreeMap::new();
        custom.insert("favourite_colour".to_string(), "teal".to_string());
        Lead {
            id: LeadId::from_parts(1, 2),
            version: 3,
            created_at: at,
            updated_at: at,
            validity: Validity::Valid,
            warnings: vec![FieldProblem::new("phone", "unparsable", "+44 nope is not a phone number")],
            contact: Contact {
                email: "ada@example.com".into(),
                email_domain: "example.com".into(),
                domain_kind: DomainKind::Corporate,
                role_address: false,
                first_name: Some("Ada".into()),
                last_name: Some("Lovelace".into()),
                phone: Some("+442071234567".into()),
                phone_display: Some("+44 20 7123 4567".into()),
                phone_country: Some("GB".into()),
                company: Some("Engines".into()),
                job_title: Some("CTO".into()),
                country: Some("GB".into()),
                time_zone: Some("Europe/London".into()),
            },
            consent: Some(Consent {
                given: true,
                purpose: "marketing".into(),
                wording: Some("Yes, Ada wants mail".into()),
                at,
                source: "https://example.com/form?email=ada@example.com".into(),
            }),
            attribution: Attribution { first_touch: touch.clone(), last_touch: touch },
            custom,
            submissions: 2,
            score: None,
            lifecycle: Lifecycle::Mql,
            status: SalesStatus::Contacted,
            owner: None,
        }
    }

    #[test]
    fn the_tombstone_keeps_figures_and_drops_personal_data() {
        let now = Utc.with_ymd_and_hms(2026, 2, 1, 0, 0, 0).single().unwrap_or_default();
        let original = lead();
        let t = tombstone(&original, now);
        let text = serde_json::to_string(&t).unwrap_or_default();
        for secret in
            ["ada", "Ada", "Lovelace", "4420", "20 7123", "Engines", "CTO", "teal", "London", "inbox", "wants"]
        {
            assert!(!text.contains(secret), "{secret} survived: {text}");
        }
        assert!(is_erased(&t));
        assert!(!is_erased(&original));
        assert_eq!(erased_at(&t), Some(now));
        assert_eq!(t.id, original.id);
        assert_eq!(t.version, 4);
        assert_eq!(t.lifecycle, Lifecycle::Mql);
        assert_eq!(t.status, SalesStatus::Contacted);
        assert_eq!(t.attribution.first_touch.utm.source.as_deref(), Some("google"));
        assert_eq!(t.attribution.first_touch.form.as_deref(), Some("demo"));
        assert_eq!(t.consent.as_ref().map(|c| c.source.as_str()), Some("https://example.com/form"));
        assert!(t.is_valid());
        // Erasing a tombstone changes nothing but the times.
        let again = tombstone(&t, now);
        assert_eq!(again.contact, t.contact);
        assert_eq!(again.attribution, t.attribution);
    }
}
