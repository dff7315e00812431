//! Scoring (fit rules, behaviour rules with decay, caps, grades, lifecycle) and the conditions
//! fit rules are made of.

mod common;

use chrono::Duration;
use common::{activity, hundredths, lead, lead_with, now};
use leadflow_core::model::{Activity, DomainKind, Grade, Lead, Lifecycle, ScoreRuleKind};
use leadflow_core::rules::{Condition, Test};
use leadflow_core::scoring::{BehaviourRule, CompiledScoring, FitRule, GradeBand, ScoringRules, Thresholds};
use proptest::prelude::*;

fn fit(id: &str, points: f64, field: &str, test: Test) -> FitRule {
    FitRule { id: id.into(), description: format!("rule {id}"), points, when: Condition { field: field.into(), test } }
}

fn behaviour(id: &str, activity: &str, points: f64, half_life_days: f64, max_points: Option<f64>) -> BehaviourRule {
    BehaviourRule {
        id: id.into(),
        description: format!("rule {id}"),
        activity: activity.into(),
        points,
        half_life_days,
        max_points,
    }
}

fn rules(fit: Vec<FitRule>, behaviour: Vec<BehaviourRule>) -> ScoringRules {
    ScoringRules {
        thresholds: Thresholds { mql: 50.0, sql: 80.0 },
        grades: vec![
            GradeBand { grade: Grade::B, min_fit: 20.0 },
            GradeBand { grade: Grade::A, min_fit: 40.0 },
            GradeBand { grade: Grade::C, min_fit: 10.0 },
        ],
        fit,
        behaviour,
    }
}

fn compile(r: &ScoringRules) -> CompiledScoring {
    r.compile().unwrap_or_else(|e| panic!("rules should compile: {e}"))
}

fn points_of(score: &leadflow_core::model::Score, rule: &str) -> Option<f64> {
    let found: Vec<_> = score.reasons.iter().filter(|r| r.rule == rule).collect();
    assert!(found.len() <= 1, "rule {rule} gave {} reasons: {:?}", found.len(), score.reasons);
    found.first().map(|r| r.points)
}

fn assert_close(got: f64, want: f64, tolerance: f64) {
    assert!((got - want).abs() <= tolerance, "got {got}, want {want} ± {tolerance}");
}

fn days(d: f64) -> Duration {
    Duration::milliseconds((d * 86_400_000.0).round() as i64)
}

#[test]
fn the_same_lead_activities_and_time_give_the_same_score() {
    let c = compile(&rules(
        vec![fit("de", 10.0, "country", Test::In(vec!["DE".into(), "AT".into()]))],
        vec![behaviour("opens", "email_open", 3.0, 7.0, None), behaviour("clicks", "email_click", 5.0, 10.0, None)],
    ));
    let n = now();
    let acts = vec![
        activity("email_open", n, days(1.3), 1),
        activity("email_click", n, days(4.7), 2),
        activity("email_open", n, days(9.1), 3),
    ];
    let first = c.score(&lead(), &acts, n);
    let again = c.score(&lead(), &acts.clone(), n);
    assert_eq!(first, again);
    assert_eq!(first.computed_at, n);
    assert_eq!(first.reasons.iter().map(|r| r.rule.as_str()).collect::<Vec<_>>(), ["de", "opens", "clicks"]);
}

#[test]
fn every_matching_fit_rule_gives_one_reason_and_the_others_none() {
    let c = compile(&rules(
        vec![
            fit("germany", 10.0, "country", Test::Equals("de".into())),
            fit("france", 10.0, "country", Test::Equals("FR".into())),
            fit("vp", 15.0, "job_title", Test::Contains(vec!["vp".into(), "chief".into()])),
            fit("has-phone", 5.0, "phone", Test::Exists(true)),
        ],
        vec![],
    ));
    let s = c.score(&lead(), &[], now());
    assert_eq!(points_of(&s, "germany"), Some(10.0));
    assert_eq!(points_of(&s, "france"), None);
    assert_eq!(points_of(&s, "vp"), Some(15.0));
    assert_eq!(points_of(&s, "has-phone"), Some(5.0));
    assert_eq!(s.total, 30.0);
    assert!(s.reasons.iter().all(|r| r.kind == ScoreRuleKind::Fit));
    let vp = s.reasons.iter().find(|r| r.rule == "vp").expect("vp reason");
    assert!(vp.explanation.contains("rule vp") && vp.explanation.contains("job_title contains vp or chief"), "{vp:?}");
}

#[test]
fn negative_points_lower_the_score() {
    let c = compile(&rules(
        vec![
            fit("free-mail", -15.0, "domain_kind", Test::Equals("free_mail".into())),
            fit("germany", 10.0, "country", Test::Equals("DE".into())),
        ],
        vec![behaviour("bounces", "email_sent", -4.0, 30.0, None)],
    ));
    let gmail = lead_with(|l| l.contact.domain_kind = DomainKind::FreeMail);
    let s = c.score(&gmail, &[activity("email_sent", now(), Duration::zero(), 1)], now());
    assert_eq!(points_of(&s, "free-mail"), Some(-15.0));
    assert_eq!(points_of(&s, "bounces"), Some(-4.0));
    assert_eq!(s.fit, -5.0);
    assert_eq!(s.behaviour, -4.0);
    assert_eq!(s.total, -9.0);
    assert_eq!(s.grade, Grade::D);
}

#[test]
fn behaviour_points_halve_with_every_half_life() {
    let c = compile(&rules(vec![], vec![behaviour("clicks", "email_click", 10.0, 7.0, None)]));
    let n = now();
    let one = |age: Duration| c.score(&lead(), &[activity("email_click", n, age, 1)], n).total;
    assert_close(one(Duration::zero()), 10.0, 0.0);
    assert_close(one(Duration::days(7)), 5.0, 0.01);
    assert_close(one(Duration::days(14)), 2.5, 0.01);
    assert_close(one(Duration::days(21)), 1.25, 0.01);
    assert_close(one(days(3.5)), 10.0 / 2f64.sqrt(), 0.01);
    // Two activities a half-life apart: 10 + 5.
    let both = c.score(
        &lead(),
        &[activity("email_click", n, Duration::zero(), 1), activity("email_click", n, Duration::days(7), 2)],
        n,
    );
    assert_close(both.total, 15.0, 0.01);
    assert!(both.reasons[0].explanation.contains("2 × email_click"), "{:?}", both.reasons);
    // Activities of other kinds are not counted.
    assert_eq!(c.score(&lead(), &[activity("email_open", n, Duration::zero(), 1)], n).reasons, vec![]);
}

#[test]
fn each_behaviour_rule_decays_with_its_own_half_life() {
    let c = compile(&rules(
        vec![],
        vec![behaviour("fast", "email_open", 8.0, 1.0, None), behaviour("slow", "form_submission", 8.0, 30.0, None)],
    ));
    let n = now();
    let s =
        c.score(&lead(), &[activity("email_open", n, days(2.0), 1), activity("form_submission", n, days(30.0), 2)], n);
    assert_close(points_of(&s, "fast").expect("fast"), 2.0, 0.01);
    assert_close(points_of(&s, "slow").expect("slow"), 4.0, 0.01);
}

#[test]
fn max_points_caps_what_a_rule_gives() {
    let c = compile(&rules(
        vec![],
        vec![
            behaviour("opens", "email_open", 10.0, 365.0, Some(25.0)),
            behaviour("unsubscribes", "email_sent", -10.0, 365.0, Some(15.0)),
        ],
    ));
    let n = now();
    let mut acts: Vec<Activity> = (0..5).map(|i| activity("email_open", n, Duration::hours(i), i as u32)).collect();
    acts.extend((0..4).map(|i| activity("email_sent", n, Duration::hours(i), 10 + i as u32)));
    let s = c.score(&lead(), &acts, n);
    assert_eq!(points_of(&s, "opens"), Some(25.0));
    assert_eq!(points_of(&s, "unsubscribes"), Some(-15.0));
    assert!(s.reasons.iter().all(|r| r.explanation.contains("capped")), "{:?}", s.reasons);
    // Under the cap nothing is capped.
    let few = c.score(&lead(), &acts[..2], n);
    assert_close(points_of(&few, "opens").expect("opens"), 20.0, 0.01);
    assert!(!few.reasons[0].explanation.contains("capped"));
}

#[test]
fn a_cap_bounds_the_size_of_a_rule_whichever_sign_it_is_written_with() {
    // Negative rules already read their cap as a size; a positive rule with a cap written as
    // `-20` must not turn its points negative.
    let c = compile(&rules(vec![], vec![behaviour("opens", "email_open", 10.0, 365.0, Some(-20.0))]));
    let n = now();
    let acts: Vec<Activity> = (0..3).map(|i| activity("email_open", n, Duration::minutes(i), i as u32)).collect();
    assert_eq!(points_of(&c.score(&lead(), &acts, n), "opens"), Some(20.0));
    assert_close(points_of(&c.score(&lead(), &acts[..1], n), "opens").expect("opens"), 10.0, 0.01);
}

#[test]
fn grades_follow_the_fit_bands_and_ignore_behaviour() {
    let c = compile(&rules(
        vec![fit("size", 0.0, "custom.employees", Test::Exists(true))],
        vec![behaviour("clicks", "email_click", 100.0, 30.0, None)],
    ));
    assert_eq!(c.grade(40.0), Grade::A);
    assert_eq!(c.grade(39.99), Grade::B);
    assert_eq!(c.grade(20.0), Grade::B);
    assert_eq!(c.grade(19.99), Grade::C);
    assert_eq!(c.grade(10.0), Grade::C);
    assert_eq!(c.grade(9.99), Grade::D);
    assert_eq!(c.grade(-5.0), Grade::D);
    let n = now();
    let s = c.score(&lead(), &[activity("email_click", n, Duration::zero(), 1)], n);
    assert_eq!((s.fit, s.behaviour, s.grade), (0.0, 100.0, Grade::D));
}

#[test]
fn a_band_reached_by_fit_points_that_add_up_to_it_is_reached() {
    let c = compile(&rules(
        vec![
            fit("a", 0.02, "country", Test::Exists(true)),
            fit("b", 16.08, "job_title", Test::Exists(true)),
            fit("c", 3.9, "company", Test::Exists(true)),
        ],
        vec![],
    ));
    let s = c.score(&lead(), &[], now());
    assert_eq!(s.fit, 20.0);
    assert_eq!(s.grade, Grade::B);
}

#[test]
fn a_total_whose_reasons_add_up_to_the_threshold_reaches_it() {
    // 20 + 16.13 + 13.87 = 50, but summed as binary fractions it is 49.99999999999999: a lead
    // whose reasons visibly add up to the MQL threshold must be an MQL.
    let c = compile(&rules(
        vec![
            fit("country", 20.0, "country", Test::Exists(true)),
            fit("title", 16.13, "job_title", Test::Exists(true)),
            fit("phone", 13.87, "phone", Test::Exists(true)),
        ],
        vec![],
    ));
    let s = c.score(&lead(), &[], now());
    assert_eq!(s.total, 50.0);
    assert_eq!(c.lifecycle_after(Lifecycle::Lead, s.total), Lifecycle::Mql);
}

#[test]
fn lifecycle_moves_forward_only_and_can_jump_to_sql() {
    let c = compile(&rules(vec![], vec![]));
    assert_eq!(c.lifecycle_after(Lifecycle::Lead, 49.99), Lifecycle::Lead);
    assert_eq!(c.lifecycle_after(Lifecycle::Lead, 50.0), Lifecycle::Mql);
    assert_eq!(c.lifecycle_after(Lifecycle::Lead, 80.0), Lifecycle::Sql);
    assert_eq!(c.lifecycle_after(Lifecycle::Lead, 500.0), Lifecycle::Sql);
    assert_eq!(c.lifecycle_after(Lifecycle::Mql, 79.0), Lifecycle::Mql);
    assert_eq!(c.lifecycle_after(Lifecycle::Mql, 80.0), Lifecycle::Sql);
    // A decayed score does not take a lead back from sales.
    assert_eq!(c.lifecycle_after(Lifecycle::Sql, 0.0), Lifecycle::Sql);
    assert_eq!(c.lifecycle_after(Lifecycle::Sql, -100.0), Lifecycle::Sql);
    assert_eq!(c.lifecycle_after(Lifecycle::Mql, 10.0), Lifecycle::Mql);
}

#[test]
fn unusable_rules_do_not_compile() {
    let bad_thresholds = ScoringRules { thresholds: Thresholds { mql: 80.0, sql: 50.0 }, ..rules(vec![], vec![]) };
    assert!(bad_thresholds.compile().is_err());
    let nan = ScoringRules { thresholds: Thresholds { mql: f64::NAN, sql: 50.0 }, ..rules(vec![], vec![]) };
    assert!(nan.compile().is_err());
    for half_life in [0.0, -1.0, f64::INFINITY, f64::NAN] {
        let r = rules(vec![], vec![behaviour("x", "email_open", 1.0, half_life, None)]);
        let err = r.compile().expect_err("a half-life must be positive").to_string();
        assert!(err.contains("behaviour rule x"), "{err}");
    }
    let r = rules(vec![fit("re", 1.0, "job_title", Test::Regex("(".into()))], vec![]);
    assert!(r.compile().expect_err("bad regex").to_string().contains("fit rule re"));
    let r = rules(vec![fit("inf", f64::INFINITY, "country", Test::Exists(true))], vec![]);
    assert!(r.compile().is_err());
    // A misspelt activity would never score and nobody would notice.
    let r = rules(vec![], vec![behaviour("opens", "email_opened", 2.0, 7.0, None)]);
    let err = r.compile().expect_err("unknown activity").to_string();
    assert!(err.contains("behaviour rule opens") && err.contains("email_opened"), "{err}");
}

#[test]
fn scoring_rules_read_from_toml() {
    let text = r#"
        thresholds = { mql = 50, sql = 80 }
        grades = [{ grade = "A", min_fit = 40 }, { grade = "B", min_fit = 20 }]

        [[fit]]
        id = "dach"
        description = "DACH region"
        points = 15
        when = { field = "country", in = ["DE", "AT", "CH"] }

        [[fit]]
        id = "big"
        description = "Large company"
        points = 10
        when = { field = "custom.employees", range = { min = 200 } }

        [[behaviour]]
        id = "clicks"
        description = "Clicked an email"
        activity = "email_click"
        points = 5
        half_life_days = 14
        max_points = 20
    "#;
    let r: ScoringRules = toml::from_str(text).expect("scoring TOML parses");
    let c = compile(&r);
    let n = now();
    let s = c.score(&lead(), &[activity("email_click", n, Duration::zero(), 1)], n);
    assert_eq!((s.fit, s.behaviour, s.total, s.grade), (25.0, 5.0, 30.0, Grade::B));
}

mod conditions {
    use super::*;
    use leadflow_core::rules::CompiledCondition;

    fn cond(field: &str, test: Test) -> CompiledCondition {
        Condition { field: field.into(), test }.compile("test").expect("condition compiles")
    }

    fn from_toml(text: &str) -> Condition {
        toml::from_str(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn equals_ignores_case_both_ways() {
        let de = lead();
        assert!(cond("country", Test::Equals("de".into())).matches(&de));
        assert!(
            cond("country", Test::Equals("DE".into())).matches(&lead_with(|l| l.contact.country = Some("de".into())))
        );
        assert!(!cond("country", Test::Equals("D".into())).matches(&de));
        assert!(!cond("country", Test::Equals("DEU".into())).matches(&de));
        assert!(cond("job_title", Test::Equals("vp of ENGINEERING".into())).matches(&de));
    }

    #[test]
    fn in_matches_any_listed_value_ignoring_case() {
        let c = cond("country", Test::In(vec!["at".into(), "De".into(), "CH".into()]));
        assert!(c.matches(&lead()));
        assert!(!c.matches(&lead_with(|l| l.contact.country = Some("FR".into()))));
        assert!(!cond("country", Test::In(vec![])).matches(&lead()));
        assert_eq!(c.describe(), "country is one of at, de, ch");
    }

    #[test]
    fn contains_finds_any_word_ignoring_case() {
        let c = cond("job_title", Test::Contains(vec!["CTO".into(), "vp".into()]));
        assert!(c.matches(&lead()), "VP of Engineering contains vp");
        assert!(c.matches(&lead_with(|l| l.contact.job_title = Some("Interim cto".into()))));
        assert!(!c.matches(&lead_with(|l| l.contact.job_title = Some("Engineer".into()))));
    }

    #[test]
    fn contains_matches_whole_words_and_phrases_only() {
        let c = cond("job_title", Test::Contains(vec!["head of".into(), "owner".into()]));
        let titled = |t: &str| lead_with(|l| l.contact.job_title = Some(t.into()));
        assert!(c.matches(&titled("Head of Sales")));
        assert!(c.matches(&titled("Owner")));
        assert!(c.matches(&titled("co-owner, Acme")), "punctuation is a word boundary");
        assert!(!c.matches(&titled("Headhunter")));
        assert!(!c.matches(&titled("Product Ownership Lead")));
        assert!(!c.matches(&titled("Forehead of state")), "the phrase must start at a word boundary");
    }

    #[test]
    fn a_misspelt_field_is_a_config_error_naming_it() {
        let err = Condition { field: "jobtitle".into(), test: Test::Exists(true) }
            .compile("fit rule senior")
            .expect_err("unknown field must not compile");
        let text = err.to_string();
        assert!(text.contains("fit rule senior") && text.contains("jobtitle"), "{text}");
        assert!(Condition { field: "custom.employees".into(), test: Test::Exists(true) }.compile("x").is_ok());
        assert!(Condition { field: "custom.".into(), test: Test::Exists(true) }.compile("x").is_err());
    }

    #[test]
    fn regex_ignores_case_and_is_not_anchored() {
        assert!(cond("email_domain", Test::Regex(r"ACME\.".into())).matches(&lead()));
        assert!(cond("job_title", Test::Regex("^vp ".into())).matches(&lead()));
        assert!(!cond("job_title", Test::Regex("^engineering".into())).matches(&lead()));
        assert!(Condition { field: "job_title".into(), test: Test::Regex("[".into()) }.compile("team t").is_err());
    }

    #[test]
    fn range_reads_the_field_as_a_number_with_inclusive_bounds() {
        let with = |v: &str| lead_with(|l| _ = l.custom.insert("employees".into(), v.into()));
        let c = cond("custom.employees", Test::Range { min: Some(50.0), max: Some(250.0) });
        assert!(c.matches(&with("50")));
        assert!(c.matches(&with("250")));
        assert!(c.matches(&with(" 120.5 ")));
        assert!(!c.matches(&with("49.99")));
        assert!(!c.matches(&with("251")));
        assert!(!c.matches(&with("about 100")), "text is not a number");
        assert!(cond("custom.employees", Test::Range { min: Some(200.0), max: None }).matches(&with("10000")));
        assert!(!cond("custom.employees", Test::Range { min: None, max: Some(10.0) }).matches(&with("11")));
        let inverted = Condition { field: "x".into(), test: Test::Range { min: Some(5.0), max: Some(1.0) } };
        assert!(inverted.compile("fit rule r").expect_err("min above max").to_string().contains("fit rule r"));
    }

    #[test]
    fn exists_tells_present_from_missing_and_empty_counts_as_missing() {
        let no_phone = lead_with(|l| l.contact.phone = None);
        let empty_phone = lead_with(|l| l.contact.phone = Some(String::new()));
        assert!(cond("phone", Test::Exists(true)).matches(&lead()));
        assert!(!cond("phone", Test::Exists(true)).matches(&no_phone));
        assert!(!cond("phone", Test::Exists(true)).matches(&empty_phone));
        assert!(cond("phone", Test::Exists(false)).matches(&no_phone));
        assert!(cond("phone", Test::Exists(false)).matches(&empty_phone));
        assert!(!cond("phone", Test::Exists(false)).matches(&lead()));
    }

    #[test]
    fn a_missing_field_fails_every_test_but_exists_false() {
        let bare = lead_with(|l| l.contact.country = None);
        let tests = [
            Test::Equals(String::new()),
            Test::In(vec![String::new()]),
            Test::Contains(vec![String::new()]),
            Test::Regex(".*".into()),
            Test::Range { min: None, max: None },
        ];
        for t in tests {
            assert!(!cond("country", t.clone()).matches(&bare), "{t:?} on a missing country");
        }
        assert!(cond("country", Test::Exists(false)).matches(&bare));
    }

    #[test]
    fn custom_fields_are_named_with_the_custom_prefix() {
        let l = lead_with(|l| _ = l.custom.insert("Industry".into(), "Fintech".into()));
        assert!(cond("custom.Industry", Test::Equals("FINTECH".into())).matches(&l));
        assert!(cond("custom.employees", Test::Equals("250".into())).matches(&l));
        assert!(!cond("custom.industry", Test::Exists(true)).matches(&l), "names are exact");
        assert!(
            Condition { field: "Industry".into(), test: Test::Exists(true) }.compile("x").is_err(),
            "without the prefix it is no field"
        );
        assert!(cond("custom.budget", Test::Exists(false)).matches(&l));
    }

    #[test]
    fn other_lead_fields_are_visible_to_rules() {
        let l = lead();
        assert!(cond("domain_kind", Test::Equals("corporate".into())).matches(&l));
        assert!(cond("consent", Test::Equals("true".into())).matches(&l));
        assert!(cond("lifecycle", Test::Equals("lead".into())).matches(&l));
        assert!(cond("status", Test::Equals("new".into())).matches(&l));
        assert!(cond("utm_source", Test::Equals("Google".into())).matches(&l));
        assert!(cond("form", Test::Equals("demo-request".into())).matches(&l));
    }

    #[test]
    fn conditions_read_from_toml() {
        assert_eq!(
            from_toml(
                r#"field = "country"
                in = ["DE", "AT"]"#
            ),
            Condition { field: "country".into(), test: Test::In(vec!["DE".into(), "AT".into()]) }
        );
        assert_eq!(
            from_toml(
                r#"field = "custom.employees"
                range = { min = 10 }"#
            )
            .test,
            Test::Range { min: Some(10.0), max: None }
        );
        assert_eq!(from_toml("field = \"phone\"\nexists = false").test, Test::Exists(false));
        assert_eq!(from_toml("field = \"job_title\"\nregex = \"^vp\"").test, Test::Regex("^vp".into()));
        assert!(toml::from_str::<Condition>("field = \"phone\"\nlike = \"x\"").is_err());
    }
}

// ---- properties ----------------------------------------------------------------------------

const FIELDS: [&str; 4] = ["country", "job_title", "custom.employees", "phone"];
const VALUES: [&str; 9] = ["DE", "de", "FR", "VP of Engineering", "250", "9", "cto", "of eng", "gineer"];
const ACTIVITIES: [&str; 3] = ["form_submission", "email_open", "email_click"];

fn arb_test() -> impl Strategy<Value = Test> {
    let value = prop::sample::select(&VALUES[..]).prop_map(String::from);
    prop_oneof![
        value.clone().prop_map(Test::Equals),
        prop::collection::vec(value.clone(), 0..3).prop_map(Test::In),
        prop::collection::vec(value, 1..3).prop_map(Test::Contains),
        (prop::option::of(0.0..300.0f64), prop::option::of(0.0..300.0f64)).prop_map(|(a, b)| match (a, b) {
            (Some(a), Some(b)) if a > b => Test::Range { min: Some(b), max: Some(a) },
            (min, max) => Test::Range { min, max },
        }),
        any::<bool>().prop_map(Test::Exists),
    ]
}

/// What a test means, written out independently of `rules.rs`.
fn oracle(test: &Test, value: Option<&str>) -> bool {
    let value = value.filter(|v| !v.is_empty()).map(str::to_lowercase);
    match (test, value) {
        (Test::Exists(want), v) => v.is_some() == *want,
        (_, None) => false,
        (Test::Equals(w), Some(v)) => w.to_lowercase() == v,
        (Test::In(ws), Some(v)) => ws.iter().any(|w| w.to_lowercase() == v),
        (Test::Contains(ws), Some(v)) => ws.iter().any(|w| {
            // Whole words: no letter or digit right before or after.
            let pattern = format!(
                r"(^|[^\p{{Alphabetic}}\p{{N}}]){}($|[^\p{{Alphabetic}}\p{{N}}])",
                regex::escape(&w.to_lowercase())
            );
            regex::Regex::new(&pattern).is_ok_and(|re| re.is_match(&v))
        }),
        (Test::Range { min, max }, Some(v)) => {
            v.trim().parse::<f64>().is_ok_and(|n| min.is_none_or(|m| n >= m) && max.is_none_or(|m| n <= m))
        }
        (Test::Regex(_), Some(_)) => unreachable!("not generated"),
    }
}

fn arb_fit_rules() -> impl Strategy<Value = Vec<FitRule>> {
    prop::collection::vec((prop::sample::select(&FIELDS[..]), arb_test(), -40.0..40.0f64), 0..6).prop_map(|v| {
        v.into_iter().enumerate().map(|(i, (field, test, points))| fit(&format!("f{i}"), points, field, test)).collect()
    })
}

fn arb_behaviour_rules() -> impl Strategy<Value = Vec<BehaviourRule>> {
    let rule = (prop::sample::select(&ACTIVITIES[..]), -30.0..30.0f64, 0.25..60.0f64, prop::option::of(0.0..60.0f64));
    prop::collection::vec(rule, 0..5).prop_map(|v| {
        v.into_iter()
            .enumerate()
            .map(|(i, (act, points, half, cap))| behaviour(&format!("b{i}"), act, points, half, cap))
            .collect()
    })
}

fn arb_lead() -> impl Strategy<Value = Lead> {
    let opt = |vals: &'static [&'static str]| prop::option::of(prop::sample::select(vals).prop_map(String::from));
    (
        opt(&["DE", "de", "FR", ""]),
        opt(&["VP of Engineering", "cto", "Intern"]),
        opt(&["250", "9", "abc", "", " 120 "]),
        opt(&["+4930123456"]),
    )
        .prop_map(|(country, title, employees, phone)| {
            lead_with(|l| {
                l.contact.country = country;
                l.contact.job_title = title;
                l.contact.phone = phone;
                l.custom.clear();
                if let Some(e) = employees {
                    l.custom.insert("employees".into(), e);
                }
            })
        })
}

/// Activities with ages from an hour in the future (clock skew) to 200 days ago.
fn arb_activities() -> impl Strategy<Value = Vec<Activity>> {
    prop::collection::vec((prop::sample::select(&ACTIVITIES[..]), -3_600_000i64..200 * 86_400_000), 0..12).prop_map(
        |v| {
            v.into_iter()
                .enumerate()
                .map(|(i, (name, age_ms))| activity(name, now(), Duration::milliseconds(age_ms), i as u32))
                .collect()
        },
    )
}

fn expected_behaviour(rule: &BehaviourRule, acts: &[Activity]) -> Option<f64> {
    let n = now();
    let mine: Vec<_> = acts.iter().filter(|a| a.kind.name() == rule.activity).collect();
    if mine.is_empty() {
        return None;
    }
    let raw: f64 = mine
        .iter()
        .map(|a| {
            let age_days = ((n - a.at).num_milliseconds().max(0) as f64) / 86_400_000.0;
            rule.points * 2f64.powf(-age_days / rule.half_life_days)
        })
        .sum();
    Some(match rule.max_points {
        Some(cap) => raw.clamp(-cap.abs(), cap.abs()),
        None => raw,
    })
}

proptest! {
    #[test]
    fn scores_are_deterministic_and_add_up_exactly(
        fit_rules in arb_fit_rules(),
        behaviour_rules in arb_behaviour_rules(),
        lead in arb_lead(),
        acts in arb_activities(),
    ) {
        let r = rules(fit_rules.clone(), behaviour_rules.clone());
        let c = compile(&r);
        let s = c.score(&lead, &acts, now());

        // Deterministic, also when the rules are compiled again.
        prop_assert_eq!(&s, &c.score(&lead.clone(), &acts.clone(), now()));
        prop_assert_eq!(&s, &compile(&r).score(&lead, &acts, now()));

        // Every reason is in hundredths, and the totals are exactly their sums, in hundredths.
        for reason in &s.reasons {
            prop_assert_eq!(reason.points, hundredths(reason.points) as f64 / 100.0, "{:?}", reason);
        }
        let sum = |kind: Option<ScoreRuleKind>| -> i64 {
            s.reasons.iter().filter(|r| kind.is_none_or(|k| r.kind == k)).map(|r| hundredths(r.points)).sum()
        };
        prop_assert_eq!(s.total, sum(None) as f64 / 100.0, "total of {:?}", s.reasons);
        prop_assert_eq!(s.fit, sum(Some(ScoreRuleKind::Fit)) as f64 / 100.0);
        prop_assert_eq!(s.behaviour, sum(Some(ScoreRuleKind::Behaviour)) as f64 / 100.0);
        prop_assert_eq!(hundredths(s.fit) + hundredths(s.behaviour), hundredths(s.total));

        // One reason per matching fit rule, naming it; none for the others.
        let mut expected_reasons = 0;
        for rule in &fit_rules {
            let want = oracle(&rule.when.test, lead.field(&rule.when.field).as_deref());
            let got: Vec<_> = s.reasons.iter().filter(|x| x.rule == rule.id).collect();
            prop_assert_eq!(got.len(), usize::from(want), "{:?} on {:?}", rule.when, lead.field(&rule.when.field));
            expected_reasons += usize::from(want);
            if let Some(x) = got.first() {
                prop_assert_eq!(x.kind, ScoreRuleKind::Fit);
                prop_assert_eq!(hundredths(x.points), hundredths(rule.points));
            }
        }
        // One reason per behaviour rule that gives points, with the decayed, capped sum.
        for rule in &behaviour_rules {
            let got: Vec<_> = s.reasons.iter().filter(|x| x.rule == rule.id).collect();
            // Points that round to nothing give no reason; right at half a hundredth either
            // outcome is fair.
            match expected_behaviour(rule, &acts) {
                Some(want) if want.abs() > 0.005 + 1e-9 => {
                    prop_assert_eq!(got.len(), 1, "{:?}", rule);
                    expected_reasons += 1;
                    prop_assert_eq!(got[0].kind, ScoreRuleKind::Behaviour);
                    prop_assert!((got[0].points - want).abs() <= 0.005 + 1e-9, "{} vs {}", got[0].points, want);
                }
                Some(want) if want.abs() >= 0.005 - 1e-9 => expected_reasons += got.len(),
                _ => prop_assert!(got.is_empty(), "{:?} gave {:?}", rule, got),
            }
        }
        prop_assert_eq!(s.reasons.len(), expected_reasons, "no reason without a rule: {:?}", s.reasons);

        // The grade is the best band the fit points reach.
        let want_grade = r.grades.iter().filter(|b| s.fit >= b.min_fit).map(|b| b.grade).min().unwrap_or(Grade::D);
        prop_assert_eq!(s.grade, want_grade);
    }

    #[test]
    fn lifecycle_is_the_furthest_of_current_and_score(total in -200.0..200.0f64, current in 0..3usize) {
        let c = compile(&rules(vec![], vec![]));
        let current = [Lifecycle::Lead, Lifecycle::Mql, Lifecycle::Sql][current];
        let by_score = if total >= 80.0 { Lifecycle::Sql } else if total >= 50.0 { Lifecycle::Mql } else { Lifecycle::Lead };
        let after = c.lifecycle_after(current, total);
        prop_assert!(after >= current);
        prop_assert_eq!(after, current.max(by_score));
    }
}
