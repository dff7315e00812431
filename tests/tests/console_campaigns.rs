//! The console's campaign pages over HTTP, against the running local stack: only marketing and
//! admins reach them; the editor refuses a bad campaign at its field and line and stores
//! nothing, saves a good one as the next version (as the JSON API sees it), pauses it; what a
//! campaign says is escaped on every page; a form without its CSRF token is refused.

use std::time::{Duration, Instant};

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
    for path in ["/console/campaigns", "/console/campaigns/welcome", "/console/campaigns/welcome/edit"] {
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
    let api = s.api("/admin/campaigns/welcome").await;
    assert_eq!(api["version"], 1, "nothing was stored: {api}");
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
