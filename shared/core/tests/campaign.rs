//! Nurture campaigns: waits, entry, the drip state machine and its stop conditions.

mod common;

use chrono::Duration;
use common::{assignment, lead, lead_with, now};
use leadflow_core::campaign::{Campaign, CampaignStatus, CompiledCampaign, Entry, Step, Wait, stop_reason, stopped};
use leadflow_core::error::FieldProblem;
use leadflow_core::model::{EnrollmentState, Lifecycle, SalesStatus, Validity};
use leadflow_core::rules::{Condition, Test};
use proptest::prelude::*;

fn step(id: &str, wait: &str) -> Step {
    Step {
        id: id.into(),
        wait: Wait::parse(wait).expect("a wait"),
        subject: format!("Step {id}"),
        text: "Hi {{ lead.first_name }}".into(),
        html: "<p>Hi {{ lead.first_name }}</p>".into(),
    }
}

fn campaign(waits: &[&str]) -> Campaign {
    Campaign {
        id: "welcome".into(),
        name: "Welcome series".into(),
        version: 3,
        status: CampaignStatus::Active,
        entry: Entry { lifecycle: Some(Lifecycle::Lead), requires_consent: true, when: vec![] },
        steps: waits.iter().enumerate().map(|(i, w)| step(&format!("s{i}"), w)).collect(),
    }
}

fn compiled(c: &Campaign) -> CompiledCampaign {
    c.compile().unwrap_or_else(|e| panic!("campaign should compile: {e}"))
}

// ---- waits ---------------------------------------------------------------------------------

#[test]
fn waits_are_a_number_and_a_unit() {
    for (text, want) in [
        ("0s", Duration::zero()),
        ("45s", Duration::seconds(45)),
        ("90m", Duration::minutes(90)),
        ("36h", Duration::hours(36)),
        ("2d", Duration::days(2)),
        ("1w", Duration::weeks(1)),
        (" 3d ", Duration::days(3)),
        ("366d", Duration::days(366)),
        ("52w", Duration::weeks(52)),
    ] {
        assert_eq!(Wait::parse(text), Ok(Wait(want)), "{text:?}");
    }
}

#[test]
fn waits_that_are_not_waits_are_refused() {
    for text in ["2x", "", "d", "-1d", "+1d", "1.5d", "2 days", "367d", "53w", "8785h", "99999999999999999999d", "１d"]
    {
        assert!(Wait::parse(text).is_err(), "{text:?} should be refused");
    }
    assert!(Wait::parse("367d").expect_err("too long").contains("longer than a year"));
    assert!(Wait::parse("2x").expect_err("bad unit").contains("unknown unit `x`"));
}

#[test]
fn waits_read_from_and_write_to_text() {
    let s: Step =
        toml::from_str("id = \"a\"\nwait = \"36h\"\nsubject = \"s\"\ntext = \"t\"\nhtml = \"h\"").expect("step");
    assert_eq!(s.wait, Wait(Duration::hours(36)));
    assert_eq!(serde_json::to_string(&s.wait).expect("json"), "\"129600s\"");
    let e = toml::from_str::<Step>("id = \"a\"\nwait = \"2x\"\nsubject = \"s\"\ntext = \"t\"\nhtml = \"h\"")
        .expect_err("bad wait");
    assert!(e.to_string().contains("unknown unit"), "{e}");
}

proptest! {
    #[test]
    fn every_wait_up_to_a_year_parses_and_round_trips(secs in 0i64..=366 * 86_400, unit in 0usize..5) {
        let (suffix, size) = [("s", 1), ("m", 60), ("h", 3600), ("d", 86_400), ("w", 604_800)][unit];
        let n = secs / size;
        let w = Wait::parse(&format!("{n}{suffix}")).expect("a wait within a year");
        prop_assert_eq!(w.0, Duration::seconds(n * size));
        let text = serde_json::to_string(&w).expect("json");
        prop_assert_eq!(serde_json::from_str::<Wait>(&text).expect("reads back"), w);
    }

    #[test]
    fn waits_over_a_year_are_refused(secs in 366 * 86_400 + 1i64..10_000_000_000) {
        let text = format!("{secs}s");
        prop_assert!(Wait::parse(&text).is_err(), "{} should be refused", text);
    }
}

// ---- the drip state machine ----------------------------------------------------------------

#[test]
fn enrolling_makes_the_first_step_due_after_its_wait() {
    let c = compiled(&campaign(&["1h", "2d", "36h"]));
    let l = lead();
    let e = c.enroll(&l, now());
    assert_eq!(e.lead_id, l.id);
    assert_eq!((e.campaign_id.as_str(), e.campaign_version), ("welcome", 3));
    assert_eq!(e.enrolled_at, now());
    assert_eq!(e.next_step, 0);
    assert_eq!(e.next_due_at, Some(now() + Duration::hours(1)));
    assert_eq!(e.state, EnrollmentState::Active);
    assert_eq!(compiled(&campaign(&["0s"])).enroll(&l, now()).next_due_at, Some(now()), "0s: due at once");
}

#[test]
fn advancing_counts_the_next_wait_from_when_the_step_was_sent() {
    let c = compiled(&campaign(&["0s", "2d", "36h"]));
    let e0 = c.enroll(&lead(), now());
    // Step 0 went out ten minutes late: step 1 is due two days after it was sent.
    let sent0 = now() + Duration::minutes(10);
    let e1 = c.advance(&e0, sent0);
    assert_eq!(e1.next_step, 1);
    assert_eq!(e1.next_due_at, Some(sent0 + Duration::days(2)));
    assert_eq!(e1.state, EnrollmentState::Active);
    let sent1 = sent0 + Duration::days(2);
    let e2 = c.advance(&e1, sent1);
    assert_eq!(e2.next_step, 2);
    assert_eq!(e2.next_due_at, Some(sent1 + Duration::hours(36)));
    // After the last step the enrollment is complete and nothing is due.
    let e3 = c.advance(&e2, sent1 + Duration::hours(36));
    assert_eq!(e3.next_due_at, None);
    assert_eq!(e3.state, EnrollmentState::Completed);
    assert_eq!((e3.lead_id, e3.enrolled_at, e3.campaign_version), (e0.lead_id, e0.enrolled_at, e0.campaign_version));
}

#[test]
fn a_one_step_campaign_completes_after_its_step() {
    let c = compiled(&campaign(&["1d"]));
    let e = c.advance(&c.enroll(&lead(), now()), now() + Duration::days(1));
    assert_eq!((e.next_due_at, e.state), (None, EnrollmentState::Completed));
}

proptest! {
    #[test]
    fn a_campaign_runs_its_steps_in_order_then_completes(
        waits in prop::collection::vec(0i64..=14 * 24 * 60, 1..8),
        delays in prop::collection::vec(0i64..600, 8),
    ) {
        let texts: Vec<String> = waits.iter().map(|m| format!("{m}m")).collect();
        let c = compiled(&campaign(&texts.iter().map(String::as_str).collect::<Vec<_>>()));
        let mut e = c.enroll(&lead(), now());
        let mut due = now() + Duration::minutes(waits[0]);
        for (i, delay) in delays.iter().enumerate().take(waits.len()) {
            prop_assert_eq!(e.next_step as usize, i);
            prop_assert_eq!(e.next_due_at, Some(due));
            prop_assert_eq!(&e.state, &EnrollmentState::Active);
            let sent = due + Duration::seconds(*delay);
            e = c.advance(&e, sent);
            if let Some(w) = waits.get(i + 1) {
                due = sent + Duration::minutes(*w);
            }
        }
        prop_assert_eq!(e.next_due_at, None);
        prop_assert_eq!(e.state, EnrollmentState::Completed);
    }
}

// ---- entry and stop conditions -------------------------------------------------------------

#[test]
fn a_campaign_admits_only_leads_it_was_written_for() {
    let mut plain = campaign(&["0s"]);
    plain.entry = Entry { lifecycle: None, requires_consent: false, when: vec![] };
    assert!(compiled(&plain).admits(&lead_with(|l| l.consent = None)));

    let c = compiled(&campaign(&["0s"]));
    assert!(c.admits(&lead()));
    assert!(!c.admits(&lead_with(|l| l.lifecycle = Lifecycle::Mql)), "the campaign is for stage lead");
    assert!(!c.admits(&lead_with(|l| l.consent = None)), "consent is required");
    assert!(!c.admits(&lead_with(|l| l.consent.as_mut().expect("consent").given = false)), "consent refused");
    let invalid = lead_with(|l| {
        l.validity = Validity::Invalid { reasons: vec![FieldProblem::new("email", "invalid", "not an address")] }
    });
    assert!(!c.admits(&invalid));

    let paused = compiled(&Campaign { status: CampaignStatus::Paused, ..campaign(&["0s"]) });
    assert!(!paused.admits(&lead()));

    let mut german = campaign(&["0s"]);
    german.entry.when = vec![
        Condition { field: "country".into(), test: Test::Equals("de".into()) },
        Condition { field: "domain_kind".into(), test: Test::Equals("corporate".into()) },
    ];
    let german = compiled(&german);
    assert!(german.admits(&lead()));
    assert!(!german.admits(&lead_with(|l| l.contact.country = Some("FR".into()))));
    assert!(!german.admits(&lead_with(|l| l.contact.domain_kind = leadflow_core::model::DomainKind::FreeMail)));
}

#[test]
fn a_lead_that_would_be_stopped_at_once_is_not_admitted() {
    let mut any_stage = campaign(&["0s"]);
    any_stage.entry.lifecycle = None;
    let c = compiled(&any_stage);
    assert!(c.admits(&lead()));
    assert!(!c.admits(&lead_with(|l| l.status = SalesStatus::Won)));
    assert!(!c.admits(&lead_with(|l| l.status = SalesStatus::Lost)));
    assert!(!c.admits(&lead_with(|l| l.owner = Some(assignment("anna")))));
    assert!(c.admits(&lead_with(|l| l.status = SalesStatus::Contacted)));
}

#[test]
fn enrollments_stop_for_won_lost_assigned_and_invalid_leads() {
    assert_eq!(stop_reason(&lead()), None);
    assert_eq!(stop_reason(&lead_with(|l| l.status = SalesStatus::Contacted)), None);
    assert_eq!(stop_reason(&lead_with(|l| l.status = SalesStatus::Won)), Some("lead was won"));
    assert_eq!(stop_reason(&lead_with(|l| l.status = SalesStatus::Lost)), Some("lead was lost"));
    assert_eq!(stop_reason(&lead_with(|l| l.owner = Some(assignment("anna")))), Some("lead was assigned to sales"));
    let invalid = lead_with(|l| {
        l.validity = Validity::Invalid { reasons: vec![FieldProblem::new("email", "invalid", "not an address")] };
        l.status = SalesStatus::Won;
    });
    assert_eq!(stop_reason(&invalid), Some("lead is invalid"), "invalid comes first");

    let c = compiled(&campaign(&["0s", "1d"]));
    let e = c.enroll(&lead(), now());
    let s = stopped(&e, "lead was won");
    assert_eq!(s.state, EnrollmentState::Stopped { reason: "lead was won".into() });
    assert_eq!(s.next_due_at, None);
    assert_eq!((s.next_step, s.campaign_id.as_str()), (e.next_step, "welcome"));
}

#[test]
fn campaigns_without_steps_or_with_bad_entry_rules_do_not_compile() {
    let e = campaign(&[]).compile().expect_err("no steps").to_string();
    assert!(e.contains("campaign welcome") && e.contains("no steps"), "{e}");
    let mut bad = campaign(&["0s"]);
    bad.entry.when = vec![Condition { field: "job_title".into(), test: Test::Regex("(".into()) }];
    assert!(bad.compile().expect_err("bad regex").to_string().contains("campaign welcome"));
}

#[test]
fn campaigns_read_from_toml() {
    let text = r#"
        id = "welcome"
        name = "Welcome series"
        version = 1

        [entry]
        lifecycle = "lead"
        when = [{ field = "country", in = ["DE", "AT"] }]

        [[steps]]
        id = "hello"
        wait = "0s"
        subject = "Welcome"
        text = "Hi"
        html = "<p>Hi</p>"

        [[steps]]
        id = "later"
        wait = "1w"
        subject = "Later"
        text = "Hi again"
        html = "<p>Hi again</p>"
    "#;
    let c: Campaign = toml::from_str(text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.status, CampaignStatus::Active, "campaigns are active unless paused");
    assert!(!c.entry.requires_consent);
    assert_eq!(c.steps[1].wait, Wait(Duration::weeks(1)));
    let c = compiled(&c);
    assert!(c.admits(&lead()));
    assert!(!c.admits(&lead_with(|l| l.contact.country = Some("US".into()))));
    let e = c.enroll(&lead(), now());
    assert_eq!(c.advance(&e, now()).next_due_at, Some(now() + Duration::weeks(1)));
}
