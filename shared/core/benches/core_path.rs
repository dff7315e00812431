//! The pure per-lead work of the pipeline, step by step and as a whole, over a varied set of
//! generated leads. Target: the core path (parse → check → build → score → route) at
//! ≥ 500,000 leads/s on one core. Run with `cargo bench -p leadflow-core --bench core_path`.
//!
//! Every benchmark takes one lead per iteration and cycles through the whole set, so criterion's
//! time is per lead and its throughput (elem/s) is leads per second. Cycling through 1,000
//! different leads keeps the branch predictor and the allocator from seeing one lead a million
//! times, which would flatter the figures.
//!
//! Parsing is capture's: the body is read into `leadflow_core::submission::Fields` and the
//! `Submission` is built from them with `submission::from_body`, the functions capture calls.
//! `parse/queue_message` separately measures what the validate stage does with the queued
//! message: `Submission` deserialized straight from its JSON.

use std::collections::BTreeMap;
use std::hint::black_box;

use chrono::{DateTime, TimeZone, Utc};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use leadflow_core::config::{CompiledConfig, ConfigSources};
use leadflow_core::email::to_mime;
use leadflow_core::model::{
    Activity, ActivityKind, Assignment, Lead, LeadId, Lifecycle, RepId, Submission, TeamCursor, TeamId,
};
use leadflow_core::normalize::{classify_domain, normalize_country, normalize_email, normalize_phone, normalize_text};
use leadflow_core::submission::{self, Fields};
use leadflow_core::validate::{build_lead, check_submission};
use serde_json::{Map, Value, json};

const LEADS: usize = 1000;

// The local stack's allocator (`infra/src/lib.rs`), so that the figure is the local stack's. The
// Lambda functions use glibc's; docs/performance.md gives the path's figure with both.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn sources() -> ConfigSources {
    ConfigSources {
        settings: include_str!("../../app/config/leadflow.toml").into(),
        scoring: include_str!("../../app/config/scoring.toml").into(),
        routing: include_str!("../../app/config/routing.toml").into(),
        campaigns: vec![(
            "campaigns/welcome.toml".into(),
            include_str!("../../app/config/campaigns/welcome.toml").into(),
        )],
        assignment_subject: include_str!("../../app/config/templates/assignment.subject").into(),
        assignment_text: include_str!("../../app/config/templates/assignment.txt").into(),
        assignment_html: include_str!("../../app/config/templates/assignment.html").into(),
        reader: Default::default(),
    }
}

/// Tuesday 10:00 UTC: inside every sample rep's working hours (Berlin 12:00, London 11:00), so
/// routing evaluates availability and round-robin instead of falling through to the fallback.
fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 6, 10, 10, 0, 0).single().unwrap_or_default()
}

/// A small deterministic generator: the set must be the same on every run to compare runs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
    fn digits(&mut self, n: usize) -> String {
        (0..n).map(|_| char::from(b'0' + self.below(10) as u8)).collect()
    }
}

struct Market {
    /// How the country field is written on forms: codes, names, local names, any case.
    spellings: &'static [&'static str],
    tlds: &'static [&'static str],
    /// Phone number shapes; `#` is a random digit.
    phones: &'static [&'static str],
}

const MARKETS: &[Market] = &[
    Market {
        spellings: &["DE", "de", "Germany", "Deutschland", "DEU"],
        tlds: &["de", "com", "io"],
        phones: &["+49 30 ########", "030 #######", "+49 151 ########", "0151-########", "+49 (0)89 #######"],
    },
    Market {
        spellings: &["US", "USA", "United States", "united states of america", "us"],
        tlds: &["com", "io", "ai"],
        phones: &["(415) 8##-####", "+1 212 4##-####", "650.2##.####", "+1-303-5##-####"],
    },
    Market {
        spellings: &["GB", "UK", "United Kingdom", "gb"],
        tlds: &["co.uk", "com", "io"],
        phones: &["+44 20 7946 0###", "020 7### ####", "+44 7700 9#####", "07911 ######"],
    },
    Market {
        spellings: &["FR", "France", "fr"],
        tlds: &["fr", "com"],
        phones: &["+33 1 42 ## ## ##", "01 45 ## ## ##", "06 1# ## ## ##"],
    },
    Market {
        spellings: &["NL", "Netherlands", "the Netherlands"],
        tlds: &["nl", "com"],
        phones: &["+31 20 ### ####", "020-#######", "06-########"],
    },
    Market {
        spellings: &["JP", "Japan"],
        tlds: &["co.jp", "jp", "com"],
        phones: &["+81 3-####-####", "03-####-####", "090-####-####"],
    },
    Market {
        spellings: &["BR", "Brazil", "Brasil"],
        tlds: &["com.br", "com"],
        phones: &["+55 11 9####-####", "(21) 9####-####"],
    },
    Market { spellings: &["IN", "India"], tlds: &["in", "co.in", "com"], phones: &["+91 98### #####", "098## #####"] },
    Market { spellings: &["CA", "Canada"], tlds: &["ca", "com"], phones: &["+1 416 5##-####", "(604) 6##-####"] },
];

const FIRST: &[&str] = &[
    "Anna", "Ben", "José", "Zoë", "Łukasz", "Søren", "Priya", "Chen", "Aiko", "Fatima", "Oliver", "Marie", "Jürgen",
    "Sam", "Noah", "Emma", "Lucas", "Ingrid", "Mateo", "Yuki",
];
const LAST: &[&str] = &[
    "Schmidt",
    "Okafor",
    "García",
    "Müller",
    "Nowak",
    "Sørensen",
    "Patel",
    "Wang",
    "Tanaka",
    "Haddad",
    "Smith",
    "Dubois",
    "Van der Berg",
    "O'Brien",
    "Rossi",
    "Kowalski",
    "Silva",
    "Nguyen",
];
const COMPANY_WORDS: &[&str] = &[
    "acme",
    "globex",
    "initech",
    "umbrella",
    "hooli",
    "stark",
    "wayne",
    "tyrell",
    "cyberdyne",
    "soylent",
    "wonka",
    "gringotts",
    "oscorp",
    "vandelay",
    "dunder",
    "pied-piper",
    "aperture",
    "black-mesa",
    "massive",
    "nakatomi",
];
const COMPANY_SUFFIX: &[&str] = &["GmbH", "Inc.", "Ltd", "SAS", "B.V.", "K.K.", "Ltda.", "Pvt Ltd", "AG", "LLC"];
const TITLES: &[&str] = &[
    "Director of Engineering",
    "CTO",
    "VP Sales",
    "Head of Marketing",
    "Software Engineer",
    "Marketing Manager",
    "Student",
    "Founder & CEO",
    "Product Owner",
    "Analyst",
    "Chief Revenue Officer",
    "Sales Director",
    "Consultant",
    "Operations Lead",
    "Owner",
    "IT Administrator",
];
const FREE_MAIL: &[&str] =
    &["gmail.com", "yahoo.com", "outlook.com", "gmx.de", "web.de", "hotmail.co.uk", "icloud.com"];
const DISPOSABLE: &[&str] = &["mailinator.com", "10minutemail.com", "guerrillamail.com"];
const TIME_ZONES: &[&str] = &["Europe/Berlin", "america/new_york", "Europe/London", "Asia/Tokyo", "UTC"];
const SOURCES: &[&str] = &["google", "linkedin", "newsletter", "bing", "partner"];
const MEDIUMS: &[&str] = &["cpc", "organic", "email", "paid_social", "referral"];

fn ascii_fold(name: &str) -> String {
    name.chars()
        .filter_map(|c| match c {
            'é' => Some('e'),
            'ë' => Some('e'),
            'ü' => Some('u'),
            'ø' => Some('o'),
            'Ł' => Some('l'),
            'í' => Some('i'),
            'a'..='z' | 'A'..='Z' => Some(c.to_ascii_lowercase()),
            _ => None,
        })
        .collect()
}

fn fill(rng: &mut Rng, shape: &str) -> String {
    shape.chars().map(|c| if c == '#' { char::from(b'0' + rng.below(10) as u8) } else { c }).collect()
}

/// One landing-page body. About 75% corporate, 20% free-mail, 3% throwaway addresses; most
/// leave a phone, some a time zone, consent, UTM tags or a custom field.
fn landing_page_body(rng: &mut Rng, i: usize) -> String {
    let market = &MARKETS[rng.below(MARKETS.len())];
    let first = rng.pick(FIRST);
    let last = rng.pick(LAST);
    let word = rng.pick(COMPANY_WORDS);
    let domain = match rng.below(100) {
        0..=74 => {
            // A few international domain names, to exercise the punycode path.
            let stem = if rng.chance(3) { format!("{word}-müller") } else { word.to_string() };
            format!("{stem}{}.{}", rng.below(500), rng.pick(market.tlds))
        }
        75..=96 => rng.pick(FREE_MAIL).to_string(),
        _ => rng.pick(DISPOSABLE).to_string(),
    };
    let local = match rng.below(10) {
        0 => "info".to_string(),
        1 => format!("{}+web", ascii_fold(first)),
        2..=5 => format!("{}.{}", ascii_fold(first), ascii_fold(last)),
        _ => format!("{}{}{i}", &ascii_fold(first)[..1], ascii_fold(last)),
    };
    // Some visitors type their address in capitals or with stray spaces.
    let email =
        if rng.chance(10) { format!(" {}@{} ", local.to_uppercase(), domain) } else { format!("{local}@{domain}") };
    let mut body = Map::new();
    body.insert("email".into(), json!(email));
    body.insert("first_name".into(), json!(first));
    body.insert("last_name".into(), json!(last));
    if rng.chance(80) {
        body.insert("company".into(), json!(format!("{} {}", word.replace('-', " "), rng.pick(COMPANY_SUFFIX))));
    }
    if rng.chance(90) {
        body.insert("job_title".into(), json!(rng.pick(TITLES)));
    }
    if rng.chance(90) {
        body.insert("country".into(), json!(rng.pick(market.spellings)));
    }
    if rng.chance(70) {
        let shape = rng.pick(market.phones);
        body.insert("phone".into(), json!(fill(rng, shape)));
    }
    if rng.chance(15) {
        body.insert("time_zone".into(), json!(rng.pick(TIME_ZONES)));
    }
    if rng.chance(60) {
        body.insert("consent".into(), json!(rng.chance(80)));
        body.insert("consent_text".into(), json!("Yes, send me product news. I can unsubscribe at any time."));
    }
    body.insert("form".into(), json!(if rng.chance(50) { "contact" } else { "demo-request" }));
    if rng.chance(60) {
        body.insert("utm_source".into(), json!(rng.pick(SOURCES)));
        body.insert("utm_medium".into(), json!(rng.pick(MEDIUMS)));
        body.insert("utm_campaign".into(), json!(format!("spring-{}", rng.below(20))));
    }
    body.insert("page_url".into(), json!(format!("https://www.acme.example/pricing?plan={}", rng.digits(3))));
    if rng.chance(30) {
        body.insert("referrer".into(), json!("https://www.google.com/"));
    }
    if rng.chance(25) {
        body.insert("employees".into(), json!(["1-10", "11-50", "51-200", "201-1000", "1000+"][rng.below(5)]));
    }
    if rng.chance(10) {
        body.insert("message".into(), json!("Hi,\nwe would like a demo for our team next week.\nThanks!"));
    }
    Value::Object(body).to_string()
}

/// Capture's parse: JSON object → fields → `Submission`. `None` where capture answers 4xx.
fn parse_submission(body: &[u8], lead_id: LeadId, at: DateTime<Utc>) -> Option<Submission> {
    let fields = Fields::from_json(body).ok()?;
    let mut sub = submission::from_body(fields, "_gotcha", 20).ok()?;
    sub.lead_id = lead_id;
    sub.received_at = at;
    Some(sub)
}

/// What scoring sees for a new lead: its one form submission.
fn submission_activity(lead: &Lead) -> Activity {
    Activity {
        id: format!("submission-{}", lead.id),
        lead_id: lead.id,
        at: lead.created_at,
        kind: ActivityKind::FormSubmission { submission_id: lead.id, form: lead.attribution.first_touch.form.clone() },
    }
}

/// The routing state the store would hold: team cursors written back after every pick, and
/// open-lead counts per rep. Loads stay fixed (a steady state well under capacity) so that a
/// long benchmark does not fill every rep up and end in the fallback branch.
struct RoutingState {
    cursors: BTreeMap<TeamId, TeamCursor>,
    loads: BTreeMap<RepId, u32>,
}

impl RoutingState {
    fn new() -> Self {
        let loads = [("anna", 37), ("ben", 52), ("sam", 140)].into_iter().map(|(r, n)| (r.to_string(), n)).collect();
        Self { cursors: BTreeMap::new(), loads }
    }
}

/// The route stage's decision for a qualified lead, the cursor fed back as the store would.
fn route(config: &CompiledConfig, state: &mut RoutingState, lead: &Lead, now: DateTime<Utc>) -> Assignment {
    let empty = TeamCursor::default();
    let cursor = match config.routing.match_team(lead) {
        Some(team) => state.cursors.get(&team.id).unwrap_or(&empty),
        None => &empty,
    };
    let decision = config.routing.decide(lead, cursor, &state.loads, now);
    if let Some((team, mut next)) = decision.cursor {
        next.version += 1;
        state.cursors.insert(team, next);
    }
    Assignment {
        rep_id: decision.rep_id,
        team_id: decision.team_id,
        assigned_at: now,
        sla_due_at: decision.sla_due_at,
        explanation: decision.explanation,
        via_fallback: decision.via_fallback,
    }
}

/// Scores the lead in place, as the score stage does; answers whether it reached MQL.
fn score(config: &CompiledConfig, lead: &mut Lead, now: DateTime<Utc>) -> bool {
    let activities = [submission_activity(lead)];
    let score = config.scoring.score(lead, &activities, now);
    lead.lifecycle = config.scoring.lifecycle_after(lead.lifecycle, score.total);
    lead.score = Some(score);
    lead.lifecycle >= Lifecycle::Mql
}

/// Where a lead ended up on the core path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Rejected,
    Invalid,
    Assigned,
    Enrolled,
    Kept,
}

/// The whole core path for one lead: capture's parse and checks, validation's lead, scoring,
/// and routing (qualified) or nurture enrollment (not qualified).
fn core_path(
    config: &CompiledConfig,
    state: &mut RoutingState,
    body: &[u8],
    lead_id: LeadId,
    now: DateTime<Utc>,
) -> Outcome {
    let Some(mut sub) = parse_submission(body, lead_id, now) else { return Outcome::Rejected };
    match check_submission(&sub) {
        Ok(checked) => sub.checked_email = Some(checked),
        Err(_) => return Outcome::Rejected,
    }
    let mut lead = build_lead(&sub, &config.settings.validation);
    if !lead.is_valid() {
        return Outcome::Invalid;
    }
    if score(config, &mut lead, now) {
        lead.owner = Some(route(config, state, &lead, now));
        black_box(&lead);
        return Outcome::Assigned;
    }
    match config.campaigns.iter().find(|c| c.admits(&lead, now)) {
        Some(c) => {
            black_box(c.enroll(&lead, now));
            Outcome::Enrolled
        }
        None => Outcome::Kept,
    }
}

/// Everything the benchmarks feed on, prepared once.
struct Fixture {
    config: CompiledConfig,
    now: DateTime<Utc>,
    bodies: Vec<Vec<u8>>,
    ids: Vec<LeadId>,
    /// Submissions as queued for validation (JSON), for the validate stage's parse.
    queued: Vec<String>,
    /// Submissions that pass capture's checks.
    submissions: Vec<Submission>,
    /// Valid leads, as validation builds them.
    leads: Vec<Lead>,
    /// Valid leads scored to MQL or above, as routing receives them.
    qualified: Vec<Lead>,
    /// Qualified leads with their owner, as the assignment email is rendered for them.
    assigned: Vec<Lead>,
}

fn fixture() -> Fixture {
    let config = match CompiledConfig::compile(&sources()) {
        Ok(c) => c,
        Err(e) => panic!("the sample configuration does not compile: {e}"),
    };
    let now = now();
    let mut rng = Rng(0x5EED_1EAD_F10E);
    let bodies: Vec<Vec<u8>> = (0..LEADS).map(|i| landing_page_body(&mut rng, i).into_bytes()).collect();
    let ids: Vec<LeadId> =
        (0..LEADS).map(|i| LeadId::from_parts(now.timestamp_millis() as u64, 0xABCD_0000 + i as u128)).collect();
    let submissions: Vec<Submission> = bodies
        .iter()
        .zip(&ids)
        .filter_map(|(b, id)| parse_submission(b, *id, now))
        .filter_map(|mut s| {
            s.checked_email = Some(check_submission(&s).ok()?);
            Some(s)
        })
        .collect();
    let queued = submissions.iter().filter_map(|s| serde_json::to_string(s).ok()).collect();
    let leads: Vec<Lead> =
        submissions.iter().map(|s| build_lead(s, &config.settings.validation)).filter(Lead::is_valid).collect();
    let qualified: Vec<Lead> =
        leads.iter().cloned().filter_map(|mut l| score(&config, &mut l, now).then_some(l)).collect();
    let mut state = RoutingState::new();
    let assigned = qualified
        .iter()
        .cloned()
        .map(|mut l| {
            l.owner = Some(route(&config, &mut state, &l, now));
            l
        })
        .collect();
    let f = Fixture { config, now, bodies, ids, queued, submissions, leads, qualified, assigned };
    report_mix(&f);
    f
}

/// Prints what the generated set is made of, so the figures can be read against it.
fn report_mix(f: &Fixture) {
    let mut state = RoutingState::new();
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for (body, id) in f.bodies.iter().zip(&f.ids) {
        let outcome = core_path(&f.config, &mut state, body, *id, f.now);
        *counts.entry(format!("{outcome:?}")).or_default() += 1;
    }
    let phones = f.leads.iter().filter(|l| l.contact.phone.is_some()).count();
    let fallback = f.assigned.iter().filter(|l| l.owner.as_ref().is_some_and(|o| o.via_fallback)).count();
    let mut owners: BTreeMap<&str, usize> = BTreeMap::new();
    for l in &f.assigned {
        if let Some(o) = &l.owner {
            *owners.entry(o.rep_id.as_str()).or_default() += 1;
        }
    }
    eprintln!(
        "lead set: {} bodies → {} pass capture checks → {} valid leads ({} with a valid phone) → {} qualified \
         ({} via fallback; owners {:?}); core-path outcomes {:?}",
        f.bodies.len(),
        f.submissions.len(),
        f.leads.len(),
        phones,
        f.qualified.len(),
        fallback,
        owners,
        counts
    );
}

/// Benchmarks `step` over `items`, one item per iteration, cycling through the set.
fn per_lead<T>(
    c: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    items: &[T],
    mut step: impl FnMut(&T),
) {
    if items.is_empty() {
        eprintln!("{name}: no input in the generated set; skipped");
        return;
    }
    let mut i = 0;
    c.bench_function(name, |b| {
        b.iter(|| {
            step(&items[i]);
            i = (i + 1) % items.len();
        })
    });
}

fn benches(c: &mut Criterion) {
    let f = fixture();
    let config = &f.config;
    let now = f.now;
    let mut g = c.benchmark_group("core");
    g.throughput(Throughput::Elements(1));

    let inputs: Vec<(&Vec<u8>, LeadId)> = f.bodies.iter().zip(f.ids.iter().copied()).collect();
    per_lead(&mut g, "parse/capture_body", &inputs, |(body, id)| {
        black_box(parse_submission(black_box(body), *id, now));
    });
    per_lead(&mut g, "parse/queue_message", &f.queued, |text| {
        black_box(serde_json::from_str::<Submission>(black_box(text)).ok());
    });
    per_lead(&mut g, "validate/check_submission", &f.submissions, |s| {
        black_box(check_submission(black_box(s)).is_ok());
    });
    per_lead(&mut g, "validate/build_lead", &f.submissions, |s| {
        black_box(build_lead(black_box(s), &config.settings.validation));
    });
    per_lead(&mut g, "score", &f.leads, |l| {
        let activities = [submission_activity(l)];
        let s = config.scoring.score(black_box(l), &activities, now);
        black_box(config.scoring.lifecycle_after(l.lifecycle, s.total));
        black_box(s);
    });
    let mut state = RoutingState::new();
    per_lead(&mut g, "route", &f.qualified, |l| {
        black_box(route(config, &mut state, black_box(l), now));
    });
    let mut state = RoutingState::new();
    per_lead(&mut g, "whole_path", &inputs, |(body, id)| {
        black_box(core_path(config, &mut state, black_box(body), *id, now));
    });
    // The same leads with no phone number, to show what the rest of the path costs.
    let phoneless: Vec<(Vec<u8>, LeadId)> = inputs
        .iter()
        .filter_map(|(body, id)| {
            let Ok(Value::Object(mut fields)) = serde_json::from_slice::<Value>(body) else { return None };
            fields.remove("phone");
            Some((Value::Object(fields).to_string().into_bytes(), *id))
        })
        .collect();
    let mut state = RoutingState::new();
    per_lead(&mut g, "whole_path_without_phone", &phoneless, |(body, id)| {
        black_box(core_path(config, &mut state, black_box(body), *id, now));
    });
    g.finish();

    // What `build_lead` is made of, to see where its time goes.
    let mut g = c.benchmark_group("build_lead_parts");
    g.throughput(Throughput::Elements(1));
    per_lead(&mut g, "normalize_email", &f.submissions, |s| {
        black_box(normalize_email(black_box(&s.email)).ok());
    });
    per_lead(&mut g, "classify_domain", &f.leads, |l| {
        black_box(classify_domain(black_box(&l.contact.email_domain)));
    });
    let names: Vec<&str> = f.submissions.iter().filter_map(|s| s.last_name.as_deref()).collect();
    per_lead(&mut g, "normalize_text", &names, |n| {
        black_box(normalize_text("last_name", black_box(n), 100).ok());
    });
    let countries: Vec<&str> = f.submissions.iter().filter_map(|s| s.country.as_deref()).collect();
    per_lead(&mut g, "normalize_country", &countries, |c| {
        black_box(normalize_country(black_box(c)));
    });
    // As `build_lead` calls it: the region from the lead's country, else the configured default.
    let phones: Vec<(&str, Option<String>)> = f
        .submissions
        .iter()
        .filter_map(|s| {
            let region = s
                .country
                .as_deref()
                .and_then(normalize_country)
                .or_else(|| config.settings.validation.default_country.clone());
            Some((s.phone.as_deref()?, region))
        })
        .collect();
    per_lead(&mut g, "normalize_phone", &phones, |(phone, region)| {
        black_box(normalize_phone(black_box(phone), region.as_deref()).ok());
    });
    // The same call when every number is German: phonenumber keeps compiled regexes in one
    // global LRU of 100 entries, which a single country's patterns fit and nine countries' do not.
    let german: Vec<&(&str, Option<String>)> = phones.iter().filter(|(_, r)| r.as_deref() == Some("DE")).collect();
    per_lead(&mut g, "normalize_phone_de_only", &german, |(phone, region)| {
        black_box(normalize_phone(black_box(phone), region.as_deref()).ok());
    });
    g.finish();

    // Not part of the core-path target, but every assigned lead pays for it in the route stage.
    let mut g = c.benchmark_group("assignment_email");
    g.throughput(Throughput::Elements(1));
    let owned: Vec<(&Lead, &Assignment)> = f.assigned.iter().filter_map(|l| l.owner.as_ref().map(|o| (l, o))).collect();
    let render = |(lead, owner): &(&Lead, &Assignment)| {
        let rep = config.routing.rep(&owner.rep_id)?;
        config.templates.assignment_email(lead, rep, owner, &config.settings).ok()
    };
    per_lead(&mut g, "render", &owned, |x| {
        black_box(render(black_box(x)));
    });
    let rendered: Vec<_> = owned.iter().filter_map(render).map(|e| (format!("{}@leadflow.local", e.key), e)).collect();
    per_lead(&mut g, "to_mime", &rendered, |(message_id, email)| {
        black_box(to_mime(black_box(email), message_id, now));
    });
    per_lead(&mut g, "render+to_mime", &owned, |x| {
        if let Some(email) = render(black_box(x)) {
            black_box(to_mime(&email, &format!("{}@leadflow.local", email.key), now));
        }
    });
    g.finish();

    // What a Lambda function's first read of its configuration pays (compiled then, not at
    // start: `ConfigHandle::deferred`), and what the local stack pays once at start.
    let sample = sources();
    c.bench_function("config/compile_sample", |b| {
        b.iter(|| black_box(CompiledConfig::compile(black_box(&sample)).is_ok()));
    });
}

criterion_group! {
    name = core_path_benches;
    // Short runs: the machine has two cores shared with builds; per-lead work is microseconds,
    // so a few seconds give thousands of samples of the whole set.
    config = Criterion::default().warm_up_time(std::time::Duration::from_secs(2)).measurement_time(std::time::Duration::from_secs(5));
    targets = benches
}
criterion_main!(core_path_benches);
