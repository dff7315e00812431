//! `what_if`'s tests: the replay on small cases a person can check, and properties over random
//! leads and rules.

use std::collections::BTreeMap;
use std::time::Instant;

use chrono::{Duration, TimeZone};
use proptest::prelude::*;

use super::*;
use crate::model::{ActivityKind, Assignment, Attribution, Contact, DomainKind, Grade, ScoreReason, Touch, Validity};
use crate::routing::RoutingConfig;
use crate::scoring::ScoringRules;

fn t(minutes: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).single().unwrap_or_default() + Duration::minutes(minutes)
}

fn lead(n: u64, country: &str, title: Option<&str>) -> Lead {
    Lead {
        id: LeadId::from_parts(1_770_000_000_000 + n, u128::from(n)),
        version: 1,
        created_at: t(n as i64),
        updated_at: t(n as i64),
        validity: Validity::Valid,
        warnings: Vec::new(),
        contact: Contact {
            email: format!("p{n}@acme.example"),
            email_domain: "acme.example".into(),
            domain_kind: DomainKind::Corporate,
            role_address: false,
            first_name: None,
            last_name: None,
            phone: None,
            phone_display: None,
            phone_country: None,
            company: Some("Acme".into()),
            job_title: title.map(str::to_string),
            country: Some(country.into()),
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

const SCORING: &str = r#"
    thresholds = { mql = 40, sql = 80 }
    grades = [{ grade = "A", min_fit = 50 }, { grade = "B", min_fit = 30 }, { grade = "C", min_fit = 10 }]
    [[fit]]
    id = "corporate"
    description = "Company address"
    points = 15
    when = { field = "domain_kind", equals = "corporate" }
    [[fit]]
    id = "senior"
    description = "Decision-maker title"
    points = 20
    when = { field = "job_title", contains = ["head of", "vp", "cto"] }
    [[fit]]
    id = "market"
    description = "In a market we sell to"
    points = 10
    when = { field = "country", in = ["DE", "GB", "US"] }
    [[behaviour]]
    id = "forms"
    description = "Submitted a form"
    activity = "form_submission"
    points = 10
    half_life_days = 14
    max_points = 30
"#;

const ROUTING: &str = r#"
    fallback_owner = "desk"
    reps = [
        { id = "anna", name = "Anna", email = "anna@acme.example" },
        { id = "ben", name = "Ben", email = "ben@acme.example" },
        { id = "carla", name = "Carla", email = "carla@acme.example" },
        { id = "desk", name = "Desk", email = "desk@acme.example" },
    ]
    [[teams]]
    id = "emea"
    name = "EMEA"
    when = [{ field = "country", in = ["DE", "GB"] }]
    members = [{ rep = "anna" }, { rep = "ben" }]
    [[teams]]
    id = "americas"
    name = "Americas"
    when = [{ field = "country", in = ["US"] }]
    members = [{ rep = "carla" }]
"#;

fn scoring(text: &str) -> ScoringRules {
    toml::from_str(text).unwrap_or_else(|e| panic!("{e}"))
}

fn routing(text: &str) -> RoutingConfig {
    toml::from_str(text).unwrap_or_else(|e| panic!("{e}"))
}

struct Compiled(CompiledScoring, CompiledRouting);

impl Compiled {
    fn of(s: &ScoringRules, r: &RoutingConfig) -> Self {
        Compiled(s.compile().unwrap_or_else(|e| panic!("{e}")), r.compile().unwrap_or_else(|e| panic!("{e}")))
    }
    fn rules(&self) -> Rules<'_> {
        Rules { scoring: &self.0, routing: &self.1 }
    }
}

/// The leads as the pipeline left them under `rules`: scored at capture, routed if qualified.
fn processed(mut leads: Vec<Lead>, rules: &Compiled) -> Vec<Lead> {
    for l in &mut leads {
        let s = rules.0.score(l, &[], l.created_at);
        l.lifecycle = rules.0.lifecycle_after(l.lifecycle, s.total);
        l.score = Some(s);
    }
    leads
}

fn past(leads: &[Lead]) -> Vec<PastLead<'_>> {
    leads.iter().map(|lead| PastLead { lead, activities: None }).collect()
}

#[test]
fn more_points_for_a_senior_title_lift_senior_leads_a_grade() {
    let now_rules = Compiled::of(&scoring(SCORING), &routing(ROUTING));
    let leads = processed(
        vec![
            lead(1, "DE", Some("Head of IT")),
            lead(2, "DE", Some("Engineer")),
            lead(3, "FR", Some("CTO")),
            lead(4, "US", Some("VP Sales")),
        ],
        &now_rules,
    );
    let draft = Compiled::of(&scoring(&SCORING.replace("points = 20", "points = 30")), &routing(ROUTING));
    let w = what_if(&past(&leads), now_rules.rules(), draft.rules(), &RoutingState::default(), t(100), 10);
    assert_eq!(w.leads, 4);
    // Lead 1: 45 → 55 (B → A); 3: 35 → 45 (B → B, Lead → MQL); 4: 45 → 55 (B → A).
    assert_eq!(w.grade.changed, 2, "{w:#?}");
    assert_eq!(w.grade.moves, vec![Move { from: "B".into(), to: "A".into(), count: 2 }]);
    assert_eq!(w.score.changed, 3);
    assert_eq!((w.score_up, w.score_down), (3, 0));
    assert_eq!(w.stage.changed, 1);
    assert_eq!(w.stage.examples[0].lead_id, leads[2].id);
    assert_eq!((w.stage.examples[0].from.as_str(), w.stage.examples[0].to.as_str()), ("Lead", "MQL"));
    // Newest first, with the draft's points in the reasons.
    assert_eq!(w.grade.examples.iter().map(|e| e.lead_id).collect::<Vec<_>>(), vec![leads[3].id, leads[0].id]);
    assert!(w.grade.examples[0].reasons.iter().any(|r| r.starts_with("+30 Decision-maker title")), "{w:#?}");
    // The newly qualified French lead gets an owner: no team matches it, so the desk.
    assert_eq!(w.owner.changed, 1);
    assert_eq!(w.owner.moves, vec![Move { from: NOT_ROUTED.into(), to: "Desk".into(), count: 1 }]);
    assert_eq!(w.team.moves, vec![Move { from: NOT_ROUTED.into(), to: "no team".into(), count: 1 }]);
}

#[test]
fn moving_a_country_to_another_team_moves_its_leads() {
    let rules = Compiled::of(&scoring(SCORING), &routing(ROUTING));
    let leads = processed((0..6).map(|n| lead(n, if n % 2 == 0 { "GB" } else { "DE" }, Some("CTO"))).collect(), &rules);
    let draft_routing =
        ROUTING.replace(r#"in = ["DE", "GB"]"#, r#"in = ["DE"]"#).replace(r#"in = ["US"]"#, r#"in = ["US", "GB"]"#);
    let draft = Compiled::of(&scoring(SCORING), &routing(&draft_routing));
    let w = what_if(&past(&leads), rules.rules(), draft.rules(), &RoutingState::default(), t(100), 2);
    assert_eq!(w.team.changed, 3, "{w:#?}");
    assert_eq!(w.team.moves, vec![Move { from: "EMEA".into(), to: "Americas".into(), count: 3 }]);
    assert_eq!(w.team.examples.len(), 2, "at most the examples asked for");
    assert!(w.team.examples[0].reasons[0].contains("Team Americas matched"), "{w:#?}");
    // Before, anna and ben alternate over all six; after, the three Germans alternate and
    // Carla takes the British: every British lead changes hands, and so do some Germans.
    assert!(w.owner.changed >= 3, "{w:#?}");
    assert!(w.owner.moves.iter().any(|m| m.to == "Carla" && m.count == 3), "{w:#?}");
    assert_eq!((w.grade.changed, w.stage.changed, w.score.changed), (0, 0, 0));
}

#[test]
fn a_stricter_threshold_holds_stages_and_says_how_many() {
    let rules = Compiled::of(&scoring(SCORING), &routing(ROUTING));
    let leads = processed(vec![lead(1, "DE", Some("CTO")), lead(2, "DE", None)], &rules);
    assert_eq!(leads[0].lifecycle, Lifecycle::Mql);
    let draft = Compiled::of(&scoring(&SCORING.replace("mql = 40", "mql = 60")), &routing(ROUTING));
    let w = what_if(&past(&leads), rules.rules(), draft.rules(), &RoutingState::default(), t(100), 5);
    assert_eq!((w.stage.changed, w.held), (0, 1), "{w:#?}");
    assert_eq!(w.owner.changed, 0, "a lead that keeps its stage stays routed");
}

#[test]
fn behaviour_comes_from_the_trail_up_to_the_last_scoring_or_from_the_stored_score() {
    let rules = Compiled::of(&scoring(SCORING), &routing(ROUTING));
    let mut l = lead(1, "FR", None);
    let form = |at: DateTime<Utc>, id: &str| Activity {
        id: id.into(),
        lead_id: l.id,
        at,
        kind: ActivityKind::FormSubmission { submission_id: l.id, form: None },
    };
    let trail = vec![form(l.created_at, "a"), form(t(500), "b")];
    let s = rules.0.score(&l, &trail[..1], l.created_at);
    assert_eq!((s.fit, s.behaviour), (15.0, 10.0));
    l.score = Some(s);
    let draft = Compiled::of(
        &scoring(&SCORING.replace("points = 10\n    half_life", "points = 25\n    half_life")),
        &routing(ROUTING),
    );
    let leads = [l];
    let with_trail = [PastLead { lead: &leads[0], activities: Some(&trail) }];
    let w = what_if(&with_trail, rules.rules(), draft.rules(), &RoutingState::default(), t(1000), 5);
    // The second form came after the last scoring: only the first counts, on both sides.
    assert_eq!(w.score.examples[0].from, "25");
    assert_eq!(w.score.examples[0].to, "40");
    assert_eq!(w.stage.moves, vec![Move { from: "Lead".into(), to: "MQL".into(), count: 1 }]);
    // Without the trail the stored behaviour points stand on both sides.
    let w = what_if(&past(&leads), rules.rules(), draft.rules(), &RoutingState::default(), t(1000), 5);
    assert_eq!(w.score.changed, 0, "{w:#?}");
    let stored = leads[0].score.as_ref().map(|s| s.reasons.clone()).unwrap_or_default();
    assert!(stored.iter().any(|r: &ScoreReason| r.kind == ScoreRuleKind::Behaviour));
}

#[test]
fn the_replay_starts_from_today_s_loads_less_the_leads_own() {
    let capped = ROUTING.replace(
        r#"{ id = "carla", name = "Carla", email = "carla@acme.example" }"#,
        r#"{ id = "carla", name = "Carla", email = "carla@acme.example", capacity = 2 }"#,
    );
    let rules = Compiled::of(&scoring(SCORING), &routing(&capped));
    let mut leads = processed((0..2).map(|n| lead(n, "US", Some("CTO"))).collect(), &rules);
    for l in &mut leads {
        l.owner = Some(Assignment {
            rep_id: "carla".into(),
            team_id: Some("americas".into()),
            assigned_at: l.created_at,
            sla_due_at: l.created_at,
            explanation: Vec::new(),
            via_fallback: false,
        });
    }
    let state = RoutingState { cursors: BTreeMap::new(), loads: BTreeMap::from([("carla".to_string(), 2)]) };
    let outcomes = replay(&past(&leads), rules.rules(), rules.rules(), &state, t(100));
    let owners: Vec<&str> =
        outcomes.iter().filter_map(|o| o.before.routed.as_ref()).map(|r| r.rep_id.as_str()).collect();
    assert_eq!(owners, ["carla", "carla"], "her two open leads are these two, not two more");
}

#[test]
fn invalid_leads_are_left_out() {
    let rules = Compiled::of(&scoring(SCORING), &routing(ROUTING));
    let mut bad = lead(1, "DE", Some("CTO"));
    bad.validity = Validity::Invalid { reasons: Vec::new() };
    let leads = [bad, lead(2, "DE", None)];
    let w = what_if(&past(&leads), rules.rules(), rules.rules(), &RoutingState::default(), t(1), 5);
    assert_eq!((w.leads, w.invalid), (1, 1));
}

/// `cargo test --release -p leadflow-core --lib what_if::tests::timing -- --ignored --nocapture`
#[test]
#[ignore = "a measurement: run it in release"]
fn timing() {
    // The sample rules (eight fit rules, three behaviour rules), as the console tries them.
    let sample_scoring = scoring(include_str!("../../../tests/config/scoring.toml"));
    let sample_routing = routing(include_str!("../../../tests/config/routing.toml"));
    let rules = Compiled::of(&sample_scoring, &sample_routing);
    let titles = [Some("CTO"), Some("Engineer"), None, Some("Head of Sales")];
    let countries = ["DE", "GB", "US", "FR", "BR"];
    let leads =
        processed((0..1000u64).map(|n| lead(n, countries[n as usize % 5], titles[n as usize % 4])).collect(), &rules);
    let mut more = sample_scoring.clone();
    more.fit[4].points = 25.0;
    let mut moved = sample_routing.clone();
    moved.teams[1].when[0].test = crate::rules::Test::In(vec!["US".into(), "CA".into(), "GB".into()]);
    let draft = Compiled::of(&more, &moved);
    let cases = [
        ("a scoring draft", Rules { scoring: &draft.0, routing: &rules.1 }),
        ("a routing draft", Rules { scoring: &rules.0, routing: &draft.1 }),
        ("both changed", draft.rules()),
    ];
    for (what, draft) in cases {
        let mut times = Vec::new();
        for _ in 0..200 {
            let started = Instant::now();
            let w = what_if(&past(&leads), rules.rules(), draft, &RoutingState::default(), t(2000), 10);
            times.push(started.elapsed());
            assert_eq!(w.leads, 1000);
        }
        times.sort();
        println!("what_if, 1,000 leads, {what}: p50 {:?}, p95 {:?}, max {:?}", times[100], times[190], times[199]);
    }
}

// --- properties ---------------------------------------------------------------------------

const COUNTRIES: [&str; 5] = ["DE", "GB", "US", "FR", "BR"];
const TITLES: [&str; 4] = ["CTO", "Engineer", "Head of Sales", "Student"];

fn arb_lead() -> impl Strategy<Value = Lead> {
    (
        0u64..100_000,
        0usize..5,
        proptest::option::of(0usize..4),
        any::<bool>(),
        0u8..3,
        proptest::option::of((0usize..5, 0u8..4)),
        proptest::option::of((-20.0f64..60.0, 0i64..10_000)),
        any::<bool>(),
    )
        .prop_map(|(n, country, title, free, stage, owner, stored, valid)| {
            let mut l = lead(n, COUNTRIES[country], title.map(|i| TITLES[i]));
            if free {
                l.contact.domain_kind = DomainKind::FreeMail;
            }
            l.lifecycle = [Lifecycle::Lead, Lifecycle::Mql, Lifecycle::Sql][stage as usize];
            l.owner = owner.map(|(rep, _)| Assignment {
                rep_id: ["anna", "ben", "carla", "desk", "gone"][rep].into(),
                team_id: None,
                assigned_at: l.created_at,
                sla_due_at: l.created_at,
                explanation: Vec::new(),
                via_fallback: false,
            });
            l.status = match owner.map(|(_, s)| s) {
                Some(1) => SalesStatus::Contacted,
                Some(2) => SalesStatus::Won,
                Some(3) => SalesStatus::Lost,
                _ => SalesStatus::New,
            };
            if let Some((behaviour, minutes)) = stored {
                l.score = Some(Score {
                    total: behaviour,
                    fit: 0.0,
                    behaviour,
                    grade: Grade::D,
                    reasons: vec![ScoreReason {
                        rule: "forms".into(),
                        kind: ScoreRuleKind::Behaviour,
                        points: round2(behaviour),
                        explanation: "Submitted a form".into(),
                    }],
                    computed_at: t(minutes),
                });
            }
            if !valid {
                l.validity = Validity::Invalid { reasons: Vec::new() };
            }
            l
        })
}

/// Leads with distinct ids, in no particular order of arrival.
fn arb_leads() -> impl Strategy<Value = Vec<Lead>> {
    proptest::collection::vec(arb_lead(), 0..60).prop_map(|mut leads| {
        for (i, l) in leads.iter_mut().enumerate() {
            l.id = LeadId::from_parts(1_770_000_000_000, i as u128);
        }
        leads
    })
}

fn arb_scoring() -> impl Strategy<Value = ScoringRules> {
    (-30i32..40, -30i32..40, -30i32..40, 0i32..60, 0i32..60, 10i32..60).prop_map(|(a, b, c, mql, extra, band)| {
        let text = SCORING
            .replace("points = 15", &format!("points = {a}"))
            .replace("points = 20", &format!("points = {b}"))
            .replace("points = 10\n    when", &format!("points = {c}\n    when"))
            .replace("mql = 40, sql = 80", &format!("mql = {mql}, sql = {}", mql + extra))
            .replace("min_fit = 50", &format!("min_fit = {band}"));
        scoring(&text)
    })
}

fn arb_routing() -> impl Strategy<Value = RoutingConfig> {
    let rep = (any::<bool>(), proptest::option::of(0u32..4), any::<bool>());
    (
        proptest::collection::vec(rep, 4),
        proptest::collection::vec(
            (
                proptest::sample::subsequence(COUNTRIES.to_vec(), 0..=5),
                proptest::collection::vec((0usize..4, 1u32..4), 1..4),
            ),
            0..4,
        ),
        0usize..4,
    )
        .prop_map(|(reps, teams, fallback)| {
            let ids = ["anna", "ben", "carla", "desk"];
            let mut r = routing(ROUTING);
            r.fallback_owner = ids[fallback].into();
            for (rep, (active, capacity, away)) in r.reps.iter_mut().zip(reps) {
                rep.active = active;
                rep.capacity = capacity;
                rep.out_of_office = away.then(|| crate::routing::Absence { from: t(0), until: t(50_000) });
            }
            r.teams = teams
                .into_iter()
                .enumerate()
                .map(|(i, (countries, members))| {
                    let mut members: Vec<crate::routing::Member> = members
                        .into_iter()
                        .map(|(m, weight)| crate::routing::Member { rep: ids[m].into(), weight })
                        .collect();
                    members.dedup_by(|a, b| a.rep == b.rep);
                    crate::routing::Team {
                        id: format!("t{i}"),
                        name: format!("Team {i}"),
                        when: vec![crate::rules::Condition {
                            field: "country".into(),
                            test: crate::rules::Test::In(countries.iter().map(|c| c.to_string()).collect()),
                        }],
                        members,
                    }
                })
                .collect();
            r
        })
}

fn arb_state() -> impl Strategy<Value = RoutingState> {
    proptest::collection::btree_map(
        prop_oneof![Just("anna"), Just("ben"), Just("carla")].prop_map(String::from),
        0u32..5,
        0..3,
    )
    .prop_map(|loads| RoutingState { cursors: BTreeMap::new(), loads })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn the_rules_in_force_as_the_draft_change_nothing(
        leads in arb_leads(),
        s in arb_scoring(),
        r in arb_routing(),
        state in arb_state(),
    ) {
        let a = Compiled::of(&s, &r);
        let b = Compiled::of(&s, &r);
        let w = what_if(&past(&leads), a.rules(), b.rules(), &state, t(20_000), 10);
        for c in [&w.score, &w.grade, &w.stage, &w.team, &w.owner] {
            prop_assert_eq!(c.changed, 0);
            prop_assert!(c.examples.is_empty() && c.moves.is_empty());
        }
        prop_assert_eq!((w.held, w.score_up, w.score_down), (0, 0, 0));
    }

    #[test]
    fn counts_examples_and_owners_hold_together(
        leads in arb_leads(),
        s1 in arb_scoring(), r1 in arb_routing(),
        s2 in arb_scoring(), r2 in arb_routing(),
        state in arb_state(),
        n in 0usize..6,
    ) {
        let (a, b) = (Compiled::of(&s1, &r1), Compiled::of(&s2, &r2));
        let input = past(&leads);
        let outcomes = replay(&input, a.rules(), b.rules(), &state, t(20_000));
        let w = summarize(&outcomes, 0, n);
        prop_assert_eq!(w.leads, leads.iter().filter(|l| l.is_valid()).count());
        prop_assert!(w.score_up + w.score_down == w.score.changed);
        for c in [&w.score, &w.grade, &w.stage, &w.team, &w.owner] {
            prop_assert!(c.changed <= w.leads);
            prop_assert_eq!(c.moves.iter().map(|m| m.count).sum::<usize>(), c.changed);
            prop_assert_eq!(c.examples.len(), c.changed.min(n));
            let mut seen = std::collections::BTreeSet::new();
            for e in &c.examples {
                prop_assert!(e.from != e.to);
                prop_assert!(seen.insert(e.lead_id), "each example once");
                let o = outcomes.iter().find(|o| o.lead_id == e.lead_id);
                prop_assert!(o.is_some(), "an example is a replayed lead");
            }
        }
        for e in &w.grade.examples {
            let o = outcomes.iter().find(|o| o.lead_id == e.lead_id).map(|o| (o.before.score.grade, o.after.score.grade));
            prop_assert!(o.is_some_and(|(x, y)| x != y), "a grade example changed grade");
        }
        for e in &w.owner.examples {
            let o = outcomes.iter().find(|o| o.lead_id == e.lead_id);
            let ids = o.map(|o| (o.before.routed.as_ref().map(|r| &r.rep_id), o.after.routed.as_ref().map(|r| &r.rep_id)));
            prop_assert!(ids.is_some_and(|(x, y)| x != y), "an owner example changed owner");
        }
        for o in &outcomes {
            if let Some(routed) = &o.after.routed {
                prop_assert!(b.1.rep(&routed.rep_id).is_some(), "{} is a rep of the draft", routed.rep_id);
            }
            prop_assert_eq!(o.after.routed.is_some(), o.after.stage >= Lifecycle::Mql);
            prop_assert!(o.after.stage >= leads.iter().find(|l| l.id == o.lead_id).map_or(Lifecycle::Lead, |l| l.lifecycle));
        }
    }

    #[test]
    fn one_decision_for_both_sides_is_the_decision_each_would_make(
        leads in arb_leads(),
        s1 in arb_scoring(), s2 in arb_scoring(), r1 in arb_routing(), r2 in arb_routing(),
        state in arb_state(),
    ) {
        // A scoring draft shares the routing object, a routing draft the scoring object; with
        // each compiled twice instead, the replay computes both sides apart. Both must agree.
        let current = Compiled::of(&s1, &r1);
        let twice = Compiled::of(&s1, &r1);
        let draft = Compiled::of(&s2, &r2);
        let input = past(&leads);
        let shared = replay(&input, current.rules(), Rules { scoring: &draft.0, routing: &current.1 }, &state, t(20_000));
        let apart = replay(&input, current.rules(), Rules { scoring: &draft.0, routing: &twice.1 }, &state, t(20_000));
        prop_assert_eq!(shared, apart);
        let shared = replay(&input, current.rules(), Rules { scoring: &current.0, routing: &draft.1 }, &state, t(20_000));
        let apart = replay(&input, current.rules(), Rules { scoring: &twice.0, routing: &draft.1 }, &state, t(20_000));
        prop_assert_eq!(shared, apart);
    }
}
