//! Nurture campaigns: waits, send windows in the lead's own zone, entry, branches, the frequency
//! cap and the stop conditions of the drip state machine, driven by a clock passed in.

mod common;

use chrono::{DateTime, Datelike, Duration, Timelike, Utc, Weekday};
use common::{assignment, at, lead, lead_with, now};
use leadflow_core::campaign::{
    BranchIf, Campaign, CampaignStatus, CompiledCampaign, Control, Decision, Entry, Facts, FrequencyCap, Schedule,
    SendWindow, Step, StepKind, Wait,
};
use leadflow_core::error::FieldProblem;
use leadflow_core::model::{Enrollment, EnrollmentState, Lead, Lifecycle, SalesStatus, Validity};
use leadflow_core::rules::{Condition, Test};
use leadflow_core::zone::Zone;
use proptest::prelude::*;

fn send(id: &str, wait: Option<&str>) -> Step {
    Step {
        id: id.into(),
        kind: StepKind::Send,
        wait: wait.map(|w| Wait::parse(w).expect("a wait")),
        subject: Some(format!("Step {id}")),
        text: Some("Hi {{ lead.first_name }}".into()),
        html: Some("<p>Hi {{ lead.first_name }}</p>".into()),
        condition: None,
        then: None,
        otherwise: None,
    }
}

fn other(id: &str, kind: StepKind) -> Step {
    Step { kind, subject: None, text: None, html: None, ..send(id, None) }
}

fn campaign(waits: &[&str]) -> Campaign {
    Campaign {
        id: "welcome".into(),
        name: "Welcome series".into(),
        version: 3,
        status: CampaignStatus::Active,
        schedule: Schedule::default(),
        entry: Entry { lifecycle: Some(Lifecycle::Lead), requires_consent: true, ..Entry::default() },
        send_window: None,
        time_zone: "UTC".into(),
        stop_on: vec![leadflow_core::campaign::StopOn::Assigned, leadflow_core::campaign::StopOn::Contacted],
        steps: waits.iter().enumerate().map(|(i, w)| send(&format!("s{i}"), Some(w))).collect(),
    }
}

fn weekdays_9_to_5() -> SendWindow {
    SendWindow {
        days: vec![Weekday::Mon, Weekday::Tue, Weekday::Wed, Weekday::Thu, Weekday::Fri],
        start: chrono::NaiveTime::from_hms_opt(9, 0, 0).expect("09:00"),
        end: chrono::NaiveTime::from_hms_opt(17, 0, 0).expect("17:00"),
    }
}

fn compiled(c: &Campaign) -> CompiledCampaign {
    c.compile().unwrap_or_else(|e| panic!("campaign should compile: {e}"))
}

fn active() -> Control {
    Control { status: CampaignStatus::Active, schedule: Schedule::default() }
}

/// Runs the state machine the way the nurture stage does: at every due time, until `until`.
/// Answers the instants steps were sent, with their index.
fn run(
    c: &CompiledCampaign,
    lead: &Lead,
    enrolled: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Vec<(usize, DateTime<Utc>)> {
    let mut e = c.enroll(lead, enrolled);
    let mut sent = Vec::new();
    for _ in 0..100 {
        let Some(due) = e.next_due_at.filter(|d| *d <= until) else { break };
        let facts = Facts { marketing_sends: sent.iter().map(|(_, t)| *t).collect(), ..Facts::default() };
        match c.decide(&e, lead, &facts, active(), None, due) {
            Decision::Send { step, after } => {
                sent.push((step, due));
                e = after;
            }
            Decision::Wait(next) => {
                assert!(next.next_due_at > Some(due), "a wait moves forward");
                e = next;
            }
            Decision::Complete(_) | Decision::Stop(_) => break,
        }
    }
    sent
}

fn lead_in(zone: &str) -> Lead {
    lead_with(|l| {
        l.contact.time_zone = Some(zone.into());
        l.owner = None;
    })
}

// ---- waits ---------------------------------------------------------------------------------

#[test]
fn waits_are_a_number_and_a_unit_or_the_next_weekday() {
    for (text, want) in [
        ("0s", Duration::zero()),
        ("90m", Duration::minutes(90)),
        ("36h", Duration::hours(36)),
        ("2d", Duration::days(2)),
        ("1w", Duration::weeks(1)),
        ("366d", Duration::days(366)),
    ] {
        assert_eq!(Wait::parse(text), Ok(Wait::For(want)), "{text:?}");
    }
    assert_eq!(
        Wait::parse("next weekday at 10:00"),
        Ok(Wait::NextWeekdayAt(chrono::NaiveTime::from_hms_opt(10, 0, 0).expect("10:00")))
    );
    for bad in ["", "2", "d", "-1d", "2x", "367d", "next weekday at 25:00", "next weekday"] {
        assert!(Wait::parse(bad).is_err(), "{bad:?} should be refused");
    }
}

proptest! {
    #[test]
    fn every_wait_round_trips_through_text(secs in 0i64..=366 * 86_400, hour in 0u32..24, minute in 0u32..60) {
        let w = Wait::For(Duration::seconds(secs));
        let text = serde_json::to_string(&w).expect("serializes");
        prop_assert_eq!(serde_json::from_str::<Wait>(&text).expect("reads back"), w);
        let w = Wait::NextWeekdayAt(chrono::NaiveTime::from_hms_opt(hour, minute, 0).expect("a time"));
        let text = serde_json::to_string(&w).expect("serializes");
        prop_assert_eq!(serde_json::from_str::<Wait>(&text).expect("reads back"), w);
    }
}

#[test]
fn next_weekday_at_ten_is_local_to_the_lead_and_skips_the_weekend() {
    let w = Wait::parse("next weekday at 10:00").expect("a wait");
    let berlin: Zone = "Europe/Berlin".parse().expect("zone");
    // Friday 2025-01-10 15:00 in Berlin → Monday 13th 10:00 Berlin = 09:00 UTC.
    assert_eq!(w.after(at("2025-01-10T14:00:00Z"), &berlin), at("2025-01-13T09:00:00Z"));
    // Tuesday → Wednesday.
    assert_eq!(w.after(at("2025-01-07T08:00:00Z"), &berlin), at("2025-01-08T09:00:00Z"));
    let kolkata: Zone = "Asia/Kolkata".parse().expect("zone");
    // Monday 23:00 UTC is already Tuesday 04:30 in Kolkata → Wednesday 10:00 IST = 04:30 UTC.
    assert_eq!(w.after(at("2025-01-06T23:00:00Z"), &kolkata), at("2025-01-08T04:30:00Z"));
}

// ---- the clock-driven schedule the issue asks for -------------------------------------------

/// Three steps, two-day waits between them, weekdays 09:00–17:00 in the lead's zone.
fn three_steps_in_office_hours() -> CompiledCampaign {
    let mut c = campaign(&["0s", "2d", "2d"]);
    c.send_window = Some(weekdays_9_to_5());
    compiled(&c)
}

#[test]
fn each_step_goes_out_at_the_right_utc_instant_for_new_york_berlin_and_kolkata() {
    let c = three_steps_in_office_hours();
    // Monday 2025-03-03 12:00 UTC.
    let enrolled = at("2025-03-03T12:00:00Z");
    let until = at("2025-03-20T00:00:00Z");
    let cases = [
        // New York (EST, UTC-5): 07:00 local, before the window → 09:00 EST = 14:00 UTC. +2d is
        // Wednesday 14:00 UTC = 09:00 local, inside. +2d is Friday 14:00 UTC.
        ("America/New_York", ["2025-03-03T14:00:00Z", "2025-03-05T14:00:00Z", "2025-03-07T14:00:00Z"]),
        // Berlin (CET, UTC+1): 13:00 local, inside → at once; Wednesday and Friday 12:00 UTC.
        ("Europe/Berlin", ["2025-03-03T12:00:00Z", "2025-03-05T12:00:00Z", "2025-03-07T12:00:00Z"]),
        // Kolkata (UTC+5:30): 17:30 local, just closed → Tuesday 09:00 IST = 03:30 UTC; then
        // Thursday 03:30 UTC (09:00 IST); then Saturday → Monday 10th 09:00 IST.
        ("Asia/Kolkata", ["2025-03-04T03:30:00Z", "2025-03-06T03:30:00Z", "2025-03-10T03:30:00Z"]),
    ];
    for (zone, want) in cases {
        let sent = run(&c, &lead_in(zone), enrolled, until);
        let got: Vec<_> = sent.iter().map(|(_, t)| *t).collect();
        let want: Vec<_> = want.iter().map(|w| at(w)).collect();
        assert_eq!(got, want, "{zone}");
        assert_eq!(sent.iter().map(|(i, _)| *i).collect::<Vec<_>>(), vec![0, 1, 2], "{zone}: in order");
    }
}

#[test]
fn the_window_follows_daylight_saving_changes() {
    let c = three_steps_in_office_hours();
    // The US moves to EDT on Sunday 2025-03-09; Europe on 2025-03-30. Enrolled Friday 7 March
    // 20:00 UTC: New York 15:00 EST, inside → at once; +2d = Sunday → Monday 10th 09:00 EDT =
    // 13:00 UTC (an hour earlier in UTC than the week before); +2d = Wednesday 12th 13:00 UTC.
    let sent = run(&c, &lead_in("America/New_York"), at("2025-03-07T20:00:00Z"), at("2025-04-01T00:00:00Z"));
    let got: Vec<_> = sent.iter().map(|(_, t)| *t).collect();
    assert_eq!(got, vec![at("2025-03-07T20:00:00Z"), at("2025-03-10T13:00:00Z"), at("2025-03-12T13:00:00Z")]);
    // Berlin across its change: enrolled Friday 28 March 17:30 UTC = 18:30 CET, closed →
    // Monday 31st 09:00 CEST = 07:00 UTC.
    let sent = run(&c, &lead_in("Europe/Berlin"), at("2025-03-28T17:30:00Z"), at("2025-04-10T00:00:00Z"));
    assert_eq!(sent[0].1, at("2025-03-31T07:00:00Z"));
    for (_, t) in &sent {
        let local = "Europe/Berlin".parse::<Zone>().ok().and_then(|z| z.wall_clock(*t)).expect("a wall clock");
        assert!((9..17).contains(&local.hour()), "{local} is inside 09–17 local");
        assert!(local.weekday().num_days_from_monday() < 5, "{local} is a weekday");
    }
}

#[test]
fn a_lead_enrolled_on_friday_evening_gets_the_first_step_on_monday_morning_local_time() {
    let c = three_steps_in_office_hours();
    for (zone, friday_evening, monday_nine) in [
        ("America/New_York", "2025-01-10T23:00:00Z", "2025-01-13T14:00:00Z"),
        ("Europe/Berlin", "2025-01-10T18:00:00Z", "2025-01-13T08:00:00Z"),
        ("Asia/Kolkata", "2025-01-10T14:00:00Z", "2025-01-13T03:30:00Z"),
    ] {
        let sent = run(&c, &lead_in(zone), at(friday_evening), at("2025-01-14T00:00:00Z"));
        assert_eq!(sent.first().map(|s| s.1), Some(at(monday_nine)), "{zone}");
    }
}

#[test]
fn without_a_time_zone_the_country_then_the_phone_then_the_campaign_decide() {
    let mut c = campaign(&["0s"]);
    c.send_window = Some(weekdays_9_to_5());
    c.time_zone = "Asia/Tokyo".into();
    let c = compiled(&c);
    let no_zone = |change: fn(&mut Lead)| {
        lead_with(|l| {
            l.contact.time_zone = None;
            l.contact.country = None;
            l.contact.phone = None;
            l.contact.phone_country = None;
            l.owner = None;
            change(l);
        })
    };
    let by_country = no_zone(|l| l.contact.country = Some("IN".into()));
    // Validation reads the number's region once (see `read_phone`); nurture uses what it kept.
    let by_phone = no_zone(|l| {
        l.contact.phone = Some("+14155550123".into());
        l.contact.phone_country = Some("US".into());
    });
    let by_default = no_zone(|_| {});
    assert_eq!(c.zone_of(&by_country), "Asia/Kolkata".parse::<Zone>().expect("zone"));
    assert_eq!(c.zone_of(&by_phone), "America/New_York".parse::<Zone>().expect("zone"));
    assert_eq!(c.zone_of(&by_default), "Asia/Tokyo".parse::<Zone>().expect("zone"));
}

proptest! {
    /// Whatever the zone and the moment of enrollment, every send falls inside the window, local.
    #[test]
    fn sends_always_fall_inside_the_local_window(
        zone in prop::sample::select(vec!["America/New_York", "Europe/Berlin", "Asia/Kolkata", "Australia/Sydney", "Pacific/Auckland", "America/Los_Angeles"]),
        offset_minutes in 0i64..(366 * 24 * 60),
    ) {
        let c = three_steps_in_office_hours();
        let enrolled = at("2025-01-01T00:00:00Z") + Duration::minutes(offset_minutes);
        let tz: Zone = zone.parse().expect("zone");
        let sent = run(&c, &lead_in(zone), enrolled, enrolled + Duration::days(30));
        prop_assert_eq!(sent.len(), 3);
        for (_, t) in sent {
            let local = tz.wall_clock(t).expect("a wall clock");
            prop_assert!((9..17).contains(&local.hour()), "{} outside the window", local);
            prop_assert!(local.weekday().num_days_from_monday() < 5, "{} on a weekend", local);
        }
    }
}

// ---- branches, exits, the cap, pause and schedule -------------------------------------------

fn branching(test: BranchIf) -> CompiledCampaign {
    let mut c = campaign(&["0s"]);
    let mut branch = other("check", StepKind::Branch);
    branch.wait = Some(Wait::parse("1d").expect("wait"));
    branch.condition = Some(test);
    branch.then = Some("engaged".into());
    branch.otherwise = Some("nudge".into());
    let mut exit = other("stop", StepKind::Exit);
    exit.wait = None;
    c.steps = vec![send("hello", None), branch, send("nudge", None), exit, send("engaged", None)];
    compiled(&c)
}

#[test]
fn a_branch_on_an_opened_step_takes_the_right_path_and_exit_ends_it() {
    let c = branching(BranchIf { opened: Some("hello".into()), ..BranchIf::default() });
    let l = lead_in("UTC");
    let t0 = now();
    let e = c.enroll(&l, t0);
    let Decision::Send { step: 0, after } = c.decide(&e, &l, &Facts::default(), active(), None, t0) else {
        panic!("hello goes out first")
    };
    let day = t0 + Duration::days(1);
    assert_eq!(after.next_due_at, Some(day), "the branch waits a day");
    let opened = Facts { opened: ["hello".to_string()].into(), ..Facts::default() };
    let Decision::Send { step, .. } = c.decide(&after, &l, &opened, active(), None, day) else { panic!("a send") };
    assert_eq!(c.campaign.steps[step].id, "engaged");
    let Decision::Send { step, after: nudged } = c.decide(&after, &l, &Facts::default(), active(), None, day) else {
        panic!("a send")
    };
    assert_eq!(c.campaign.steps[step].id, "nudge");
    assert!(matches!(c.decide(&nudged, &l, &Facts::default(), active(), None, day), Decision::Complete(_)), "exit");
}

#[test]
fn branches_on_clicks_score_and_fields() {
    let l = lead_in("UTC");
    let e = |c: &CompiledCampaign| {
        let mut e = c.enroll(&l, now());
        e.next_step = 1;
        e.next_due_at = Some(now());
        e
    };
    let pick =
        |c: &CompiledCampaign, facts: &Facts, lead: &Lead| match c.decide(&e(c), lead, facts, active(), None, now()) {
            Decision::Send { step, .. } => c.campaign.steps[step].id.clone(),
            other => panic!("{other:?}"),
        };
    let clicked = branching(BranchIf { clicked: Some("hello".into()), ..BranchIf::default() });
    assert_eq!(pick(&clicked, &Facts { opened: ["hello".into()].into(), ..Facts::default() }, &l), "nudge");
    assert_eq!(pick(&clicked, &Facts { clicked: ["hello".into()].into(), ..Facts::default() }, &l), "engaged");
    let score = branching(BranchIf { score_above: Some(10.0), ..BranchIf::default() });
    let scored = lead_with(|x| {
        x.owner = None;
        x.score = Some(leadflow_core::model::Score {
            total: 12.0,
            fit: 12.0,
            behaviour: 0.0,
            grade: leadflow_core::model::Grade::C,
            reasons: vec![],
            computed_at: now(),
        });
    });
    let low = lead_with(|x| {
        x.owner = None;
        x.score = None;
    });
    assert_eq!(pick(&score, &Facts::default(), &scored), "engaged");
    assert_eq!(pick(&score, &Facts::default(), &low), "nudge");
    let field = branching(BranchIf {
        field: Some(Condition { field: "country".into(), test: Test::Equals("DE".into()) }),
        ..BranchIf::default()
    });
    assert_eq!(pick(&field, &Facts::default(), &lead_with(|x| x.contact.country = Some("DE".into()))), "engaged");
    assert_eq!(pick(&field, &Facts::default(), &lead_with(|x| x.contact.country = Some("FR".into()))), "nudge");
}

#[test]
fn the_frequency_cap_counts_sends_of_every_campaign() {
    let c = compiled(&campaign(&["0s"]));
    let l = lead_in("UTC");
    let t = now();
    let e = c.enroll(&l, t);
    let cap = FrequencyCap { max: 2, per: Wait::parse("1d").expect("wait") };
    let facts = Facts { marketing_sends: vec![t - Duration::hours(20), t - Duration::hours(2)], ..Facts::default() };
    match c.decide(&e, &l, &facts, active(), Some(cap), t) {
        Decision::Wait(later) => assert_eq!(later.next_due_at, Some(t + Duration::hours(4)), "when the older ages out"),
        other => panic!("{other:?}"),
    }
    let one = Facts { marketing_sends: vec![t - Duration::hours(2)], ..Facts::default() };
    assert!(matches!(c.decide(&e, &l, &one, active(), Some(cap), t), Decision::Send { .. }));
}

#[test]
fn pause_and_schedule_apply_to_every_enrolled_lead() {
    let c = compiled(&campaign(&["0s"]));
    let l = lead_in("UTC");
    let t = now();
    let e = c.enroll(&l, t);
    let paused = Control { status: CampaignStatus::Paused, schedule: Schedule::default() };
    let Decision::Wait(later) = c.decide(&e, &l, &Facts::default(), paused, None, t) else { panic!("paused waits") };
    assert!(later.next_due_at > Some(t) && later.next_step == 0, "keeps its place");
    let start = t + Duration::days(3);
    let not_yet = Control { status: CampaignStatus::Active, schedule: Schedule { start: Some(start), end: None } };
    let Decision::Wait(later) = c.decide(&e, &l, &Facts::default(), not_yet, None, t) else { panic!("waits") };
    assert_eq!(later.next_due_at, Some(start));
    let over = Control { status: CampaignStatus::Active, schedule: Schedule { start: None, end: Some(t) } };
    assert_eq!(c.decide(&e, &l, &Facts::default(), over, None, t), Decision::Stop("campaign ended".into()));
}

// ---- stop conditions ------------------------------------------------------------------------

#[test]
fn enrollments_stop_for_suppression_won_lost_erased_contacted_assigned_and_invalid_leads() {
    let c = compiled(&campaign(&["0s", "1d"]));
    let fresh = lead_in("UTC");
    let e = c.enroll(&fresh, now());
    let stop = |l: &Lead, f: &Facts| match c.decide(&e, l, f, active(), None, now()) {
        Decision::Stop(reason) => Some(reason),
        _ => None,
    };
    assert_eq!(stop(&fresh, &Facts::default()), None);
    let suppressed = Facts { suppressed: Some("unsubscribed".into()), ..Facts::default() };
    assert!(stop(&fresh, &suppressed).is_some_and(|r| r.contains("unsubscribed")));
    let with = |f: fn(&mut Lead)| {
        let mut l = fresh.clone();
        f(&mut l);
        l
    };
    assert_eq!(stop(&with(|l| l.status = SalesStatus::Won), &Facts::default()).as_deref(), Some("lead was won"));
    assert_eq!(stop(&with(|l| l.status = SalesStatus::Lost), &Facts::default()).as_deref(), Some("lead was lost"));
    assert_eq!(stop(&with(|l| l.contact.email.clear()), &Facts::default()).as_deref(), Some("lead was erased"));
    assert!(stop(&with(|l| l.status = SalesStatus::Contacted), &Facts::default()).is_some());
    assert!(stop(&with(|l| l.owner = Some(assignment("anna"))), &Facts::default()).is_some());
    let invalid = with(|l| l.validity = Validity::Invalid { reasons: vec![FieldProblem::new("email", "x", "y")] });
    assert!(stop(&invalid, &Facts::default()).is_some());
    // A campaign may go on after the rep's first touch when it says so.
    let mut keep = campaign(&["0s"]);
    keep.stop_on = vec![];
    let keep = compiled(&keep);
    let contacted = with(|l| l.status = SalesStatus::Contacted);
    assert!(matches!(keep.decide(&e, &contacted, &Facts::default(), active(), None, now()), Decision::Send { .. }));
}

#[test]
fn a_campaign_admits_only_leads_it_was_written_for() {
    let c = compiled(&campaign(&["0s"]));
    let consenting = lead_in("UTC");
    assert!(c.admits(&consenting, now()));
    assert!(!c.admits(&lead_with(|l| l.consent = None), now()), "consent required");
    assert!(!c.admits(
        &lead_with(|l| {
            l.owner = None;
            l.lifecycle = Lifecycle::Mql;
        }),
        now()
    ));
    let mut by_source = campaign(&["0s"]);
    by_source.entry.sources = vec!["newsletter".into()];
    let by_source = compiled(&by_source);
    let from_newsletter = lead_with(|l| {
        l.owner = None;
        l.attribution.first_touch.utm.source = Some("newsletter".into());
    });
    assert!(by_source.admits(&from_newsletter, now()));
    assert!(
        !by_source.admits(&lead_with(|l| l.owner = None), now())
            || lead().attribution.first_touch.utm.source.as_deref() == Some("newsletter")
    );
    let ended = compiled(&Campaign { schedule: Schedule { start: None, end: Some(now()) }, ..campaign(&["0s"]) });
    assert!(!ended.admits(&consenting, now()), "an ended campaign takes nobody");
    let paused = compiled(&Campaign { status: CampaignStatus::Paused, ..campaign(&["0s"]) });
    assert!(!paused.admits(&consenting, now()));
}

// ---- validation: errors name the field ------------------------------------------------------

#[test]
fn invalid_campaigns_are_refused_naming_the_field() {
    let err = |c: Campaign| c.compile().expect_err("refused").to_string();
    assert!(err(Campaign { steps: vec![], ..campaign(&["0s"]) }).contains("steps"));
    assert!(err(Campaign { id: "no spaces".into(), ..campaign(&["0s"]) }).starts_with("id"));
    assert!(err(Campaign { time_zone: "Mars/Olympus".into(), ..campaign(&["0s"]) }).contains("time_zone"));
    let mut c = campaign(&["0s"]);
    c.send_window = Some(SendWindow { end: weekdays_9_to_5().start, ..weekdays_9_to_5() });
    assert!(err(c).contains("send_window.end"));
    let mut c = campaign(&["0s", "1d"]);
    c.steps[1].subject = None;
    assert!(err(c).contains("steps[1].subject"));
    let mut c = campaign(&["0s", "1d"]);
    c.steps[1].id = "s0".into();
    assert!(err(c).contains("steps[1].id"));
    let mut c = campaign(&["0s"]);
    let mut back = other("back", StepKind::Branch);
    back.condition = Some(BranchIf { opened: Some("s0".into()), ..BranchIf::default() });
    back.then = Some("s0".into());
    c.steps.push(back);
    assert!(err(c).contains("steps[1].then"), "branches go forward, so no loops");
    let mut c = campaign(&["0s"]);
    c.steps[0].text = Some("{% if %}".into());
    assert!(err(c).contains("steps[0].text"));
}

#[test]
fn campaigns_read_from_yaml_json_and_toml() {
    let yaml = r#"
id: spring
name: Spring promo
send_window: { days: [mon, tue, wed, thu, fri], start: "09:00", end: "17:00" }
time_zone: America/New_York
entry: { lifecycle: lead, sources: [newsletter] }
steps:
  - { id: hello, subject: "Hi {{ lead.first_name }}", text: "Hi", html: "<p>Hi</p>" }
  - { id: check, type: branch, wait: "next weekday at 10:00", if: { opened: hello }, then: more }
  - { id: bye, type: exit }
  - { id: more, wait: 2d, subject: More, text: More, html: "<p>More</p>" }
"#;
    let c = Campaign::parse(yaml, "yaml").expect("yaml parses");
    let compiled = c.compile().expect("compiles");
    assert_eq!(compiled.campaign.steps.len(), 4);
    let json = serde_json::to_string(&c).expect("json");
    assert_eq!(Campaign::parse(&json, "json").expect("json parses"), c);
    assert!(Campaign::parse("id: x\nname: y\nsteps: []\nbogus: 1\n", "yaml").is_err(), "unknown fields refused");
    let example = include_str!("../../../docs/examples/campaign.yaml");
    Campaign::parse(example, "yaml").expect("the README's example parses").compile().expect("and compiles");
    let sample = include_str!("../../app/config/campaigns/welcome.toml");
    Campaign::parse(sample, "toml").expect("the sample parses").compile().expect("the sample compiles");
}

#[test]
fn email_keys_name_the_campaign_version_and_step() {
    let c = compiled(&campaign(&["0s", "1d"]));
    let l = lead_in("UTC");
    assert_eq!(c.email_key(&l, 1), format!("drip-{}-welcome-v3-s1", l.id));
    let e: Enrollment = c.enroll(&l, now());
    assert_eq!((e.campaign_version, e.state.clone()), (3, EnrollmentState::Active));
}

#[test]
fn a_migration_continues_at_the_step_of_the_same_id_when_there_is_one() {
    let v3 = compiled(&campaign(&["0s", "1d", "1d"])); // steps s0, s1, s2
    let mut next = campaign(&["0s", "1d", "1d"]);
    next.version = 4;
    next.steps.remove(0); // s1, s2
    next.steps.push(send("s9", Some("2d")));
    let v4 = compiled(&next);
    let l = lead_in("UTC");
    let mut e = v3.enroll(&l, now());
    e.next_step = 2;
    let moved = v4.migrate(&e, &v3).expect("s2 exists in v4");
    assert_eq!((moved.campaign_version, moved.next_step, moved.next_due_at), (4, 1, e.next_due_at));
    e.next_step = 0;
    assert_eq!(v4.migrate(&e, &v3), None, "s0 is gone: the lead finishes v3");
    let ended = leadflow_core::campaign::stopped(&e, "won");
    assert_eq!(v4.migrate(&ended, &v3), None, "ended enrollments stay as they are");
}
