//! The console's campaign pages over HTTP, against the running local stack: only marketing and
//! admins reach them; the editor refuses a bad campaign at its field and line and stores
//! nothing, saves a good one as the next version (as the JSON API sees it), pauses it; a new
//! campaign is created as version 1 and never over an existing one; leads enrolled in version 1
//! are moved to version 2 on purpose, once; what a campaign says is escaped on every page; a
//! form without its CSRF token is refused.

use std::time::{Duration, Instant};

use leadflow_core::ports::{Documents, Enrollments, Leads};
use leadflow_tests::harness::{Stack, location};
use reqwest::StatusCode;
use serde_json::json;

const TOKEN: &str = "console-campaigns-token";

async fn stack() -> Stack {
    Stack::start(TOKEN, Duration::from_secs(1)).await
}

/// The editor's text, as a browser posts it back.
fn textarea(page: &str) -> String {
    Stack::textarea_of(page, "yaml")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rep_reaches_no_campaign_page_nor_changes_one() {
    let s = stack().await;
    let carla = s.sign_in("carla@acme.example").await;
    let (_, home) = s.page_as(&carla, "/console/leads/mine").await;
    assert!(!home.contains("/console/campaigns"), "no Campaigns link for a rep");
    let token = Stack::csrf_of(&home);
    for path in [
        "/console/campaigns",
        "/console/campaigns/welcome",
        "/console/campaigns/welcome/edit",
        "/console/campaigns/new",
        "/console/campaigns/welcome/migrate",
    ] {
        assert_eq!(s.page_as(&carla, path).await.0, StatusCode::FORBIDDEN, "{path}");
    }
    let (status, _) = s.page_as(&carla, "/console/campaigns/welcome/preview?step=hello").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    for path in ["/console/campaigns/welcome/pause", "/console/campaigns/welcome/resume"] {
        assert_eq!(s.post_as(&carla, path, &[("csrf", &token)]).await.status(), StatusCode::FORBIDDEN, "{path}");
    }
    let edit = [("csrf", token.as_str()), ("yaml", "id: welcome\nname: Mine\nsteps: []\n"), ("action", "save")];
    assert_eq!(s.post_as(&carla, "/console/campaigns/welcome/edit", &edit).await.status(), StatusCode::FORBIDDEN);
    let dates = [("csrf", token.as_str()), ("start", "2030-01-01"), ("end", "")];
    assert_eq!(s.post_as(&carla, "/console/campaigns/welcome/schedule", &dates).await.status(), StatusCode::FORBIDDEN);
    let new = [("csrf", token.as_str()), ("yaml", "id: mine\nname: Mine\nsteps: [{id: x, type: exit}]\n")];
    assert_eq!(s.post_as(&carla, "/console/campaigns/new", &new).await.status(), StatusCode::FORBIDDEN);
    let migrate = [("csrf", token.as_str()), ("from_version", "")];
    assert_eq!(s.post_as(&carla, "/console/campaigns/welcome/migrate", &migrate).await.status(), StatusCode::FORBIDDEN);
    let api = s.api("/admin/campaigns/welcome").await;
    assert_eq!(api["version"], 1, "nothing was stored: {api}");
    let all = s.api("/admin/campaigns").await;
    assert_eq!(all["campaigns"].as_array().map(Vec::len), Some(1), "no campaign was created: {all}");
    s.running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_marketer_fixes_a_bad_step_saves_version_2_and_pauses_it() {
    let s = stack().await;
    // A lead below sales' bar enters the welcome series; its first email gives the figures.
    let resp = s
        .http
        .post(format!("{}/leads", s.base))
        .json(&json!({"email": "pat@gmail.com", "first_name": "Pat"}))
        .send()
        .await
        .expect("capture");
    assert!(resp.status().is_success());
    let maria = s.sign_in("maria@acme.example").await;

    let (status, list) = s.page_as(&maria, "/console/campaigns").await;
    assert_eq!(status, StatusCode::OK);
    assert!(list.contains("Welcome series") && list.contains("version 1") && list.contains("active"), "{list}");
    assert!(list.contains("href=\"/console/campaigns\""), "the Campaigns link");

    let deadline = Instant::now() + Duration::from_secs(20);
    let page = loop {
        let (status, page) = s.page_as(&maria, "/console/campaigns/welcome").await;
        assert_eq!(status, StatusCode::OK);
        if page.contains("sent <b>1</b>") {
            break page;
        }
        assert!(Instant::now() < deadline, "the first email was never counted:\n{page}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(page.contains("all 1 enrolled leads"), "honest about what is counted: {page}");
    assert!(page.contains("case-study") && page.contains("wait 2d"), "{page}");

    let (status, editor) = s.page_as(&maria, "/console/campaigns/welcome/edit").await;
    assert_eq!(status, StatusCode::OK);
    let token = Stack::csrf_of(&editor);
    let yaml = textarea(&editor);
    assert!(yaml.contains("id: welcome") && yaml.contains("wait: 2d"), "{yaml}");

    // A broken template in the second step: told at its field and line, nothing stored.
    let bad = yaml.replace("How Globex doubled its pipeline", "How {{ Globex doubled");
    assert_ne!(bad, yaml);
    let resp = s
        .post_as(&maria, "/console/campaigns/welcome/edit", &[("csrf", &token), ("yaml", &bad), ("action", "save")])
        .await;
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = resp.text().await.expect("text");
    let line = bad.lines().position(|l| l.contains("How {{ Globex")).expect("the bad line") + 1;
    assert!(page.contains(&format!("<strong>steps[1].subject</strong> (line {line})")), "{page}");
    assert!(page.contains("How {{ Globex doubled"), "the draft is kept in the editor");
    assert_eq!(s.api("/admin/campaigns/welcome").await["version"], 1);

    // A field that does not exist: the parser's own line.
    let unknown = yaml.replacen("subject:", "subjekt:", 1);
    let resp = s
        .post_as(&maria, "/console/campaigns/welcome/edit", &[("csrf", &token), ("yaml", &unknown), ("action", "save")])
        .await;
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = resp.text().await.expect("text");
    assert!(page.contains("steps[0].subjekt") && page.contains("(line "), "{page}");

    // Too long a campaign is refused with a message, not stored.
    let long = format!("{yaml}\n#{}\n", "x".repeat(70 * 1024));
    let resp = s
        .post_as(&maria, "/console/campaigns/welcome/edit", &[("csrf", &token), ("yaml", &long), ("action", "save")])
        .await;
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(resp.text().await.expect("text").contains("at most 64 KiB"));

    // Markup in a subject is the campaign's text, never the page's markup.
    let good = yaml.replace("How Globex doubled its pipeline", "<script>alert(1)</script> & more");
    let resp = s
        .post_as(
            &maria,
            "/console/campaigns/welcome/edit",
            &[("csrf", &token), ("yaml", &good), ("action", "preview"), ("step", "case-study")],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let page = resp.text().await.expect("text");
    assert!(!page.contains("<script>alert"), "escaped in the preview");
    assert!(page.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt; &amp; more"), "{page}");
    assert!(page.contains("<iframe class=\"email\" sandbox srcdoc=\""), "{page}");
    assert!(page.contains("for a sample lead") && page.contains("Sam Sample"), "{page}");
    assert_eq!(s.api("/admin/campaigns/welcome").await["version"], 1, "a preview stores nothing");

    let resp = s
        .post_as(&maria, "/console/campaigns/welcome/edit", &[("csrf", &token), ("yaml", &good), ("action", "save")])
        .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let to = location(&resp);
    assert_eq!(to, "/console/campaigns/welcome?done=saved&v=2");
    let api = s.api("/admin/campaigns/welcome").await;
    assert_eq!(api["version"], 2, "{api}");
    assert_eq!(api["campaign"]["steps"][1]["subject"], "<script>alert(1)</script> & more");
    let (_, page) = s.page_as(&maria, &to).await;
    assert!(page.contains("Saved as version 2."), "{page}");
    assert!(!page.contains("<script>alert"), "escaped on the campaign page");
    let (_, list) = s.page_as(&maria, "/console/campaigns").await;
    assert!(list.contains("version 2"), "{list}");

    // Saving the same again stores nothing new.
    let resp = s
        .post_as(&maria, "/console/campaigns/welcome/edit", &[("csrf", &token), ("yaml", &good), ("action", "save")])
        .await;
    assert_eq!(location(&resp), "/console/campaigns/welcome?done=unchanged&v=2");

    // The preview page, for the sample lead and for a lead that does not exist.
    let (status, page) = s.page_as(&maria, "/console/campaigns/welcome/preview?step=hello").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Welcome, Sam"), "{page}");
    let (status, page) = s.page_as(&maria, "/console/campaigns/welcome/preview?step=hello&lead=nobody").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains("id=\"lead-error\"") && page.contains("No lead has this id"), "{page}");

    // The schedule: a date that is not one, an end before the start, then a good one.
    let resp = s
        .post_as(&maria, "/console/campaigns/welcome/schedule", &[("csrf", &token), ("start", "soon"), ("end", "")])
        .await;
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(resp.text().await.expect("text").contains("id=\"start-error\""));
    let dates = [("csrf", token.as_str()), ("start", "2030-02-01"), ("end", "2030-01-01")];
    let resp = s.post_as(&maria, "/console/campaigns/welcome/schedule", &dates).await;
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(resp.text().await.expect("text").contains("id=\"end-error\""));
    let dates = [("csrf", token.as_str()), ("start", "2030-01-01"), ("end", "2030-01-31")];
    let resp = s.post_as(&maria, "/console/campaigns/welcome/schedule", &dates).await;
    assert_eq!(location(&resp), "/console/campaigns/welcome?done=scheduled&v=3");
    let api = s.api("/admin/campaigns/welcome").await;
    assert_eq!(api["campaign"]["schedule"], json!({"start": "2030-01-01T00:00:00Z", "end": "2030-02-01T00:00:00Z"}));
    let (_, page) = s.page_as(&maria, "/console/campaigns/welcome").await;
    assert!(page.contains("value=\"2030-01-31\"") && page.contains(">scheduled<"), "{page}");

    // Without the token: refused, nothing stored. With it: paused, then resumed.
    let resp = s.post_as(&maria, "/console/campaigns/welcome/pause", &[]).await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let resp = s.post_as(&maria, "/console/campaigns/welcome/pause", &[("csrf", "0123")]).await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert_eq!(s.api("/admin/campaigns/welcome").await["campaign"]["status"], "active");
    let resp = s.post_as(&maria, "/console/campaigns/welcome/pause", &[("csrf", &token)]).await;
    assert_eq!(location(&resp), "/console/campaigns/welcome?done=paused&v=4");
    assert_eq!(s.api("/admin/campaigns/welcome").await["campaign"]["status"], "paused");
    let (_, page) = s.page_as(&maria, "/console/campaigns/welcome").await;
    assert!(page.contains(">paused<") && page.contains(">Resume</button>"), "{page}");
    let resp = s.post_as(&maria, "/console/campaigns/welcome/resume", &[("csrf", &token)]).await;
    assert_eq!(location(&resp), "/console/campaigns/welcome?done=resumed&v=5");
    assert_eq!(s.api("/admin/campaigns/welcome").await["campaign"]["status"], "active");
    s.running.shutdown().await;
}

/// Posts the new-campaign form as the editor's Create button does.
async fn create(s: &Stack, cookie: &str, token: &str, yaml: &str) -> reqwest::Response {
    s.post_as(cookie, "/console/campaigns/new", &[("csrf", token), ("yaml", yaml), ("action", "save")]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_marketer_creates_a_campaign_but_never_over_another_one() {
    let s = stack().await;
    let maria = s.sign_in("maria@acme.example").await;
    let (_, list) = s.page_as(&maria, "/console/campaigns").await;
    assert!(list.contains("href=\"/console/campaigns/new\""), "the New campaign link: {list}");

    let (status, page) = s.page_as(&maria, "/console/campaigns/new").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("<h1>New campaign</h1>") && page.contains(">Create campaign</button>"), "{page}");
    let token = Stack::csrf_of(&page);
    let starter = textarea(&page);
    assert!(starter.contains("id: newsletter-welcome") && starter.contains("status: paused"), "{starter}");
    assert!(starter.lines().filter(|l| l.trim_start().starts_with('#')).count() >= 5, "commented: {starter}");

    // Without the form's token: refused, nothing created.
    let resp = s.post_as(&maria, "/console/campaigns/new", &[("yaml", &starter), ("action", "save")]).await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert_eq!(s.api("/admin/campaigns").await["campaigns"].as_array().map(Vec::len), Some(1));

    // A preview of the draft stores nothing.
    let form = [("csrf", token.as_str()), ("yaml", &starter), ("action", "preview"), ("step", "case-study")];
    let resp = s.post_as(&maria, "/console/campaigns/new", &form).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let page = resp.text().await.expect("text");
    assert!(page.contains("Step case-study for a sample lead") && page.contains("Example Corp"), "{page}");
    assert_eq!(s.api("/admin/campaigns").await["campaigns"].as_array().map(Vec::len), Some(1));

    // The starter, adapted, is created as version 1, paused as it says.
    let mine =
        starter.replace("id: newsletter-welcome", "id: spring-webinar").replace("Newsletter welcome", "Spring webinar");
    let resp = create(&s, &maria, &token, &mine).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let to = location(&resp);
    assert_eq!(to, "/console/campaigns/spring-webinar?done=created&v=1");
    let (_, page) = s.page_as(&maria, &to).await;
    assert!(page.contains("Created as version 1, paused"), "{page}");
    let api = s.api("/admin/campaigns/spring-webinar").await;
    assert_eq!((api["version"].as_u64(), api["campaign"]["status"].as_str()), (Some(1), Some("paused")), "{api}");
    assert_eq!(api["campaign"]["entry"]["forms"], json!(["newsletter"]));
    let (_, list) = s.page_as(&maria, "/console/campaigns").await;
    assert!(list.contains("Spring webinar") && list.contains("spring-webinar · version 1"), "{list}");

    // The same form sent again (a double click): nothing new, and the browser goes to it.
    let resp = create(&s, &maria, &token, &mine).await;
    assert_eq!(location(&resp), "/console/campaigns/spring-webinar?done=exists&v=1");
    assert_eq!(s.api("/admin/campaigns/spring-webinar").await["version"], 1);

    // An id that is taken, by a deployed campaign or one created here: told at the id's line,
    // what was typed kept, the other campaign untouched.
    let line = mine.lines().position(|l| l.starts_with("id:")).expect("the id line") + 1;
    for (id, name) in [("welcome", "Welcome series"), ("spring-webinar", "Spring webinar")] {
        let taken = mine.replace("id: spring-webinar", &format!("id: {id}")).replace("Spring webinar", "My own copy");
        let resp = create(&s, &maria, &token, &taken).await;
        assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY, "{id}");
        let page = resp.text().await.expect("text");
        assert!(page.contains(&format!("<strong>id</strong> (line {line})")), "{page}");
        assert!(page.contains(&format!("A campaign with the id {id} exists already ({name})")), "{page}");
        assert!(textarea(&page).contains("My own copy"), "what was typed is kept");
        let api = s.api(&format!("/admin/campaigns/{id}")).await;
        assert_eq!((api["version"].as_u64(), api["campaign"]["name"].as_str()), (Some(1), Some(name)), "{api}");
    }

    // The page's own address is no id; a broken step and broken YAML are told at their lines.
    let resp = create(&s, &maria, &token, &mine.replace("id: spring-webinar", "id: new")).await;
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(resp.text().await.expect("text").contains(&format!("<strong>id</strong> (line {line})")));
    let broken = mine.replace("id: spring-webinar", "id: summer").replace("How a team like", "How {{ a team like");
    let resp = create(&s, &maria, &token, &broken).await;
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = resp.text().await.expect("text");
    let bad = broken.lines().position(|l| l.contains("How {{ a team")).expect("the bad line") + 1;
    assert!(page.contains(&format!("<strong>steps[1].subject</strong> (line {bad})")), "{page}");
    assert_eq!(textarea(&page), broken, "the draft is kept as typed");
    let resp = create(&s, &maria, &token, "id: summer\nname: [unclosed\n").await;
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = resp.text().await.expect("text");
    assert!(page.contains("<strong>yaml</strong> (line ") && page.contains("not valid YAML"), "{page}");
    let resp = s.http.get(format!("{}/admin/campaigns/summer", s.base)).bearer_auth(&s.token).send().await;
    assert_eq!(resp.expect("the admin API").status(), StatusCode::NOT_FOUND, "nothing was stored");
    s.running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_marketer_moves_the_leads_of_version_1_to_version_2_once() {
    let s = stack().await;
    let pat = s.post_lead(&json!({"email": "pat@gmail.com", "first_name": "Pat"})).await;
    // The first email is sent: the lead waits for the case study, two days away, on version 1.
    let deadline = Instant::now() + Duration::from_secs(20);
    let enrollment = |lead: &serde_json::Value| lead["enrollments"][0].clone();
    while enrollment(&s.lead(&pat).await)["next_step"] != 1 {
        assert!(Instant::now() < deadline, "the first email was never sent: {}", s.lead(&pat).await);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let maria = s.sign_in("maria@acme.example").await;
    let (_, page) = s.page_as(&maria, "/console/campaigns/welcome").await;
    assert!(!page.contains("/console/campaigns/welcome/migrate"), "one version: nothing to move");

    // Version 2 rewrites the case study.
    let (_, editor) = s.page_as(&maria, "/console/campaigns/welcome/edit").await;
    let token = Stack::csrf_of(&editor);
    let v2 = textarea(&editor).replace("How Globex doubled its pipeline", "How Globex tripled its pipeline");
    let resp = s
        .post_as(&maria, "/console/campaigns/welcome/edit", &[("csrf", &token), ("yaml", &v2), ("action", "save")])
        .await;
    assert_eq!(location(&resp), "/console/campaigns/welcome?done=saved&v=2");
    let (_, page) = s.page_as(&maria, "/console/campaigns/welcome").await;
    assert!(page.contains("Active on older versions: 1 lead."), "{page}");
    assert!(
        page.contains("<a href=\"/console/campaigns/welcome/migrate\">Move enrolled leads to version 2</a>"),
        "{page}"
    );

    // The confirmation counts and explains, and changes nothing.
    let (status, page) = s.page_as(&maria, "/console/campaigns/welcome/migrate").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Version 1: <strong>1 lead</strong>"), "{page}");
    assert!(page.contains("continues at the step with the same id") && page.contains("finishes it"), "{page}");
    assert!(page.contains("<option value=\"1\">only version 1 (1 lead)</option>"), "{page}");
    let on_v1 = (Some(1), Some(1));
    let version_and_step = |e: serde_json::Value| (e["campaign_version"].as_u64(), e["next_step"].as_u64());
    assert_eq!(version_and_step(enrollment(&s.lead(&pat).await)), on_v1, "a GET moves nobody");

    // Without the token, or from a version that is not an older one: refused, nobody moved.
    let resp = s.post_as(&maria, "/console/campaigns/welcome/migrate", &[("from_version", "")]).await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    for bad in ["2", "0", "abc", "-1", "99999999999"] {
        let form = [("csrf", token.as_str()), ("from_version", bad)];
        let resp = s.post_as(&maria, "/console/campaigns/welcome/migrate", &form).await;
        assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
        let page = resp.text().await.expect("text");
        assert!(page.contains("id=\"from_version-error\">Choose a version older than the latest, 2"), "{page}");
        assert!(page.contains("aria-describedby=\"from_version-error\""), "{page}");
    }
    assert_eq!(version_and_step(enrollment(&s.lead(&pat).await)), on_v1);

    // Moved: at the same step of version 2; the lead's page says so.
    let form = [("csrf", token.as_str()), ("from_version", "1")];
    let resp = s.post_as(&maria, "/console/campaigns/welcome/migrate", &form).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let page = resp.text().await.expect("text");
    assert!(page.contains("Moved 1 lead to version 2."), "{page}");
    assert!(page.contains("No active lead is on an older version"), "counted again after the move: {page}");
    assert_eq!(version_and_step(enrollment(&s.lead(&pat).await)), (Some(2), Some(1)));
    let (_, lead_page) = s.page_as(&maria, &format!("/console/leads/{pat}")).await;
    assert!(lead_page.contains("welcome (version 2)"), "{lead_page}");

    // Again: nothing more to move, and the campaign page no longer offers it.
    let resp = s.post_as(&maria, "/console/campaigns/welcome/migrate", &[("csrf", &token), ("from_version", "")]).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.text().await.expect("text").contains("No lead was moved."));
    assert_eq!(version_and_step(enrollment(&s.lead(&pat).await)), (Some(2), Some(1)));
    let (_, page) = s.page_as(&maria, "/console/campaigns/welcome").await;
    assert!(!page.contains("/console/campaigns/welcome/migrate"), "{page}");
    s.running.shutdown().await;
}

/// How long the campaign page (which looks for leads on older versions) and the move's
/// confirmation (which counts them all) take with 10,000 leads enrolled in version 1 of a
/// campaign at version 2, in a local SQLite store served as `leadflow dev` serves the console;
/// and the move itself, once. Prints p50 and p95 of 30 loads each.
/// `cargo test --release --workspace --test console_campaigns -- --ignored --nocapture`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: run it in release"]
async fn the_move_s_pages_with_10000_enrolled_leads() {
    use std::sync::Arc;

    use leadflow_admin::console::SignIn;
    use leadflow_admin::console::session::{self, Role};
    use leadflow_core::campaign::Campaign;
    use leadflow_core::model::Document;
    use leadflow_core::ports::{Adapters, ConfigHandle};
    use leadflow_memory::{MemoryQueue, RecordingBus, RecordingMailer, SettableClock, fixtures};
    use reqwest::header::COOKIE;

    let dir = tempfile::tempdir().expect("temp dir");
    let store = leadflow_local::SqliteStore::open(dir.path().join("leadflow.db")).expect("store");
    let config = leadflow_tests::test_config();
    let welcome = config.campaign("welcome").cloned().expect("the welcome series");
    for n in 1..=10_000u64 {
        let mut lead = fixtures::lead(n, &format!("lead{n}@example.com"));
        lead.created_at = fixtures::t(n as i64 * 60);
        store.create_lead(&lead, &[]).await.expect("a lead");
        assert!(store.enroll(&welcome.enroll(&lead, lead.created_at), &[]).await.expect("enrolled"));
    }
    for (version, name) in [(1, "Welcome series"), (2, "Welcome series, rewritten")] {
        let campaign = Campaign { version, name: name.into(), ..welcome.campaign.clone() };
        let doc = Document {
            name: leadflow_app::live::campaign_document("welcome"),
            version,
            body: serde_json::to_string(&campaign).expect("json"),
            saved_at: fixtures::t(700_000),
        };
        store.put_document(&doc).await.expect("a version");
    }
    let secret = config.settings.signing_keys.clone();
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
    let maria = session::start("maria@acme.example", Role::Marketing, None, chrono::Utc::now());
    let cookie = format!("{}={}", session::COOKIE, session::seal(&secret, &maria).expect("sealed"));
    let csrf = session::csrf_token(&secret, &maria);
    let http = reqwest::Client::new();
    for (what, path, shows) in [
        ("campaign page", "/console/campaigns/welcome", "Move enrolled leads to version 2"),
        ("move's confirmation", "/console/campaigns/welcome/migrate", "Version 1: <strong>10,000 leads</strong>"),
    ] {
        let mut times = Vec::new();
        for _ in 0..30 {
            let started = Instant::now();
            let resp = http.get(format!("http://{addr}{path}")).header(COOKIE, &cookie).send().await.expect("get");
            assert_eq!(resp.status(), StatusCode::OK);
            let page = resp.text().await.expect("page");
            times.push(started.elapsed());
            assert!(page.contains(shows), "{page}");
        }
        times.sort();
        println!("{what}, 10,000 leads on version 1: p50 {:?}, p95 {:?}", times[15], times[28]);
    }
    let started = Instant::now();
    let resp = http
        .post(format!("http://{addr}/console/campaigns/welcome/migrate"))
        .header(COOKIE, &cookie)
        .form(&[("csrf", csrf.as_str()), ("from_version", "")])
        .send()
        .await
        .expect("post");
    let page = resp.text().await.expect("page");
    println!("moving 10,000 leads: {:?}", started.elapsed());
    assert!(page.contains("Moved 10,000 leads to version 2."), "{page}");
}
