//! The console's rule editors over HTTP, against the running local stack: only admins reach
//! them; a scoring or routing draft tried on the past leads says how many change grade, stage,
//! team and owner, with examples and their new reasons, and stores nothing; a save makes the next
//! version that the JSON API serves; a draft that does not read or compile is refused at its
//! field and line; the draft's size is capped; forms without the CSRF token are refused; what a
//! draft says is escaped when it is shown again.

use std::time::{Duration, Instant};

use leadflow_core::ports::Leads;
use leadflow_tests::harness::Stack;
use reqwest::StatusCode;
use reqwest::header::{COOKIE, LOCATION};
use serde_json::{Value, json};

const TOKEN: &str = "console-rules-token";

/// Posts a form as the person with `cookie`: the status, the page and where it sends the browser.
async fn send(s: &Stack, cookie: &str, path: &str, form: &[(&str, &str)]) -> (StatusCode, String, Option<String>) {
    let resp = s.post_as(cookie, path, form).await;
    let status = resp.status();
    let location = resp.headers().get(LOCATION).and_then(|v| v.to_str().ok()).map(str::to_string);
    (status, resp.text().await.expect("text"), location)
}

/// Posts a scoring draft from an editor opened on the deployed file.
async fn post_draft(
    s: &Stack,
    cookie: &str,
    csrf: &str,
    draft: String,
    action: &str,
) -> (StatusCode, String, Option<String>) {
    let form = [("csrf", csrf), ("toml", draft.as_str()), ("action", action), ("base", "")];
    send(s, cookie, "/console/admin/rules/scoring", &form).await
}

/// Waits until every lead is scored, and every qualified one assigned.
async fn settled(s: &Stack, ids: &[String]) {
    let deadline = Instant::now() + Duration::from_secs(20);
    for id in ids {
        loop {
            let lead = s.lead(id).await;
            let scored = lead["score"]["total"].is_number();
            let routed = lead["lifecycle"] == "lead" || lead["owner"]["rep_id"].is_string();
            if scored && routed {
                break;
            }
            assert!(Instant::now() < deadline, "lead {id} did not settle: {lead}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The editor's text, as a browser posts it back.
fn textarea(page: &str) -> String {
    Stack::textarea_of(page, "toml")
}

/// The summary line of one kind of change on a tried page, without its markup.
fn summary(page: &str, what: &str) -> String {
    let at = page.find(&format!("id=\"what-if-{what}\"")).unwrap_or_else(|| panic!("no {what} section:\n{page}"));
    let start = at + page[at..].find("class=\"summary\">").expect("a summary") + "class=\"summary\">".len();
    let end = start + page[start..].find("</p>").expect("its end");
    let mut text = String::new();
    let mut in_tag = false;
    for c in page[start..end].chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    text
}

/// Six leads; with the test scoring (fit: company address 15, senior title 20, company 5,
/// phone 5, target country 10; a form 10) they are:
/// A/MQL DE, B/MQL GB, B/MQL US, D/lead (free mail), B/MQL GB, C/lead FR.
fn leads() -> Vec<Value> {
    vec![
        json!({"email": "ana@acme.io", "first_name": "Ana", "company": "Acme", "job_title": "CTO",
               "country": "DE", "phone": "+49 30 901820"}),
        json!({"email": "bo@globex.example", "first_name": "Bo", "company": "Globex", "job_title": "Engineer",
               "country": "GB"}),
        json!({"email": "cy@initech.example", "first_name": "Cy", "company": "Initech", "job_title": "Engineer",
               "country": "US"}),
        json!({"email": "di@gmail.com", "first_name": "Di"}),
        json!({"email": "ed@umbrella.example", "first_name": "Ed", "company": "Umbrella", "job_title": "Analyst",
               "country": "GB"}),
        json!({"email": "fay@hooli.example", "first_name": "Fay", "country": "FR"}),
    ]
}

async fn stack_with_leads() -> (Stack, Vec<String>) {
    let s = Stack::start(TOKEN, Duration::from_secs(1)).await;
    let mut ids = Vec::new();
    for lead in leads() {
        ids.push(s.post_lead(&lead).await);
    }
    settled(&s, &ids).await;
    (s, ids)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scoring_draft_is_tried_on_past_leads_without_storing_anything_then_saved() {
    let (s, ids) = stack_with_leads().await;
    let bo = s.lead(&ids[1]).await;
    assert_eq!((bo["score"]["grade"].as_str(), bo["score"]["total"].as_f64()), (Some("B"), Some(40.0)));
    let boss = s.sign_in("boss@acme.example").await;

    let (status, overview) = s.page_as(&boss, "/console/admin/rules").await;
    assert_eq!(status, StatusCode::OK);
    assert!(overview.contains("As deployed (the file)") && overview.contains("MQL at 40, SQL at 80"), "{overview}");
    assert!(overview.contains("href=\"/console/admin/rules/scoring\""), "{overview}");

    let (status, editor) = s.page_as(&boss, "/console/admin/rules/scoring").await;
    assert_eq!(status, StatusCode::OK);
    let csrf = Stack::csrf_of(&editor);
    let toml = textarea(&editor);
    assert!(toml.starts_with("# Scoring"), "the deployed file as written, comments and all: {toml}");
    assert!(editor.contains("Save as version 1") && editor.contains("Try on the last 1,000 leads"), "{editor}");

    // Naming a company is worth 25 instead of 5: the three B leads with a company become A,
    // the CTO reaches SQL, the two leads without a company do not move.
    let company = "description = \"Named a company\"\npoints = 5";
    assert!(toml.contains(company), "{toml}");
    let draft = toml.replace(company, "description = \"Named a company\"\npoints = 25");
    let form = [("csrf", csrf.as_str()), ("toml", draft.as_str()), ("action", "try"), ("base", "")];
    let (status, page, _) = send(&s, &boss, "/console/admin/rules/scoring", &form).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("What this draft would do to all 6 leads"), "{page}");
    assert_eq!(summary(&page, "grade"), "3 of 6 leads change grade: 3 B → A.");
    assert_eq!(summary(&page, "lifecycle-stage"), "1 of 6 leads change lifecycle stage: 1 MQL → SQL.");
    assert_eq!(summary(&page, "team"), "0 of 6 leads change team.");
    assert_eq!(summary(&page, "owner"), "0 of 6 leads change owner.");
    assert_eq!(summary(&page, "score"), "4 of 6 leads change score: 4 higher, 0 lower.");
    // Examples name the leads, newest first, with the draft's reasons.
    let grade = &page[page.find("id=\"what-if-grade\"").expect("grade")
        ..page.find("id=\"what-if-lifecycle-stage\"").expect("stage")];
    let (ed, bo) =
        (grade.find(&format!("/console/leads/{}", ids[4])), grade.find(&format!("/console/leads/{}", ids[1])));
    assert!(ed.is_some() && bo.is_some() && ed < bo, "newest first: {grade}");
    assert!(!grade.contains(&format!("/console/leads/{}", ids[0])), "Ana stays A: {grade}");
    assert!(grade.contains("+25 Named a company (company is given)"), "{grade}");
    assert!(grade.contains("Total 60, grade A, stage MQL."), "{grade}");
    assert_eq!(textarea(&page), draft, "the draft stays in the editor");

    // A behaviour rule changed: every lead's form counts 30 instead of 10, read from its trail.
    // Ana reaches SQL; Fay (France, 35 → 55) qualifies and, the last to come in, goes to EMEA.
    let forms = "activity = \"form_submission\"\npoints = 10";
    assert!(toml.contains(forms), "{toml}");
    let more = toml.replace(forms, "activity = \"form_submission\"\npoints = 30");
    let form = [("csrf", csrf.as_str()), ("toml", more.as_str()), ("action", "try"), ("base", "")];
    let (status, page, _) = send(&s, &boss, "/console/admin/rules/scoring", &form).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("its behaviour from what it had done by then"), "{page}");
    assert_eq!(summary(&page, "score"), "6 of 6 leads change score: 6 higher, 0 lower.");
    assert_eq!(summary(&page, "lifecycle-stage"), "2 of 6 leads change lifecycle stage: 1 Lead → MQL, 1 MQL → SQL.");
    assert_eq!(summary(&page, "team"), "1 of 6 leads change team: 1 not routed → EMEA.");
    assert_eq!(summary(&page, "grade"), "0 of 6 leads change grade.");
    assert!(page.contains("+30 Submitted a form (1 × form_submission, 30 points each"), "{page}");

    // Trying stored nothing: no version, the leads as they were.
    let api = s.api("/admin/rules/scoring").await;
    assert_eq!(api["version"], Value::Null, "{api}");
    let bo = s.lead(&ids[1]).await;
    assert_eq!(bo["score"]["grade"], "B");

    // Saved: version 1, as the JSON API serves it, and the editor says so.
    let form = [("csrf", csrf.as_str()), ("toml", draft.as_str()), ("action", "save"), ("base", "")];
    let (status, _, location) = send(&s, &boss, "/console/admin/rules/scoring", &form).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let location = location.expect("a location");
    assert_eq!(location, "/console/admin/rules/scoring?done=saved&v=1");
    let api = s.api("/admin/rules/scoring").await;
    assert_eq!(api["version"], 1, "{api}");
    let company = api["scoring"]["fit"].as_array().and_then(|f| f.iter().find(|r| r["id"] == "company_given"));
    assert_eq!(company.map(|r| r["points"].clone()), Some(json!(25.0)), "{api}");
    let (_, editor) = s.page_as(&boss, &location).await;
    assert!(editor.contains("Saved as version 1.") && editor.contains("Save as version 2"), "{editor}");
    let saved = textarea(&editor);
    assert!(saved.contains("id = \"company_given\"") && saved.contains("points = 25\n"), "{saved}");

    // The saved version tried as a draft changes nothing; saved again, it stores nothing new.
    let form = [("csrf", csrf.as_str()), ("toml", saved.as_str()), ("action", "try"), ("base", "1")];
    let (status, page, _) = send(&s, &boss, "/console/admin/rules/scoring", &form).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("This draft changes nothing for these 6 leads."), "{page}");
    let form = [("csrf", csrf.as_str()), ("toml", saved.as_str()), ("action", "save"), ("base", "1")];
    let (_, _, location) = send(&s, &boss, "/console/admin/rules/scoring", &form).await;
    assert_eq!(location.as_deref(), Some("/console/admin/rules/scoring?done=unchanged&v=1"));

    // A draft made on the file's rules, saved after version 1 exists, is not saved over it
    // unknowingly.
    let form = [("csrf", csrf.as_str()), ("toml", toml.as_str()), ("action", "save"), ("base", "")];
    let (status, page, _) = send(&s, &boss, "/console/admin/rules/scoring", &form).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(page.contains("changed since this editor was opened (Version 1"), "{page}");
    assert_eq!(s.api("/admin/rules/scoring").await["version"], 1);
    s.running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_routing_draft_that_moves_a_country_shows_its_leads_changing_team_and_owner() {
    let (s, ids) = stack_with_leads().await;
    let boss = s.sign_in("boss@acme.example").await;
    let (_, editor) = s.page_as(&boss, "/console/admin/rules/routing").await;
    let csrf = Stack::csrf_of(&editor);
    let toml = textarea(&editor);
    let (emea, americas) = (r#"in = ["DE", "AT", "CH", "FR", "GB"]"#, r#"in = ["US", "CA"]"#);
    assert!(toml.contains(emea) && toml.contains(americas), "{toml}");
    let draft = toml.replace(emea, r#"in = ["DE", "AT", "CH", "FR"]"#).replace(americas, r#"in = ["US", "CA", "GB"]"#);
    let form = [("csrf", csrf.as_str()), ("toml", draft.as_str()), ("action", "try"), ("base", "")];
    let (status, page, _) = send(&s, &boss, "/console/admin/rules/routing", &form).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(summary(&page, "team"), "2 of 6 leads change team: 2 EMEA → Americas.");
    let owner = summary(&page, "owner");
    assert!(owner.starts_with("2 of 6 leads change owner: ") && owner.contains("→ Carla Diaz"), "{owner}");
    assert_eq!(summary(&page, "grade"), "0 of 6 leads change grade.");
    let section = &page[page.find("id=\"what-if-team\"").expect("team")..];
    assert!(
        section.contains(&format!("/console/leads/{}", ids[1]))
            && section.contains(&format!("/console/leads/{}", ids[4]))
    );
    assert!(section.contains("Team Americas matched: country is one of us, ca, gb."), "{section}");
    assert_eq!(s.api("/admin/rules/routing").await["version"], Value::Null, "a try stores nothing");
    for id in [&ids[1], &ids[4]] {
        let lead = s.lead(id).await;
        assert_eq!(lead["owner"]["team_id"], "emea", "the lead keeps its owner: {lead}");
    }

    // A team member that is no rep: refused at its field and line, nothing stored.
    let bad = draft.replace(r#"{ rep = "carla", weight = 1 }"#, r#"{ rep = "carlo", weight = 1 }"#);
    let form = [("csrf", csrf.as_str()), ("toml", bad.as_str()), ("action", "save"), ("base", "")];
    let (status, page, _) = send(&s, &boss, "/console/admin/rules/routing", &form).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let line = bad.lines().position(|l| l.contains("carlo")).expect("the line") + 1;
    assert!(page.contains(&format!("<strong>teams[1].members[0].rep</strong> (line {line}")), "{page}");
    assert!(page.contains("carlo is not a rep"), "{page}");

    let form = [("csrf", csrf.as_str()), ("toml", draft.as_str()), ("action", "save"), ("base", "")];
    let (_, _, location) = send(&s, &boss, "/console/admin/rules/routing", &form).await;
    assert_eq!(location.as_deref(), Some("/console/admin/rules/routing?done=saved&v=1"));
    let api = s.api("/admin/teams/americas").await;
    assert_eq!(api["version"], 1);
    assert_eq!(api["team"]["when"][0]["in"], json!(["US", "CA", "GB"]), "{api}");
    let (_, overview) = s.page_as(&boss, "/console/admin/rules").await;
    assert!(overview.contains("Version 1, saved"), "{overview}");
    s.running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_drafts_are_refused_at_their_line_and_escaped_when_shown_again() {
    let s = Stack::start(TOKEN, Duration::from_secs(1)).await;
    let id = s.post_lead(&leads()[1]).await;
    settled(&s, std::slice::from_ref(&id)).await;
    let boss = s.sign_in("boss@acme.example").await;
    let (_, editor) = s.page_as(&boss, "/console/admin/rules/scoring").await;
    let csrf = Stack::csrf_of(&editor);
    let toml = textarea(&editor);
    let post = |draft: String, action: &'static str| post_draft(&s, &boss, &csrf, draft, action);

    // Not TOML: the line and column.
    let broken = toml.replacen("mql = 40", "mql = = 40", 1);
    let line = broken.lines().position(|l| l.contains("mql = = 40")).expect("line") + 1;
    let (status, page, _) = post(broken.clone(), "try").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains(&format!("<strong>toml</strong> (line {line}, column ")), "{page}");
    assert!(page.contains("This is not valid TOML") && !page.contains("id=\"what-if\""), "{page}");
    assert_eq!(textarea(&page), broken, "the draft is kept");

    // A rule on a field leads do not have: named, with its line.
    let unknown = toml.replacen("field = \"job_title\"", "field = \"jobtitle\"", 1);
    let line = unknown.lines().position(|l| l.contains("jobtitle")).expect("line") + 1;
    let (status, page, _) = post(unknown, "save").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains(&format!("<strong>fit[3].when.field</strong> (line {line}")), "{page}");
    assert!(page.contains("unknown field `jobtitle`"), "{page}");

    // A misspelt key would be dropped without a word by a plain reader: here it is refused.
    let (status, page, _) = post(toml.replacen("max_points = 10", "max_pionts = 10", 1), "save").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains("<strong>behaviour[1].max_pionts</strong>"), "{page}");

    // Too long a draft.
    let (status, page, _) = post(format!("{toml}\n#{}\n", "x".repeat(70 * 1024)), "try").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains("at most 64 KiB"), "{page}");

    // Markup in a draft is text: in the editor, in the error's line, in the reasons.
    let script = "<script>alert(1)</script>";
    let marked = toml.replacen("Named a company", &format!("Named a company {script}"), 1).replacen(
        "points = 5\nwhen = { field = \"company\"",
        "points = 6\nwhen = { field = \"company\"",
        1,
    );
    assert_ne!(marked, toml);
    let (status, page, _) = post(marked.clone(), "try").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(!page.contains(script), "escaped");
    assert!(page.contains("+6 Named a company &lt;script&gt;alert(1)&lt;&#x2f;script&gt;"), "{page}");
    assert_eq!(textarea(&page), marked);
    let (status, page, _) = post(format!("{marked}\n{script} = \n"), "try").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(!page.contains(script) && page.contains("<code class=\"line\">&lt;script&gt;"), "{page}");

    for (path, version) in [("/admin/rules/scoring", Value::Null)] {
        assert_eq!(s.api(path).await["version"], version, "nothing was stored");
    }
    s.running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_admins_reach_the_rules_and_every_form_needs_its_token() {
    let s = Stack::start(TOKEN, Duration::from_secs(1)).await;
    let draft = "[thresholds]\nmql = 1\nsql = 2\n";
    for (email, home) in [("maria@acme.example", "/console"), ("anna@acme.example", "/console/leads/mine")] {
        let who = s.sign_in(email).await;
        let (_, home) = s.page_as(&who, home).await;
        assert!(!home.contains("/console/admin/rules"), "no Rules link for {email}");
        let csrf = Stack::csrf_of(&home);
        for path in ["/console/admin/rules", "/console/admin/rules/scoring", "/console/admin/rules/routing"] {
            let (status, page) = s.page_as(&who, path).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{email} {path}");
            assert!(page.contains("Only admins change the scoring and routing rules"), "{page}");
        }
        for kind in ["scoring", "routing"] {
            let form = [("csrf", csrf.as_str()), ("toml", draft), ("action", "save"), ("base", "")];
            let (status, _, _) = send(&s, &who, &format!("/console/admin/rules/{kind}"), &form).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{email} {kind}");
        }
    }

    // Signed out: to sign-in, and back here afterwards.
    let resp = s.http.get(format!("{}/console/admin/rules/routing", s.base)).send().await.expect("get");
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let to = resp.headers().get(LOCATION).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    assert_eq!(to, "/console/sign-in?next=%2Fconsole%2Fadmin%2Frules%2Frouting");

    // An admin's form without its token, with another's, or from another site: refused.
    let boss = s.sign_in("boss@acme.example").await;
    let (status, editor) = s.page_as(&boss, "/console/admin/rules/scoring").await;
    assert_eq!(status, StatusCode::OK);
    assert!(editor.contains("href=\"/console/admin/rules\""), "the Rules link");
    let toml = textarea(&editor);
    for csrf in ["", "0123456789abcdef0123456789abcdef"] {
        let form = [("csrf", csrf), ("toml", toml.as_str()), ("action", "save"), ("base", "")];
        let (status, page, _) = send(&s, &boss, "/console/admin/rules/scoring", &form).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert!(page.contains("This form was refused"), "{page}");
    }
    let csrf = Stack::csrf_of(&editor);
    let form = [("csrf", csrf.as_str()), ("toml", toml.as_str()), ("action", "save"), ("base", "")];
    let resp = s.post_from("https://evil.example", &boss, "/console/admin/rules/scoring", &form).await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert_eq!(s.api("/admin/rules/scoring").await["version"], Value::Null, "nothing was stored");
    s.running.shutdown().await;
}

/// How long "Try on the last 1,000 leads" takes with 10,000 leads in a local SQLite store, served
/// as `leadflow dev` serves the console: a scoring draft (the leads' stored behaviour points) and
/// a behaviour draft (1,000 trails read too). Prints p50 and p95 of 30 tries each.
/// `cargo test --release --workspace --test console_rules -- --ignored --nocapture`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: run it in release"]
async fn trying_a_draft_with_10000_leads_in_the_store() {
    use std::sync::Arc;

    use leadflow_admin::console::SignIn;
    use leadflow_admin::console::session::{self, Role};
    use leadflow_core::model::{Activity, ActivityKind, Lifecycle};
    use leadflow_core::ports::{Adapters, ConfigHandle};
    use leadflow_memory::{MemoryQueue, RecordingBus, RecordingMailer, SettableClock, fixtures};

    let dir = tempfile::tempdir().expect("temp dir");
    let store = leadflow_local::SqliteStore::open(dir.path().join("leadflow.db")).expect("store");
    let config = leadflow_tests::test_config();
    let (countries, titles) = (["DE", "GB", "US", "FR", "BR"], [Some("CTO"), Some("Engineer"), None]);
    for n in 1..=10_000u64 {
        let mut lead = fixtures::lead(n, &format!("lead{n}@example.com"));
        lead.created_at = fixtures::t(n as i64 * 60);
        lead.contact.country = Some(countries[n as usize % 5].into());
        lead.contact.job_title = titles[n as usize % 3].map(str::to_string);
        let form = Activity {
            id: "form".into(),
            lead_id: lead.id,
            at: lead.created_at,
            kind: ActivityKind::FormSubmission { submission_id: lead.id, form: None },
        };
        let score = config.scoring.score(&lead, std::slice::from_ref(&form), lead.created_at);
        lead.lifecycle = config.scoring.lifecycle_after(Lifecycle::Lead, score.total);
        lead.score = Some(score);
        if lead.lifecycle >= Lifecycle::Mql {
            lead = fixtures::owned_by(lead, ["anna", "ben", "carla"][n as usize % 3]);
        }
        store.create_lead(&lead, &[form]).await.expect("a lead");
    }
    let secret = config.settings.signing_keys.clone();
    let scoring = config.sources.scoring.clone();
    let ports = Arc::new(Adapters {
        store,
        queue: MemoryQueue::new(),
        mailer: RecordingMailer::new(),
        bus: RecordingBus::new(),
        clock: SettableClock::at(fixtures::t(700_000)),
        config: ConfigHandle::new(config),
    });
    let app = leadflow_admin::console::router(ports, SignIn::NotSetUp);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a port");
    let addr = listener.local_addr().expect("its address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    let boss = session::start("boss@acme.example", Role::Admin, None, chrono::Utc::now());
    let cookie = format!("{}={}", session::COOKIE, session::seal(&secret, &boss).expect("sealed"));
    let csrf = session::csrf_token(&secret, &boss);
    let http = reqwest::Client::new();
    for (what, draft) in [
        (
            "fit points",
            scoring.replacen(
                "points = 5\nwhen = { field = \"company\"",
                "points = 25\nwhen = { field = \"company\"",
                1,
            ),
        ),
        ("behaviour (trails read)", scoring.replacen("half_life_days = 14", "half_life_days = 7", 1)),
    ] {
        let mut times = Vec::new();
        for _ in 0..30 {
            let form = [("csrf", csrf.as_str()), ("toml", draft.as_str()), ("action", "try"), ("base", "")];
            let started = Instant::now();
            let resp = http
                .post(format!("http://{addr}/console/admin/rules/scoring"))
                .header(COOKIE, &cookie)
                .form(&form)
                .send()
                .await
                .expect("post");
            assert_eq!(resp.status(), StatusCode::OK);
            let page = resp.text().await.expect("page");
            times.push(started.elapsed());
            assert!(page.contains("What this draft would do to the last 1,000 leads"), "{page}");
        }
        times.sort();
        println!("try a {what} draft, 10,000 leads stored: p50 {:?}, p95 {:?}", times[15], times[28]);
    }
}
