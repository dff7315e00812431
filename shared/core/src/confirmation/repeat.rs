//! A repeat submission: a form posted again with an address a lead already has.
//!
//! Nobody has shown that the second submission comes from the person the lead is about, so it
//! may not change who the lead is: its name, phone, company, job title, country, time zone,
//! custom fields and consent stay as they are — those decide the score, the routing and what a
//! rep reads. What the submission said differently is kept on the trail (`changes_held`) for a
//! person to review. What it may change is what describes the visit rather than the person:
//! the last touch (form, UTM, page, referrer), the submission count, and its `form_submission`
//! entry, which behaviour rules count like any other activity. Consent ticked again is a new
//! request: it gets a confirmation email unless one is still valid ([`super::standing`]),
//! whatever the form's `double_opt_in`, since the person behind a repeat is unknown.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::model::{Activity, ActivityKind, Lead, LeadId};

/// The existing lead with a repeat submission merged in, and the trail entries that tell what
/// was held back: `changes_held` with every field the submission would have changed, and
/// `consent_requested` when it ticked consent the lead has not given. `incoming` is the
/// submission made into a lead (normalized, consent as posted).
pub fn merge_repeat(
    existing: &Lead,
    incoming: &Lead,
    submission_id: LeadId,
    now: DateTime<Utc>,
) -> (Lead, Vec<Activity>) {
    let mut lead = existing.clone();
    lead.attribution.last_touch = incoming.attribution.last_touch.clone();
    lead.submissions = existing.submissions.saturating_add(1);
    lead.updated_at = now;

    let form = incoming.attribution.last_touch.form.clone();
    let at = incoming.created_at;
    let mut changes = held_changes(existing, incoming);
    let mut trail = Vec::new();
    let given_before = existing.consent.as_ref().is_some_and(|c| c.given);
    match &incoming.consent {
        Some(c) if c.given && !given_before => {
            trail.push(super::requested(existing.id, submission_id, at, form.clone(), c));
        }
        // Withdrawal goes through the unsubscribe link, which only the address's owner has.
        Some(c) if !c.given && given_before => {
            changes.insert("consent".into(), "no".into());
        }
        _ => {}
    }
    if !changes.is_empty() {
        trail.push(Activity {
            id: format!("changes-held-{submission_id}"),
            lead_id: existing.id,
            at,
            kind: ActivityKind::ChangesHeld { submission_id, form, changes },
        });
    }
    (lead, trail)
}

/// Each field the submission gave a value the lead does not have, by the name rules use.
fn held_changes(existing: &Lead, incoming: &Lead) -> BTreeMap<String, String> {
    let (old, new) = (&existing.contact, &incoming.contact);
    let fields = [
        ("first_name", &old.first_name, &new.first_name),
        ("last_name", &old.last_name, &new.last_name),
        ("phone", &old.phone, &new.phone),
        ("company", &old.company, &new.company),
        ("job_title", &old.job_title, &new.job_title),
        ("country", &old.country, &new.country),
        ("time_zone", &old.time_zone, &new.time_zone),
    ];
    let mut changes = BTreeMap::new();
    for (name, before, after) in fields {
        if let Some(value) = after
            && before.as_ref() != Some(value)
        {
            changes.insert(name.to_string(), value.clone());
        }
    }
    for (key, value) in &incoming.custom {
        if existing.custom.get(key) != Some(value) {
            changes.insert(format!("custom.{key}"), value.clone());
        }
    }
    changes
}
