//! Every number in the scoring and routing rules is bounded at validation, and no configuration
//! validation accepts can panic or produce a number that does not survive JSON (NaN and the
//! infinities are written as `null`), for any lead, any activities and any instant chrono knows.
//! Before the bounds, `sla_hours = 1e10` overflowed the SLA deadline's date arithmetic (a panic,
//! an abort in release builds) and a fit rule worth 1e300 made a lead's score infinite.

mod common;

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveTime, Utc, Weekday};
use common::lead_with;
use leadflow_core::model::{Activity, ActivityKind, Lead, LeadId, RepId, TeamCursor};
use leadflow_core::routing::{
    Absence, MAX_CAPACITY, MAX_SLA_HOURS, MAX_WEIGHT, Member, Rep, RoutingConfig, Team, WorkingHours,
};
use leadflow_core::rules::{Condition, MAX_RANGE_BOUND, Test};
use leadflow_core::scoring::bounds::{MAX_CAP, MAX_HALF_LIFE_DAYS, MAX_POINTS, MAX_THRESHOLD, MIN_HALF_LIFE_DAYS};
use leadflow_core::scoring::{BehaviourRule, FitRule, GradeBand, ScoringRules, Thresholds};
use proptest::prelude::*;

// ---- numbers as people (and mischief) type them ----------------------------------------------

/// A number for a field whose bounds are `lo..=hi`: mostly inside them, sometimes at or just
/// past an edge, sometimes any float at all, or one of the values that once broke things.
fn number(lo: f64, hi: f64) -> impl Strategy<Value = f64> {
    let step = (hi - lo) / 1e6;
    prop_oneof![
        24 => lo..=hi,
        1 => prop::sample::select(vec![lo, hi, lo - step, hi + step, 0.0, -0.0, f64::MIN_POSITIVE]),
        1 => any::<f64>(),
        1 => prop::sample::select(vec![1e10, -1e10, 1e15, 1e300, f64::MAX, f64::MIN, f64::INFINITY, f64::NEG_INFINITY, f64::NAN]),
    ]
}

/// Any instant chrono can hold, often one near "now" so that decay and shifts matter.
fn instant() -> impl Strategy<Value = DateTime<Utc>> {
    let (lo, hi) = (DateTime::<Utc>::MIN_UTC.timestamp_millis(), DateTime::<Utc>::MAX_UTC.timestamp_millis());
    let near = common::now().timestamp_millis();
    prop_oneof![
        2 => (near - 400 * 86_400_000)..(near + 400 * 86_400_000),
        1 => lo..=hi,
        1 => prop::sample::select(vec![lo, lo + 1, hi, hi - 1, hi - 3_600_000, 0]),
    ]
    .prop_map(|ms| DateTime::from_timestamp_millis(ms).unwrap_or(DateTime::<Utc>::MAX_UTC))
}

fn within(x: f64, lo: f64, hi: f64) -> bool {
    lo <= x && x <= hi
}

// ---- scoring -------------------------------------------------------------------------------

const FIELDS: [&str; 4] = ["country", "job_title", "custom.employees", "phone"];
const ACTIVITIES: [&str; 4] = ["form_submission", "email_open", "email_click", "email_sent"];

fn condition() -> impl Strategy<Value = Condition> {
    let field = prop::sample::select(&FIELDS[..]).prop_map(String::from);
    let test = prop_oneof![
        any::<bool>().prop_map(Test::Exists),
        "[a-zA-Z ]{0,8}".prop_map(Test::Equals),
        (prop::option::of(number(-1e6, 1e6)), prop::option::of(number(-1e6, 1e6)))
            .prop_map(|(min, max)| Test::Range { min, max }),
    ];
    (field, test).prop_map(|(field, test)| Condition { field, test })
}

fn scoring_rules() -> impl Strategy<Value = ScoringRules> {
    let points = || number(-MAX_POINTS, MAX_POINTS);
    let threshold = || number(-MAX_THRESHOLD, MAX_THRESHOLD);
    let fit = prop::collection::vec((points(), condition()), 0..8);
    let behaviour = prop::collection::vec(
        (
            prop::sample::select(&ACTIVITIES[..]),
            points(),
            number(MIN_HALF_LIFE_DAYS, MAX_HALF_LIFE_DAYS),
            prop::option::of(number(-MAX_CAP, MAX_CAP)),
        ),
        0..5,
    );
    let grades = prop::collection::vec(threshold(), 0..4);
    (threshold(), threshold(), grades, fit, behaviour).prop_map(|(mql, sql, grades, fit, behaviour)| {
        let (mql, sql) = if sql < mql { (sql, mql) } else { (mql, sql) };
        ScoringRules {
            thresholds: Thresholds { mql, sql },
            grades: grades
                .into_iter()
                .zip([leadflow_core::model::Grade::A, leadflow_core::model::Grade::B, leadflow_core::model::Grade::C])
                .map(|(min_fit, grade)| GradeBand { grade, min_fit })
                .collect(),
            fit: fit
                .into_iter()
                .enumerate()
                .map(|(i, (points, when))| FitRule { id: format!("f{i}"), description: "fit".into(), points, when })
                .collect(),
            behaviour: behaviour
                .into_iter()
                .enumerate()
                .map(|(i, (activity, points, half_life_days, max_points))| BehaviourRule {
                    id: format!("b{i}"),
                    description: "behaviour".into(),
                    activity: activity.into(),
                    points,
                    half_life_days,
                    max_points,
                })
                .collect(),
        }
    })
}

/// What the documented bounds accept, written out apart from `scoring.rs`.
fn scoring_in_bounds(r: &ScoringRules) -> bool {
    let t = MAX_THRESHOLD;
    let range_ok = |c: &Condition| match &c.test {
        Test::Range { min, max } => {
            [min, max].iter().all(|b| b.is_none_or(|x| within(x, -MAX_RANGE_BOUND, MAX_RANGE_BOUND)))
                && !matches!((min, max), (Some(lo), Some(hi)) if lo > hi)
        }
        _ => true,
    };
    within(r.thresholds.mql, -t, t)
        && within(r.thresholds.sql, -t, t)
        && r.grades.iter().all(|g| within(g.min_fit, -t, t))
        && r.fit.iter().all(|f| within(f.points, -MAX_POINTS, MAX_POINTS) && range_ok(&f.when))
        && r.behaviour.iter().all(|b| {
            within(b.points, -MAX_POINTS, MAX_POINTS)
                && within(b.half_life_days, MIN_HALF_LIFE_DAYS, MAX_HALF_LIFE_DAYS)
                && b.max_points.is_none_or(|m| within(m, -MAX_CAP, MAX_CAP))
        })
}

fn lead() -> impl Strategy<Value = Lead> {
    let text = || prop::option::of("\\PC{0,12}");
    let employees = prop::option::of(prop_oneof![
        "[0-9]{1,20}",
        Just("1e308".to_string()),
        Just("inf".to_string()),
        Just("NaN".to_string()),
        Just("-0".to_string()),
    ]);
    let zone = prop::option::of(prop::sample::select(vec![
        "Pacific/Kiritimati".to_string(),
        "Etc/GMT+12".into(),
        "Europe/Berlin".into(),
        "Not/AZone".into(),
    ]));
    (text(), text(), employees, zone).prop_map(|(country, title, employees, zone)| {
        lead_with(|l| {
            l.contact.country = country;
            l.contact.job_title = title;
            l.contact.time_zone = zone;
            l.custom.clear();
            if let Some(e) = employees {
                l.custom.insert("employees".into(), e);
            }
        })
    })
}

fn activities() -> impl Strategy<Value = Vec<Activity>> {
    prop::collection::vec((prop::sample::select(&ACTIVITIES[..]), instant()), 0..10).prop_map(|v| {
        v.into_iter()
            .enumerate()
            .map(|(n, (name, at))| {
                let kind = match name {
                    "form_submission" => {
                        ActivityKind::FormSubmission { submission_id: LeadId::from_parts(1, n as u128), form: None }
                    }
                    "email_open" => ActivityKind::EmailOpened { message_id: format!("m{n}"), email: None },
                    "email_click" => ActivityKind::EmailClicked { message_id: format!("m{n}"), email: None, url: None },
                    _ => ActivityKind::EmailSent {
                        email: "a@b.example".into(),
                        message_id: format!("m{n}"),
                        subject: "Hi".into(),
                    },
                };
                Activity { id: format!("a{n}"), lead_id: LeadId::from_parts(1, 1), at, kind }
            })
            .collect()
    })
}

// ---- routing -------------------------------------------------------------------------------

const ZONES: [&str; 6] =
    ["UTC", "Pacific/Kiritimati", "Etc/GMT+12", "Australia/Lord_Howe", "America/St_Johns", "Europe/Berlin"];

fn weight() -> impl Strategy<Value = u32> {
    prop_oneof![
        24 => 1..=MAX_WEIGHT,
        1 => prop::sample::select(vec![0, 1, MAX_WEIGHT, MAX_WEIGHT + 1, u32::MAX]),
        1 => any::<u32>(),
    ]
}

fn capacity() -> impl Strategy<Value = Option<u32>> {
    prop::option::of(prop_oneof![
        24 => 0..=MAX_CAPACITY,
        1 => prop::sample::select(vec![0, MAX_CAPACITY, MAX_CAPACITY + 1, u32::MAX]),
        1 => any::<u32>(),
    ])
}

fn working_hours() -> impl Strategy<Value = Option<WorkingHours>> {
    let days = prop::sample::subsequence(
        vec![Weekday::Mon, Weekday::Tue, Weekday::Wed, Weekday::Thu, Weekday::Fri, Weekday::Sat, Weekday::Sun],
        1..=7,
    );
    let time = (0u32..24, prop::sample::select(vec![0u32, 15, 30, 59]))
        .prop_map(|(h, m)| NaiveTime::from_hms_opt(h, m, 0).unwrap_or(NaiveTime::MIN));
    prop::option::of((days, time.clone(), time).prop_filter_map("a shift of some time", |(days, start, end)| {
        (start != end).then_some(WorkingHours { days, start, end })
    }))
}

fn rep(i: usize) -> impl Strategy<Value = Rep> {
    let absence = prop::option::of((instant(), instant())).prop_map(|a| {
        a.map(|(x, y)| if x < y { Absence { from: x, until: y } } else { Absence { from: y, until: x } })
    });
    (prop::sample::select(&ZONES[..]), working_hours(), capacity(), any::<bool>(), absence).prop_map(
        move |(zone, working_hours, capacity, active, out_of_office)| Rep {
            id: format!("r{i}"),
            name: format!("Rep {i}"),
            email: format!("r{i}@acme.example"),
            time_zone: zone.into(),
            working_hours,
            capacity,
            active,
            out_of_office,
        },
    )
}

fn routing_config() -> impl Strategy<Value = RoutingConfig> {
    let reps = (rep(0), rep(1), rep(2), rep(3)).prop_map(|(a, b, c, d)| vec![a, b, c, d]);
    let team = (prop::collection::vec(condition(), 0..2), prop::collection::vec((0usize..4, weight()), 1..4));
    (number(0.0, MAX_SLA_HOURS), reps, prop::collection::vec(team, 0..3)).prop_map(|(sla_hours, reps, teams)| {
        RoutingConfig {
            fallback_owner: "r0".into(),
            sla_hours,
            reps,
            teams: teams
                .into_iter()
                .enumerate()
                .map(|(t, (when, members))| {
                    let mut seen = Vec::new();
                    let members = members
                        .into_iter()
                        .filter(|(r, _)| {
                            let fresh = !seen.contains(r);
                            seen.push(*r);
                            fresh
                        })
                        .map(|(r, weight)| Member { rep: format!("r{r}"), weight })
                        .collect();
                    Team { id: format!("t{t}"), name: format!("Team {t}"), when, members }
                })
                .collect(),
        }
    })
}

fn routing_in_bounds(c: &RoutingConfig) -> bool {
    let ranges_ok = c.teams.iter().flat_map(|t| &t.when).all(|w| match &w.test {
        Test::Range { min, max } => {
            [min, max].iter().all(|b| b.is_none_or(|x| within(x, -MAX_RANGE_BOUND, MAX_RANGE_BOUND)))
                && !matches!((min, max), (Some(lo), Some(hi)) if lo > hi)
        }
        _ => true,
    });
    c.sla_hours > 0.0
        && c.sla_hours <= MAX_SLA_HOURS
        && c.reps.iter().all(|r| r.capacity.is_none_or(|cap| cap <= MAX_CAPACITY))
        && c.teams.iter().flat_map(|t| &t.members).all(|m| (1..=MAX_WEIGHT).contains(&m.weight))
        && ranges_ok
}

fn cursor() -> impl Strategy<Value = TeamCursor> {
    let credit = prop_oneof![-1_000i64..1_000, any::<i64>(), Just(i64::MAX), Just(i64::MIN)];
    prop::collection::btree_map((0usize..4).prop_map(|r| format!("r{r}")), credit, 0..4)
        .prop_map(|credit| TeamCursor { credit, version: 7 })
}

fn loads() -> impl Strategy<Value = BTreeMap<RepId, u32>> {
    prop::collection::btree_map((0usize..4).prop_map(|r| format!("r{r}")), prop_oneof![0u32..50, any::<u32>()], 0..4)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 600, ..ProptestConfig::default() })]

    /// Scoring rules compile exactly when every number is inside its documented bounds, and the
    /// rules that compile give finite scores, which JSON keeps as numbers, for any lead,
    /// activities and instant.
    #[test]
    fn accepted_scoring_rules_always_give_finite_scores(
        rules in scoring_rules(),
        lead in lead(),
        acts in activities(),
        now in instant(),
    ) {
        let compiled = rules.compile();
        prop_assert_eq!(compiled.is_ok(), scoring_in_bounds(&rules), "{:?}: {:?}", rules, compiled.as_ref().err());
        let Ok(compiled) = compiled else { return Ok(()) };
        let score = compiled.score(&lead, &acts, now);
        for x in [score.total, score.fit, score.behaviour].into_iter().chain(score.reasons.iter().map(|r| r.points)) {
            prop_assert!(x.is_finite(), "{:?}", score);
            // A hundredth stays exact: no sum of bounded rules comes near 2^53 hundredths.
            prop_assert!(x.abs() < 1e12, "{:?}", score);
        }
        let json = serde_json::to_value(&score).unwrap_or_default();
        for key in ["total", "fit", "behaviour"] {
            prop_assert!(json[key].is_number(), "{} stored as {}", key, json[key]);
        }
        let stage = compiled.lifecycle_after(leadflow_core::model::Lifecycle::Lead, score.total);
        prop_assert!(stage >= leadflow_core::model::Lifecycle::Lead);
    }

    /// Routing compiles exactly when every number is inside its bounds, and what compiles decides
    /// and sets SLA deadlines without a panic for any lead, stored cursor, loads and instant; a
    /// deadline is never before the assignment.
    #[test]
    fn accepted_routing_never_panics_and_deadlines_follow_the_assignment(
        config in routing_config(),
        lead in lead(),
        cursor in cursor(),
        loads in loads(),
        now in instant(),
    ) {
        let compiled = config.compile();
        prop_assert_eq!(compiled.is_ok(), routing_in_bounds(&config), "{:?}: {:?}", config, compiled.as_ref().err());
        let Ok(compiled) = compiled else { return Ok(()) };
        let d = compiled.decide(&lead, &cursor, &loads, now);
        prop_assert!(d.sla_due_at >= now, "due {} before {}", d.sla_due_at, now);
        let again = compiled.decide_except(&lead, &cursor, &loads, now, Some(d.rep_id.as_str()));
        prop_assert!(again.sla_due_at >= now);
        for rep in &config.reps {
            let due = compiled.sla_due(&rep.id, now);
            prop_assert!(due >= now, "{}: due {} before {}", rep.id, due, now);
            // No later than the whole budget counted from a year and more of shifts ahead.
            if rep.working_hours.is_none() && now < DateTime::<Utc>::MAX_UTC - chrono::Duration::days(400) {
                let budget = chrono::Duration::milliseconds((config.sla_hours * 3_600_000.0) as i64);
                prop_assert_eq!(due, now + budget);
            }
        }
    }
}

// ---- the values that were reported -------------------------------------------------------------

fn base_routing() -> RoutingConfig {
    toml::from_str(include_str!("../../app/config/routing.toml")).unwrap_or_else(|e| panic!("{e}"))
}

fn base_scoring() -> ScoringRules {
    toml::from_str(include_str!("../../app/config/scoring.toml")).unwrap_or_else(|e| panic!("{e}"))
}

fn refusal<T: std::fmt::Debug>(r: Result<T, leadflow_core::error::ConfigError>) -> String {
    match r {
        Err(e) => e.to_string(),
        Ok(c) => panic!("expected a refusal, compiled {c:?}"),
    }
}

#[test]
fn the_reported_values_are_refused_with_the_field_and_its_range() {
    let e = refusal(RoutingConfig { sla_hours: 1e10, ..base_routing() }.compile());
    assert!(e.starts_with("sla_hours:") && e.contains("at most 8760 hours"), "{e}");
    assert!(RoutingConfig { sla_hours: MAX_SLA_HOURS, ..base_routing() }.compile().is_ok());

    let mut huge = base_scoring();
    huge.fit[0].points = 1e300;
    let e = refusal(huge.compile());
    assert!(
        e.contains(&format!("fit rule {}", huge.fit[0].id)) && e.contains("points must be from -1000 to 1000"),
        "{e}"
    );

    let mut decay = base_scoring();
    decay.behaviour[0].half_life_days = 1e9;
    let e = refusal(decay.compile());
    assert!(e.contains("half_life_days") && e.contains("0.01 to 3650"), "{e}");

    let mut cap = base_scoring();
    cap.behaviour[0].max_points = Some(f64::INFINITY);
    assert!(refusal(cap.compile()).contains("max_points must be from -100000 to 100000"));

    let mut mql = base_scoring();
    mql.thresholds.mql = -1e9;
    let e = refusal(mql.compile());
    assert!(e.starts_with("thresholds.mql:"), "{e}");

    let mut band = base_scoring();
    band.grades[1].min_fit = f64::NAN;
    assert!(refusal(band.compile()).starts_with("grades[1].min_fit:"));

    let mut range = base_scoring();
    range.fit[0].when =
        Condition { field: "custom.employees".into(), test: Test::Range { min: Some(f64::NEG_INFINITY), max: None } };
    assert!(refusal(range.compile()).contains("range min must be a number"));

    let mut routing = base_routing();
    routing.reps[0].capacity = Some(MAX_CAPACITY + 1);
    assert!(refusal(routing.compile()).contains("capacity must be from 0 to 10000"));
    let mut routing = base_routing();
    routing.teams[0].members[0].weight = MAX_WEIGHT + 1;
    assert!(refusal(routing.compile()).contains("a weight is from 1 to 100"));
}

#[test]
fn an_sla_deadline_at_the_end_of_time_is_the_end_of_time() {
    let r = RoutingConfig { sla_hours: MAX_SLA_HOURS, ..base_routing() };
    let c = r.compile().unwrap_or_else(|e| panic!("{e}"));
    let end = DateTime::<Utc>::MAX_UTC;
    for rep in &r.reps {
        assert_eq!(c.sla_due(&rep.id, end - chrono::Duration::hours(1)), end, "{}", rep.id);
    }
}
