//! A lead item: its document packed, its first trail entries inside it, and what a write of it
//! is billed by.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use leadflow_core::erasure::tombstone;
use leadflow_core::model::{
    Activity, ActivityKind, Grade, Lead, Lifecycle, SalesStatus, Score, ScoreReason, ScoreRuleKind,
};
use leadflow_core::ports::{AssignOutcome, AssignmentWrite, CreateOutcome, WriteOutcome};
use leadflow_core::ports::{Assignments, Leads, Trails};

use super::common::{id, lead, owned_by, t, table};
use super::item;

/// A lead as full as the sample configuration makes one: phone, company, title, the seven
/// reasons of the sample's scoring and a routing explanation of three sentences.
fn full_lead() -> Lead {
    let mut before = owned_by(lead(1, "ada.lovelace@analytical-engines.example"), "rep-1");
    before.contact.company = Some("Analytical Engines Ltd".into());
    before.contact.job_title = Some("Head of Computing".into());
    before.contact.phone = Some("+442079460000".into());
    let reasons = [
        ("corporate_email", 15.0, "Writes from a company address (domain_kind is corporate)"),
        (
            "senior_title",
            20.0,
            "Decision-maker title (job_title contains chief or vp or vice president or head of or director or founder or co-founder or cto or ceo or cfo or coo or cmo)",
        ),
        ("company_given", 5.0, "Named a company (company is given)"),
        ("phone_given", 5.0, "Left a valid phone number (phone is given)"),
        (
            "target_country",
            10.0,
            "In a market we sell to (country is one of us, ca, gb, de, at, ch, fr, nl, se, dk, no, ie)",
        ),
        ("paid_campaign", 5.0, "Came from a paid campaign (utm_medium is one of cpc, ppc, paid, paid_social)"),
        ("form_submissions", 10.0, "Submitted a form (1 × form_submission, 10 points each, half-life 14 days)"),
    ];
    before.score = Some(Score {
        total: 70.0,
        fit: 60.0,
        behaviour: 10.0,
        grade: Grade::A,
        reasons: reasons
            .iter()
            .map(|(rule, points, why)| ScoreReason {
                rule: (*rule).into(),
                kind: if *rule == "form_submissions" { ScoreRuleKind::Behaviour } else { ScoreRuleKind::Fit },
                points: *points,
                explanation: (*why).into(),
            })
            .collect(),
        computed_at: t(5),
    });
    if let Some(owner) = before.owner.as_mut() {
        owner.explanation = vec![
            "Team EMEA matched: country is one of de, at, ch, fr, nl, gb, ie, se, dk, no, es, it, pl.".into(),
            "Skipped Anna Schmidt: outside working hours.".into(),
            "Ben Okafor is next in the team's weighted round-robin (weight 1 of 1 available rep).".into(),
        ];
    }
    before
}

/// A lead item's size by DynamoDB's rules, rounded up (a number counted as its text): what a
/// write of it is billed by.
fn billed_size(item: &HashMap<String, AttributeValue>) -> usize {
    let value = |v: &AttributeValue| match v {
        AttributeValue::S(s) | AttributeValue::N(s) => s.len(),
        AttributeValue::B(b) => b.as_ref().len(),
        _ => 1,
    };
    item.iter().map(|(name, v)| name.len() + value(v)).sum()
}

/// A lead as an earlier version wrote it (its document as JSON text) reads as it did, and its next
/// write packs it: a binary document, and an item under 1 KB (one write unit) even with the seven
/// reasons of the sample's scoring and a routing explanation, where the text alone was over 2 KB
/// (three units).
#[tokio::test]
async fn a_lead_kept_as_json_text_reads_and_its_next_write_packs_it_under_1_kb() {
    let db = table().await;
    let before = full_lead();
    let text = serde_json::to_string(&before).expect("json");
    assert!(text.len() > 2048, "the lead as text: {} bytes", text.len());
    db.client
        .put_item()
        .table_name(&db.name)
        .item("PK", AttributeValue::S(format!("LEAD#{}", id(1))))
        .item("SK", AttributeValue::S("PROFILE".into()))
        .item("doc", AttributeValue::S(text.clone()))
        .item("version", AttributeValue::N("0".into()))
        .send()
        .await
        .expect("the old lead item");
    let read = db.store.get_lead(id(1)).await.expect("get").expect("the old lead");
    assert_eq!(read, before);

    let mut contacted = read.clone();
    contacted.status = SalesStatus::Contacted;
    assert_eq!(db.store.update_lead(&contacted, read.version, &[]).await.expect("update"), WriteOutcome::Written);
    let stored = item(&db, format!("LEAD#{}", id(1)), "PROFILE").await;
    assert!(matches!(stored.get("doc"), Some(AttributeValue::B(_))), "the document is packed");
    let size = billed_size(&stored);
    println!("the lead: {} bytes of JSON text; its item packed: {size} bytes", text.len());
    assert!(size <= 1024, "a lead item is {size} bytes: over one write unit");
    let after = db.store.get_lead(id(1)).await.expect("get").expect("the lead");
    assert_eq!(after, Lead { version: read.version + 1, ..contacted });
}

fn entry(n: i64, id: &str, kind: ActivityKind) -> Activity {
    Activity { id: id.into(), lead_id: super::id(1), at: t(n), kind }
}

/// Through the pipeline's writes (validate's create, score's rescore, route's assignment) a full
/// lead keeps its entries inside its item and stays under 1 KB, one write unit; later writes
/// keep theirs in items of their own; the trail reads as one, oldest first, and
/// an erasure takes both.
#[tokio::test]
async fn a_leads_first_entries_live_in_its_item_and_later_ones_beside_it() {
    let db = table().await;
    let store = &db.store;
    let full = full_lead();
    // Double opt-in: the consent waits in the trail (with the form's wording) until confirmed.
    let new = Lead { owner: None, score: None, status: SalesStatus::New, consent: None, ..full.clone() };
    let validated = [
        entry(0, "submission-1", ActivityKind::FormSubmission { submission_id: id(1), form: Some("demo".into()) }),
        entry(
            0,
            "consent-requested-1",
            ActivityKind::ConsentRequested {
                submission_id: id(1),
                form: Some("demo".into()),
                purpose: "marketing".into(),
                wording: Some(
                    "Yes, send me product news and event invitations by email. I can unsubscribe at any time.".into(),
                ),
            },
        ),
    ];
    assert_eq!(store.create_lead(&new, &validated).await.ok(), Some(CreateOutcome::Created));

    let scored = Lead { score: full.score.clone(), lifecycle: Lifecycle::Mql, version: 1, ..new.clone() };
    let score_entries = [
        entry(1, "scored-1", ActivityKind::Scored { total: 70.0, grade: Grade::A }),
        entry(1, "stage-mql", ActivityKind::StageChanged { from: Lifecycle::Lead, to: Lifecycle::Mql }),
    ];
    assert_eq!(store.update_lead(&scored, 0, &score_entries).await.ok(), Some(WriteOutcome::Written));

    let owner = full.owner.clone().unwrap_or_else(|| panic!("the full lead is owned"));
    let assigned_entry = entry(
        2,
        "assigned-rep-1-2000",
        ActivityKind::Assigned {
            rep_id: owner.rep_id.clone(),
            team_id: owner.team_id.clone(),
            explanation: owner.explanation.clone(),
        },
    );
    let write = AssignmentWrite {
        lead: Lead { owner: Some(owner), version: 2, ..scored.clone() },
        expected_lead_version: 1,
        team_cursor: None,
        trail: vec![assigned_entry],
        claim: None,
    };
    assert_eq!(store.assign(&write).await.ok(), Some(AssignOutcome::Assigned));
    let stored = item(&db, format!("LEAD#{}", id(1)), "PROFILE").await;
    let inside = stored.keys().filter(|name| name.starts_with("a#")).count();
    let size = billed_size(&stored);
    println!("a full lead after the pipeline's writes: {size} bytes with {inside} entries inside");
    assert_eq!(inside, 5, "every entry of the first three writes is in the item");
    assert!(size <= 1024, "the lead item is {size} bytes: over one write unit");

    // Version 3 and later keep their entries beside the item, which stays as it was.
    let contacted = Lead { status: SalesStatus::Contacted, version: 3, ..write.lead.clone() };
    let changed = entry(
        10,
        "status-contacted",
        ActivityKind::StatusChanged {
            from: SalesStatus::New,
            to: SalesStatus::Contacted,
            by: Some("rep-1".into()),
            note: Some("Called, a demo is booked for next week.".into()),
        },
    );
    assert_eq!(store.update_lead(&contacted, 2, &[changed]).await.ok(), Some(WriteOutcome::Written));
    let stored = item(&db, format!("LEAD#{}", id(1)), "PROFILE").await;
    assert_eq!(stored.keys().filter(|name| name.starts_with("a#")).count(), 5);
    let beside = item(&db, format!("LEAD#{}", id(1)), "ACT#status-contacted").await;
    assert!(beside.contains_key("doc"));
    // Back to a lead and up again: the same stage change a later write tells replaces score's.
    let back = Lead { lifecycle: Lifecycle::Lead, version: 4, ..contacted.clone() };
    let down = entry(11, "stage-lead", ActivityKind::StageChanged { from: Lifecycle::Mql, to: Lifecycle::Lead });
    assert_eq!(store.update_lead(&back, 3, &[down]).await.ok(), Some(WriteOutcome::Written));
    let again = Lead { lifecycle: Lifecycle::Mql, version: 5, ..back.clone() };
    let up = entry(12, "stage-mql", ActivityKind::StageChanged { from: Lifecycle::Lead, to: Lifecycle::Mql });
    assert_eq!(store.update_lead(&again, 4, &[up]).await.ok(), Some(WriteOutcome::Written));
    // An event recorded on its own, at a time between the others.
    store.record_activity(&entry(5, "opened-1", ActivityKind::EmailDelivered { message_id: "m-1".into() })).await.ok();

    let trail: Vec<String> = store.activities(id(1)).await.unwrap_or_default().into_iter().map(|a| a.id).collect();
    assert_eq!(
        trail,
        [
            "consent-requested-1",
            "submission-1",
            "scored-1",
            "assigned-rep-1-2000",
            "opened-1",
            "status-contacted",
            "stage-lead",
            "stage-mql"
        ],
        "one trail, oldest first, the stage change told once, by its later write"
    );
    let read = store.get_lead(id(1)).await.ok().flatten();
    assert_eq!(read.map(|l| (l.version, l.status, l.lifecycle)), Some((5, SalesStatus::Contacted, Lifecycle::Mql)));

    assert!(store.erase_lead(&tombstone(&again, t(20)), None).await.is_ok());
    assert_eq!(store.activities(id(1)).await.ok(), Some(Vec::new()), "erasure takes the entries inside and beside");
}
