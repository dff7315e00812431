//! Routing: team matching, smooth weighted round-robin, availability in the rep's time zone,
//! fallback, explanations and configuration errors.

mod common;

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, NaiveTime, Utc, Weekday};
use common::{at, lead, lead_with, now};
use leadflow_core::error::ConfigError;
use leadflow_core::model::{Lead, RepId, TeamCursor};
use leadflow_core::routing::{
    Absence, CompiledRouting, Member, Rep, RoutingConfig, RoutingDecision, Team, Unavailable, WorkingHours,
    availability, weighted_pick,
};
use leadflow_core::rules::{Condition, Test};
use leadflow_core::zone::Zone;
use proptest::prelude::*;

const WEEKDAYS: [Weekday; 5] = [Weekday::Mon, Weekday::Tue, Weekday::Wed, Weekday::Thu, Weekday::Fri];

fn rep(id: &str, name: &str) -> Rep {
    Rep {
        id: id.into(),
        name: name.into(),
        email: format!("{id}@acme.example"),
        time_zone: "UTC".into(),
        working_hours: None,
        capacity: None,
        active: true,
        out_of_office: None,
    }
}

fn hours(days: &[Weekday], start: &str, end: &str) -> WorkingHours {
    let t = |s: &str| NaiveTime::parse_from_str(s, "%H:%M").expect("HH:MM");
    WorkingHours { days: days.to_vec(), start: t(start), end: t(end) }
}

fn team(id: &str, name: &str, when: Vec<Condition>, members: &[(&str, u32)]) -> Team {
    Team {
        id: id.into(),
        name: name.into(),
        when,
        members: members.iter().map(|(r, w)| Member { rep: (*r).into(), weight: *w }).collect(),
    }
}

fn country_in(codes: &[&str]) -> Vec<Condition> {
    vec![Condition { field: "country".into(), test: Test::In(codes.iter().map(|c| (*c).into()).collect()) }]
}

/// A routing config whose fallback owner is the sales desk, Dana Desk.
fn config(mut reps: Vec<Rep>, teams: Vec<Team>) -> RoutingConfig {
    reps.push(rep("desk", "Dana Desk"));
    RoutingConfig { fallback_owner: "desk".into(), sla_hours: 4.0, reps, teams }
}

fn compile(c: &RoutingConfig) -> CompiledRouting {
    c.compile().unwrap_or_else(|e| panic!("routing should compile: {e}"))
}

/// Reps `r0`, `r1`, … named `Rep 0`, `Rep 1`, … in one team that takes every lead.
fn one_team(weights: &[u32]) -> CompiledRouting {
    let reps = (0..weights.len()).map(|i| rep(&format!("r{i}"), &format!("Rep {i}"))).collect();
    let ids: Vec<String> = (0..weights.len()).map(|i| format!("r{i}")).collect();
    let members: Vec<(&str, u32)> = ids.iter().map(String::as_str).zip(weights.iter().copied()).collect();
    compile(&config(reps, vec![team("all", "Everyone", vec![], &members)]))
}

/// Decides like the route stage does: the cursor each decision returns is the one the next
/// decision reads.
fn decide(r: &CompiledRouting, lead: &Lead, cursor: &mut TeamCursor, loads: &BTreeMap<RepId, u32>) -> RoutingDecision {
    let d = r.decide(lead, cursor, loads, now());
    if let Some((_, next)) = &d.cursor {
        *cursor = next.clone();
    }
    d
}

fn pick_counts(weights: &[u32], n: usize) -> Vec<Vec<u32>> {
    let members: Vec<(RepId, u32)> = weights.iter().enumerate().map(|(i, w)| (format!("r{i}"), *w)).collect();
    let eligible = vec![true; weights.len()];
    let mut credit = BTreeMap::new();
    let mut counts = vec![0u32; weights.len()];
    let mut after_each = Vec::with_capacity(n);
    for _ in 0..n {
        let i = weighted_pick(&members, &eligible, &mut credit).expect("someone is eligible");
        counts[i] += 1;
        after_each.push(counts.clone());
    }
    after_each
}

fn utc(rfc3339: &str) -> DateTime<Utc> {
    at(rfc3339)
}

// ---- weighted round-robin ------------------------------------------------------------------

#[test]
fn weights_5_1_1_interleave_as_nginx_does() {
    let members: Vec<(RepId, u32)> = vec![("a".into(), 5), ("b".into(), 1), ("c".into(), 1)];
    let mut credit = BTreeMap::new();
    let order: String =
        (0..14).map(|_| ["a", "b", "c"][weighted_pick(&members, &[true; 3], &mut credit).expect("pick")]).collect();
    assert_eq!(order, "aabacaaaabacaa");
    assert!(credit.values().all(|c| *c == 0), "a full cycle returns every credit to zero: {credit:?}");
}

#[test]
fn smooth_weighted_round_robin_can_fall_more_than_one_lead_behind() {
    // The smallest counterexample to "within one of N·w/W": after 13 leads the weight-5 rep `r7`
    // has 3, its share being 13·5/16 = 4.06. Over a full cycle of 16 the counts are exact.
    let weights = [1, 1, 1, 1, 1, 1, 5, 5];
    let counts = pick_counts(&weights, 16);
    assert_eq!(counts[12], [1, 1, 1, 1, 1, 1, 4, 3]);
    assert!(13.0 * 5.0 / 16.0 - f64::from(counts[12][7]) > 1.0);
    assert_eq!(counts[15], weights);
}

#[test]
fn skipped_members_get_nothing_and_keep_their_credit() {
    let members: Vec<(RepId, u32)> = vec![("a".into(), 1), ("b".into(), 3), ("c".into(), 1)];
    let mut credit = BTreeMap::from([("b".to_string(), -2)]);
    let mut counts = [0; 3];
    for _ in 0..30 {
        counts[weighted_pick(&members, &[true, false, true], &mut credit).expect("pick")] += 1;
    }
    assert_eq!(counts, [15, 0, 15]);
    assert_eq!(credit.get("b"), Some(&-2), "an absent member neither gains nor pays");
    assert_eq!(weighted_pick(&members, &[false; 3], &mut credit), None);
    assert_eq!(weighted_pick(&[], &[], &mut credit), None);
}

proptest! {
    #[test]
    fn equal_weights_give_every_rep_within_one_of_an_even_share(k in 1usize..8, n in 0usize..500, w in 1u32..5) {
        let counts = pick_counts(&vec![w; k], n);
        let last = counts.last().cloned().unwrap_or(vec![0; k]);
        for c in &last {
            prop_assert!((f64::from(*c) - n as f64 / k as f64).abs() <= 1.0, "{:?} of {}", last, n);
        }
        prop_assert!(last.iter().max().unwrap_or(&0) - last.iter().min().unwrap_or(&0) <= 1);
    }

    #[test]
    fn decide_with_equal_weights_gives_every_rep_within_one_of_an_even_share(k in 1usize..8, n in 0usize..500) {
        let r = one_team(&vec![1; k]);
        let mut cursor = TeamCursor::default();
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for _ in 0..n {
            let d = decide(&r, &lead(), &mut cursor, &BTreeMap::new());
            prop_assert!(!d.via_fallback);
            *counts.entry(d.rep_id).or_default() += 1;
        }
        prop_assert!(counts.len() <= k);
        for i in 0..k {
            let c = counts.get(&format!("r{i}")).copied().unwrap_or(0);
            prop_assert!((c as f64 - n as f64 / k as f64).abs() <= 1.0, "{:?} of {}", counts, n);
        }
    }

    /// What smooth weighted round-robin guarantees. A rep's credit after `n` leads is
    /// `n·w − W·count`, and no credit ever falls to `−W` (the winner holds at least the average
    /// `W/k` before paying `W`): so no rep is ever a whole lead *ahead* of its share. Behind its
    /// share a rep can fall by more than one (see the test above); the worst seen in a wide
    /// search for up to 8 reps is 1.36 (the pattern fits H(k) − 1 = 1/2 + … + 1/k, 1.72 for 8),
    /// so it is held under 2. Over every full cycle of W leads the counts are exact.
    #[test]
    fn weighted_counts_stay_near_their_share(weights in prop::collection::vec(1u32..=10, 1..8), n in 0usize..500) {
        let w_total: u32 = weights.iter().sum();
        for (step, counts) in pick_counts(&weights, n).iter().enumerate() {
            let n = (step + 1) as f64;
            for (c, w) in counts.iter().zip(&weights) {
                let share = n * f64::from(*w) / f64::from(w_total);
                prop_assert!(f64::from(*c) - share < 1.0, "ahead: {:?} after {} with weights {:?}", counts, n, weights);
                prop_assert!(share - f64::from(*c) < 2.0, "behind: {:?} after {} with weights {:?}", counts, n, weights);
            }
            if (step + 1) % w_total as usize == 0 {
                let cycles = (step + 1) as u32 / w_total;
                let want: Vec<u32> = weights.iter().map(|w| w * cycles).collect();
                prop_assert_eq!(counts, &want);
            }
        }
    }

    #[test]
    fn decide_follows_the_weights(weights in prop::collection::vec(1u32..=6, 1..6), cycles in 1u32..4) {
        let r = one_team(&weights);
        let mut cursor = TeamCursor::default();
        let mut counts = vec![0u32; weights.len()];
        let w_total: u32 = weights.iter().sum();
        for _ in 0..w_total * cycles {
            let d = decide(&r, &lead(), &mut cursor, &BTreeMap::new());
            let i: usize = d.rep_id.trim_start_matches('r').parse().expect("a team rep");
            counts[i] += 1;
        }
        let want: Vec<u32> = weights.iter().map(|w| w * cycles).collect();
        prop_assert_eq!(counts, want);
    }

    /// A rep at capacity for a while (100 leads and more) comes back without a backlog: over the
    /// next 3k leads among k equal reps everyone, the returning rep included, gets 3 ± 1.
    #[test]
    fn a_rep_coming_back_gets_no_burst(k in 2usize..8, before in 0usize..24, away in 100usize..150, who in 0usize..8) {
        let who = who % k;
        let reps: Vec<Rep> = (0..k).map(|i| Rep { capacity: Some(5), ..rep(&format!("r{i}"), &format!("Rep {i}")) }).collect();
        let ids: Vec<String> = (0..k).map(|i| format!("r{i}")).collect();
        let members: Vec<(&str, u32)> = ids.iter().map(|id| (id.as_str(), 1)).collect();
        let r = compile(&config(reps, vec![team("all", "Everyone", vec![], &members)]));
        let full = BTreeMap::from([(format!("r{who}"), 5)]);
        let mut cursor = TeamCursor::default();
        for _ in 0..before {
            decide(&r, &lead(), &mut cursor, &BTreeMap::new());
        }
        for _ in 0..away {
            let d = decide(&r, &lead(), &mut cursor, &full);
            prop_assert_ne!(&d.rep_id, &format!("r{who}"));
            prop_assert!(d.explanation.contains(&format!("Skipped Rep {who}: at capacity.")), "{:?}", d.explanation);
        }
        let mut counts = vec![0usize; k];
        for _ in 0..3 * k {
            let d = decide(&r, &lead(), &mut cursor, &BTreeMap::new());
            counts[d.rep_id.trim_start_matches('r').parse::<usize>().expect("a team rep")] += 1;
        }
        for c in &counts {
            prop_assert!(c.abs_diff(3) <= 1, "{:?} after rep {} was away {} leads", counts, who, away);
        }
    }

    /// With weights, the returning rep gets no more than its share of the leads that follow,
    /// plus less than two (the static bound above is one; the worst seen here is 1.58).
    #[test]
    fn a_weighted_rep_coming_back_gets_no_burst(
        weights in prop::collection::vec(1u32..=6, 2..8),
        before in 0usize..60,
        away in 1usize..120,
        who in 0usize..8,
    ) {
        let who = who % weights.len();
        let members: Vec<(RepId, u32)> = weights.iter().enumerate().map(|(i, w)| (format!("r{i}"), *w)).collect();
        let all = vec![true; weights.len()];
        let mut without = all.clone();
        without[who] = false;
        let mut credit = BTreeMap::new();
        for _ in 0..before {
            weighted_pick(&members, &all, &mut credit);
        }
        for _ in 0..away {
            prop_assert_ne!(weighted_pick(&members, &without, &mut credit), Some(who));
        }
        let w_total: u32 = weights.iter().sum();
        let mut got = 0u32;
        for n in 1..=3 * w_total {
            if weighted_pick(&members, &all, &mut credit) == Some(who) {
                got += 1;
            }
            let share = f64::from(n) * f64::from(weights[who]) / f64::from(w_total);
            prop_assert!(f64::from(got) - share < 2.0, "{} leads of {} with weights {:?}", got, n, weights);
        }
    }
}

// ---- availability --------------------------------------------------------------------------

fn tz(name: &str) -> Zone {
    name.parse().expect("a time zone")
}

#[test]
fn working_hours_are_read_in_the_reps_time_zone() {
    let priya = Rep {
        time_zone: "Asia/Kolkata".into(),
        working_hours: Some(hours(&WEEKDAYS, "09:00", "17:00")),
        ..rep("priya", "Priya Nair")
    };
    let kolkata = tz("Asia/Kolkata");
    // Monday 6 January 2025: 05:00 UTC is 10:30 in Kolkata, 13:00 UTC is 18:30.
    assert_eq!(availability(&priya, &kolkata, 0, utc("2025-01-06T05:00:00Z")), Ok(()));
    assert_eq!(availability(&priya, &kolkata, 0, utc("2025-01-06T13:00:00Z")), Err(Unavailable::OutsideWorkingHours));
    assert_eq!(availability(&priya, &kolkata, 0, utc("2025-01-06T03:30:00Z")), Ok(()), "09:00 sharp");
    assert_eq!(availability(&priya, &kolkata, 0, utc("2025-01-06T03:29:00Z")), Err(Unavailable::OutsideWorkingHours));
    assert_eq!(
        availability(&priya, &kolkata, 0, utc("2025-01-06T11:30:00Z")),
        Err(Unavailable::OutsideWorkingHours),
        "17:00 is after"
    );
    // Sunday 22:00 UTC is already Monday 03:30 in Kolkata: too early. Friday 20:00 UTC is
    // Saturday there.
    assert_eq!(availability(&priya, &kolkata, 0, utc("2025-01-05T22:00:00Z")), Err(Unavailable::OutsideWorkingHours));
    assert_eq!(availability(&priya, &kolkata, 0, utc("2025-01-10T20:00:00Z")), Err(Unavailable::OutsideWorkingHours));
    assert_eq!(availability(&priya, &kolkata, 0, utc("2025-01-10T10:00:00Z")), Ok(()));

    // Through decide: at 05:00 UTC Priya takes the lead, at 13:00 UTC the fallback owner does.
    let r = compile(&config(vec![priya], vec![team("apac", "APAC", vec![], &[("priya", 1)])]));
    let d = r.decide(&lead(), &TeamCursor::default(), &BTreeMap::new(), utc("2025-01-06T05:00:00Z"));
    assert_eq!((d.rep_id.as_str(), d.via_fallback), ("priya", false));
    let d = r.decide(&lead(), &TeamCursor::default(), &BTreeMap::new(), utc("2025-01-06T13:00:00Z"));
    assert_eq!((d.rep_id.as_str(), d.via_fallback), ("desk", true));
    assert!(d.explanation.contains(&"Skipped Priya Nair: outside working hours.".to_string()), "{:?}", d.explanation);
}

#[test]
fn working_hours_follow_daylight_saving_time() {
    let anna = Rep {
        time_zone: "Europe/Berlin".into(),
        working_hours: Some(hours(&WEEKDAYS, "09:00", "17:00")),
        ..rep("anna", "Anna Schmidt")
    };
    let berlin = tz("Europe/Berlin");
    // 07:30 UTC is 08:30 in January (CET) and 09:30 in July (CEST).
    assert_eq!(availability(&anna, &berlin, 0, utc("2025-01-06T07:30:00Z")), Err(Unavailable::OutsideWorkingHours));
    assert_eq!(availability(&anna, &berlin, 0, utc("2025-07-07T07:30:00Z")), Ok(()));
}

#[test]
fn a_night_shift_runs_across_midnight() {
    let nik = Rep { working_hours: Some(hours(&WEEKDAYS, "22:00", "06:00")), ..rep("nik", "Nik Night") };
    let check = |when: &str| availability(&nik, &Zone::UTC, 0, utc(when)).is_ok();
    assert!(check("2025-01-06T22:00:00Z"), "Monday 22:00, the shift starts");
    assert!(check("2025-01-06T23:59:00Z"));
    assert!(check("2025-01-07T00:00:00Z"), "Tuesday 00:00 is still Monday's shift");
    assert!(check("2025-01-07T05:59:00Z"));
    assert!(!check("2025-01-07T06:00:00Z"), "the shift ends at 06:00");
    assert!(!check("2025-01-07T12:00:00Z"));
    assert!(!check("2025-01-07T21:59:00Z"));
    assert!(!check("2025-01-06T02:00:00Z"), "Monday 02:00 belongs to Sunday's shift, which there is none of");
    assert!(check("2025-01-11T02:00:00Z"), "Saturday 02:00 belongs to Friday's shift");
    assert!(!check("2025-01-11T22:30:00Z"), "no shift starts on Saturday");
}

#[test]
fn inactive_out_of_office_and_full_reps_cannot_take_leads() {
    let n = now();
    assert_eq!(availability(&Rep { active: false, ..rep("a", "A") }, &Zone::UTC, 0, n), Err(Unavailable::Inactive));
    let away = Rep {
        out_of_office: Some(Absence { from: n - Duration::days(1), until: n + Duration::days(1) }),
        ..rep("a", "A")
    };
    assert_eq!(availability(&away, &Zone::UTC, 0, n), Err(Unavailable::OutOfOffice));
    assert_eq!(
        availability(&away, &Zone::UTC, 0, n - Duration::days(1)),
        Err(Unavailable::OutOfOffice),
        "from is inclusive"
    );
    assert_eq!(availability(&away, &Zone::UTC, 0, n + Duration::days(1)), Ok(()), "back at until");
    assert_eq!(availability(&away, &Zone::UTC, 0, n - Duration::days(2)), Ok(()));
    let small = Rep { capacity: Some(3), ..rep("a", "A") };
    assert_eq!(availability(&small, &Zone::UTC, 2, n), Ok(()));
    assert_eq!(availability(&small, &Zone::UTC, 3, n), Err(Unavailable::AtCapacity));
    assert_eq!(availability(&small, &Zone::UTC, 9, n), Err(Unavailable::AtCapacity));
    assert_eq!(availability(&rep("a", "A"), &Zone::UTC, u32::MAX, n), Ok(()), "no capacity, no limit");
}

#[test]
fn unavailable_reps_get_no_leads_and_every_skip_is_explained() {
    let n = now();
    let reps = vec![
        rep("ava", "Ava Able"),
        Rep { active: false, ..rep("ian", "Ian Inactive") },
        Rep {
            out_of_office: Some(Absence { from: n - Duration::hours(1), until: n + Duration::hours(1) }),
            ..rep("olga", "Olga Away")
        },
        Rep { capacity: Some(10), ..rep("carl", "Carl Full") },
        Rep { working_hours: Some(hours(&[Weekday::Sat], "09:00", "17:00")), ..rep("wes", "Wes Weekend") },
        rep("bo", "Bo Busy"),
    ];
    let members = [("ava", 1), ("ian", 5), ("olga", 5), ("carl", 5), ("wes", 5), ("bo", 1)];
    let r = compile(&config(reps, vec![team("sales", "Sales", vec![], &members)]));
    let loads = BTreeMap::from([("carl".to_string(), 10), ("bo".to_string(), 99)]);
    let mut cursor = TeamCursor::default();
    let mut got = BTreeMap::new();
    for _ in 0..20 {
        let d = decide(&r, &lead(), &mut cursor, &loads);
        for line in [
            "Skipped Ian Inactive: inactive.",
            "Skipped Olga Away: out of office.",
            "Skipped Carl Full: at capacity.",
            "Skipped Wes Weekend: outside working hours.",
        ] {
            assert!(d.explanation.contains(&line.to_string()), "{line} missing from {:?}", d.explanation);
        }
        *got.entry(d.rep_id).or_insert(0) += 1;
    }
    assert_eq!(got, BTreeMap::from([("ava".to_string(), 10), ("bo".to_string(), 10)]));
}

// ---- teams, fallback, explanations ---------------------------------------------------------

fn two_teams(catch_all_first: bool) -> CompiledRouting {
    let dach = team("dach", "DACH", country_in(&["DE", "AT", "CH"]), &[("anna", 1)]);
    let world = team("world", "Rest of world", vec![], &[("ben", 1)]);
    let teams = if catch_all_first { vec![world, dach] } else { vec![dach, world] };
    compile(&config(vec![rep("anna", "Anna Schmidt"), rep("ben", "Ben Okafor")], teams))
}

#[test]
fn the_first_matching_team_gets_the_lead() {
    let r = two_teams(false);
    let de = lead();
    let fr = lead_with(|l| l.contact.country = Some("FR".into()));
    let d = r.decide(&de, &TeamCursor::default(), &BTreeMap::new(), now());
    assert_eq!((d.rep_id.as_str(), d.team_id.as_deref()), ("anna", Some("dach")));
    assert_eq!(r.match_team(&de).map(|t| t.id.as_str()), Some("dach"));
    let d = r.decide(&fr, &TeamCursor::default(), &BTreeMap::new(), now());
    assert_eq!((d.rep_id.as_str(), d.team_id.as_deref()), ("ben", Some("world")));
    // Order decides: a catch-all team listed first takes everything.
    let d = two_teams(true).decide(&de, &TeamCursor::default(), &BTreeMap::new(), now());
    assert_eq!((d.rep_id.as_str(), d.team_id.as_deref()), ("ben", Some("world")));
}

#[test]
fn a_pick_explains_the_team_and_the_rep() {
    let r = two_teams(false);
    let d = r.decide(&lead(), &TeamCursor::default(), &BTreeMap::new(), now());
    assert!(!d.via_fallback);
    assert_eq!(d.explanation[0], "Team DACH matched: country is one of de, at, ch.");
    assert!(d.explanation[1].starts_with("Anna Schmidt is next"), "{:?}", d.explanation);
    let (team, cursor) = d.cursor.expect("a pick moves the team's cursor");
    assert_eq!(team, "dach");
    assert_eq!(cursor.version, 0, "the cursor keeps the version it was read at, for the conditional write");
    assert_eq!(d.sla_due_at, now() + Duration::hours(4));
    let d = r.decide(&lead_with(|l| l.contact.country = None), &TeamCursor::default(), &BTreeMap::new(), now());
    assert_eq!(d.explanation[0], "Team Rest of world takes every lead not matched before it.");
    assert!(d.explanation[1].contains("Ben Okafor"));
}

#[test]
fn no_matching_team_means_the_fallback_owner_with_a_reason() {
    let r = compile(&config(
        vec![rep("anna", "Anna Schmidt")],
        vec![team("dach", "DACH", country_in(&["DE"]), &[("anna", 1)])],
    ));
    let d = r.decide(
        &lead_with(|l| l.contact.country = Some("US".into())),
        &TeamCursor::default(),
        &BTreeMap::new(),
        now(),
    );
    assert_eq!(d.rep_id, "desk");
    assert!(d.via_fallback);
    assert_eq!(d.team_id, None);
    assert_eq!(d.cursor, None);
    assert_eq!(d.explanation, ["No team's rules match this lead.", "Assigned to the fallback owner, Dana Desk."]);
    assert_eq!(d.sla_due_at, now() + Duration::hours(4));
}

#[test]
fn a_team_nobody_can_serve_falls_back_and_says_why_for_everyone() {
    let reps = vec![
        Rep { active: false, ..rep("anna", "Anna Schmidt") },
        Rep { capacity: Some(1), ..rep("ben", "Ben Okafor") },
    ];
    let r = compile(&config(reps, vec![team("dach", "DACH", country_in(&["DE"]), &[("anna", 2), ("ben", 1)])]));
    let cursor = TeamCursor { credit: BTreeMap::from([("anna".to_string(), 3)]), version: 7 };
    let d = r.decide(&lead(), &cursor, &BTreeMap::from([("ben".to_string(), 1)]), now());
    assert_eq!(d.rep_id, "desk");
    assert!(d.via_fallback);
    assert_eq!(d.team_id.as_deref(), Some("dach"));
    assert_eq!(d.cursor, None, "nobody was picked, so the cursor must not move");
    assert_eq!(
        d.explanation,
        [
            "Team DACH matched: country is one of de.",
            "Skipped Anna Schmidt: inactive.",
            "Skipped Ben Okafor: at capacity.",
            "Nobody in team DACH can take a lead now.",
            "Assigned to the fallback owner, Dana Desk.",
        ]
    );
}

// ---- configuration -------------------------------------------------------------------------

fn invalid(c: &RoutingConfig) -> String {
    match c.compile() {
        Err(e @ ConfigError::Invalid { .. }) => e.to_string(),
        Err(e) => panic!("expected an invalid config, got {e}"),
        Ok(_) => panic!("expected a config error"),
    }
}

#[test]
fn routing_mistakes_are_config_errors() {
    let unknown_member = config(vec![rep("anna", "A")], vec![team("dach", "DACH", vec![], &[("anna", 1), ("zoe", 1)])]);
    let e = invalid(&unknown_member);
    assert!(e.contains("team dach") && e.contains("zoe"), "{e}");

    let unknown_fallback = RoutingConfig { fallback_owner: "nobody".into(), ..config(vec![], vec![]) };
    assert!(invalid(&unknown_fallback).contains("nobody"));

    let bad_zone = config(vec![Rep { time_zone: "Mars/Olympus_Mons".into(), ..rep("anna", "A") }], vec![]);
    let e = invalid(&bad_zone);
    assert!(e.contains("rep anna") && e.contains("Mars/Olympus_Mons"), "{e}");

    let zero = config(vec![rep("anna", "A")], vec![team("dach", "DACH", vec![], &[("anna", 0)])]);
    let e = invalid(&zero);
    assert!(e.contains("team dach") && e.contains("weight 0"), "{e}");

    let twice = config(vec![rep("anna", "A"), rep("anna", "B")], vec![]);
    assert!(invalid(&twice).contains("rep anna"));

    let no_sla = RoutingConfig { sla_hours: 0.0, ..config(vec![], vec![]) };
    assert!(invalid(&no_sla).contains("sla_hours"));

    let bad_rule = config(
        vec![rep("anna", "A")],
        vec![team(
            "dach",
            "DACH",
            vec![Condition { field: "x".into(), test: Test::Regex("(".into()) }],
            &[("anna", 1)],
        )],
    );
    assert!(invalid(&bad_rule).contains("team dach"));
}

#[test]
fn routing_reads_from_toml_with_weekdays_and_times_as_people_write_them() {
    let text = r#"
        fallback_owner = "desk"

        [[reps]]
        id = "priya"
        name = "Priya Nair"
        email = "priya@acme.example"
        time_zone = "Asia/Kolkata"
        working_hours = { days = ["mon", "Tue", "WED", "thursday", "Fri"], start = "09:00", end = "17:30" }
        capacity = 50

        [[reps]]
        id = "desk"
        name = "Dana Desk"
        email = "desk@acme.example"

        [[teams]]
        id = "apac"
        name = "APAC"
        when = [{ field = "country", in = ["IN", "SG"] }]
        members = [{ rep = "priya" }]
    "#;
    let c: RoutingConfig = toml::from_str(text).unwrap_or_else(|e| panic!("{e}"));
    let priya = &c.reps[0];
    let wh = priya.working_hours.as_ref().expect("working hours");
    assert_eq!(wh.days, WEEKDAYS);
    assert_eq!(
        (wh.start, wh.end),
        (NaiveTime::from_hms_opt(9, 0, 0).unwrap(), NaiveTime::from_hms_opt(17, 30, 0).unwrap())
    );
    assert!(priya.active, "reps are active unless said otherwise");
    assert_eq!(c.reps[1].time_zone, "UTC");
    assert_eq!(c.sla_hours, 4.0);
    assert_eq!(c.teams[0].members[0].weight, 1, "weight defaults to 1");
    let r = compile(&c);
    let india = lead_with(|l| l.contact.country = Some("IN".into()));
    let d = r.decide(&india, &TeamCursor::default(), &BTreeMap::new(), utc("2025-01-06T05:00:00Z"));
    assert_eq!(d.rep_id, "priya");
}

// ---- the SLA, counted in the owner's working hours ------------------------------------------

#[test]
fn the_sla_counts_only_the_owners_working_hours() {
    let mut anna = rep("anna", "Anna");
    anna.time_zone = "Europe/Berlin".into();
    anna.working_hours = Some(hours(&WEEKDAYS, "09:00", "17:00"));
    let mut night = rep("nils", "Nils");
    night.time_zone = "Europe/Berlin".into();
    night.working_hours = Some(hours(&WEEKDAYS, "22:00", "06:00"));
    let r = compile(&config(vec![anna, night, rep("always", "Al")], vec![]));
    // Friday 16:00 Berlin (15:00 UTC, winter): one hour left on Friday, three on Monday from
    // 09:00 → Monday 12:00 Berlin = 11:00 UTC.
    assert_eq!(r.sla_due("anna", utc("2025-01-10T15:00:00Z")), utc("2025-01-13T11:00:00Z"));
    // Assigned on Saturday: all four hours on Monday → 13:00 Berlin.
    assert_eq!(r.sla_due("anna", utc("2025-01-11T10:00:00Z")), utc("2025-01-13T12:00:00Z"));
    // Inside the day: plain four hours.
    assert_eq!(r.sla_due("anna", utc("2025-01-07T08:00:00Z")), utc("2025-01-07T12:00:00Z"));
    // A night shift that began the evening before counts: Tuesday 01:00 Berlin + 4 h = 05:00.
    assert_eq!(r.sla_due("nils", utc("2025-01-07T00:00:00Z")), utc("2025-01-07T04:00:00Z"));
    // No working hours: wall-clock hours.
    assert_eq!(r.sla_due("always", utc("2025-01-11T10:00:00Z")), utc("2025-01-11T14:00:00Z"));
}

#[test]
fn re_routing_after_a_breach_never_picks_the_rep_who_let_it_run_out() {
    let r = one_team(&[1, 1, 1]);
    let l = lead();
    for first in ["r0", "r1", "r2"] {
        for _ in 0..10 {
            let d = r.decide_except(&l, &TeamCursor::default(), &BTreeMap::new(), now(), Some(first));
            assert_ne!(d.rep_id, first);
            assert!(
                d.explanation.iter().any(|e| e.contains("did not contact the lead within the SLA")),
                "{:?}",
                d.explanation
            );
        }
    }
}
