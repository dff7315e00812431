//! The console over HTTP, against the running local stack: sign-in with one-time links, the
//! session cookie, CSRF, and the roles enforced on the server (a rep opens only their own leads,
//! a marketer reads but does not mark, a signed-out browser goes to sign-in and back).

use std::time::Duration;

use leadflow_tests::harness::Stack;
use reqwest::StatusCode;
use reqwest::header::{LOCATION, SET_COOKIE};
use serde_json::{Value, json};

const TOKEN: &str = "console-admin-token";

async fn stack() -> Stack {
    Stack::start(TOKEN, Duration::from_secs(1)).await
}

/// A lead good enough for sales (a CTO with a company address), so that it is assigned.
fn qualified(email: &str, first_name: &str, country: &str) -> Value {
    json!({"email": email, "first_name": first_name, "last_name": "Tester", "company": "Initech",
           "job_title": "CTO", "country": country, "phone": "+1 212 555 0100"})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_out_browser_signs_in_once_and_lands_on_the_page_it_asked_for() {
    let s = stack().await;
    let id = s.post_lead(&qualified("lee@globex.com", "Lee", "US")).await;
    assert_eq!(s.owner(&id).await, "carla");

    let page = format!("/console/leads/{id}");
    let resp = s.http.get(format!("{}{page}", s.base)).send().await.expect("page");
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let to = resp.headers().get(LOCATION).and_then(|v| v.to_str().ok()).expect("location").to_string();
    assert_eq!(to, format!("/console/sign-in?next=%2Fconsole%2Fleads%2F{id}"));
    let sign_in = s.http.get(format!("{}{to}", s.base)).send().await.expect("sign-in page");
    assert!(sign_in.text().await.expect("text").contains("leadflow console link --as"));

    let (_, link) = s.sign_in_link(Some("Carla@Acme.example"), Some(&page)).await;
    assert_eq!(link["role"], "sales");
    let url = link["url"].as_str().expect("url");
    let (path, query) = url.split_once('?').expect("a next");
    assert!(query.contains("next="), "{url}");
    // The button posts the `next` its page carries.
    let resp = s.http.post(path).form(&[("next", page.as_str())]).send().await.expect("redeem");
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(resp.headers().get(LOCATION).and_then(|v| v.to_str().ok()), Some(page.as_str()));
    let cookie = resp.headers().get(SET_COOKIE).and_then(|v| v.to_str().ok()).expect("cookie");
    let carla = cookie.split(';').next().expect("pair").to_string();
    let (status, html) = s.page_as(&carla, &page).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("Lee") && html.contains("Why Carla Diaz"), "{html}");

    // The code worked once.
    let again = s.http.post(path).form(&[("next", "/console")]).send().await.expect("redeem again");
    assert_eq!(again.status(), StatusCode::FORBIDDEN);
    assert!(again.headers().get(SET_COOKIE).is_none());
    assert!(again.text().await.expect("text").contains("used already"));

    // An address nobody configured gets no link; a forged cookie is no session.
    let (status, err) = s.sign_in_link(Some("stranger@evil.example"), None).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
    assert_eq!(err["error"]["field"], "email");
    let forged = format!("{carla}0");
    let (status, _) = s.page_as(&forged, &page).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    s.running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_are_enforced_on_the_server_and_every_form_needs_its_csrf_token() {
    let s = stack().await;
    let carlas = s.post_lead(&qualified("kim@initech.com", "<script>alert(1)</script>", "US")).await;
    let others = s.post_lead(&qualified("ola@acme.de", "Ola", "DE")).await;
    assert_eq!(s.owner(&carlas).await, "carla");
    let other_rep = s.owner(&others).await;
    assert_ne!(other_rep, "carla");

    let carla = s.sign_in("carla@acme.example").await;
    // Another rep's lead: refused, whatever the buttons show.
    let (status, html) = s.page_as(&carla, &format!("/console/leads/{others}")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(html.contains("This lead is not yours") && !html.contains("ola@acme.de"), "{html}");
    let (_, own) = s.page_as(&carla, &format!("/console/leads/{carlas}")).await;
    let token = Stack::csrf_of(&own);
    let resp =
        s.post_as(&carla, &format!("/console/leads/{others}/status"), &[("csrf", &token), ("status", "lost")]).await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert_eq!(s.lead(&others).await["status"], "new");

    // Lead data is escaped on her pages.
    assert!(own.contains("&lt;script&gt;") && !own.contains("<script>alert"), "lead page escapes");
    let (_, mine) = s.page_as(&carla, "/console/leads/mine").await;
    assert!(mine.contains("&lt;script&gt;") && !mine.contains("<script>alert"), "my leads escapes");
    assert!(mine.contains(&carlas) && !mine.contains(&others), "my leads lists her leads only");

    // Without the token, with another session's token, or from another origin: refused.
    let path = format!("/console/leads/{carlas}/status");
    let resp = s.post_as(&carla, &path, &[("status", "contacted")]).await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let other_session = s.sign_in("carla@acme.example").await;
    let (_, page2) = s.page_as(&other_session, &format!("/console/leads/{carlas}")).await;
    let resp = s.post_as(&carla, &path, &[("csrf", &Stack::csrf_of(&page2)), ("status", "contacted")]).await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let resp = s.post_from("http://evil.example", &carla, &path, &[("csrf", &token), ("status", "contacted")]).await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert_eq!(s.lead(&carlas).await["status"], "new", "nothing refused changed the lead");

    // A note over the limit is told next to the field, and nothing changes.
    let long = "x".repeat(2_001);
    let resp = s.post_from(&s.base, &carla, &path, &[("csrf", &token), ("status", "contacted"), ("note", &long)]).await;
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(resp.text().await.expect("text").contains("id=\"note-error\">A note may be at most 2000 characters."));
    assert_eq!(s.lead(&carlas).await["status"], "new");

    // Her own, with the token from her page: marked, with the note on the trail.
    let resp = s
        .post_from(
            &s.base,
            &carla,
            &path,
            &[("csrf", &token), ("status", "contacted"), ("note", "Called, demo on Friday")],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let lead = s.lead(&carlas).await;
    assert_eq!(lead["status"], "contacted");
    let entry = lead["activities"].as_array().and_then(|a| a.iter().find(|x| x["kind"] == "status_changed").cloned());
    let entry = entry.expect("a status entry");
    assert_eq!((entry["by"].as_str(), entry["note"].as_str()), (Some("carla"), Some("Called, demo on Friday")));
    let (_, shown) = s.page_as(&carla, &format!("/console/leads/{carlas}?done=contacted")).await;
    assert!(shown.contains("Marked contacted") && shown.contains("Called, demo on Friday"), "{shown}");

    // A marketer reads any lead but marks none.
    let maria = s.sign_in("maria@acme.example").await;
    let (status, html) = s.page_as(&maria, &format!("/console/leads/{others}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("Marketing can read leads"));
    let resp = s
        .post_as(
            &maria,
            &format!("/console/leads/{others}/status"),
            &[("csrf", &Stack::csrf_of(&html)), ("status", "won")],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert_eq!(s.lead(&others).await["status"], "new");
    let (status, _) = s.page_as(&maria, "/console/leads/mine").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a marketer has no leads of her own");
    let resp = s.post_as(&maria, "/console/view-as", &[("csrf", &Stack::csrf_of(&html)), ("rep", "carla")]).await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN, "only admins view as a rep");

    // An admin views the console as the other rep and sees that rep's lead.
    let boss = s.sign_in("boss@acme.example").await;
    let (_, home) = s.page_as(&boss, "/console").await;
    let resp = s.post_as(&boss, "/console/view-as", &[("csrf", &Stack::csrf_of(&home)), ("rep", &other_rep)]).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let cookie = resp.headers().get(SET_COOKIE).and_then(|v| v.to_str().ok()).expect("cookie");
    let boss_as_rep = cookie.split(';').next().expect("pair").to_string();
    let (status, mine) = s.page_as(&boss_as_rep, "/console/leads/mine").await;
    assert_eq!(status, StatusCode::OK);
    assert!(mine.contains(&others) && !mine.contains(&carlas) && mine.contains("viewing as"), "{mine}");
    s.running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicate_submissions_address_opens_the_lead_it_was_merged_into() {
    let s = stack().await;
    let first = s.post_lead(&qualified("max@initech.com", "Max", "US")).await;
    assert_eq!(s.owner(&first).await, "carla");
    // The same person again: the second submission's id becomes an alias of the first lead.
    let again = s.post_lead(&qualified("Max@Initech.com", "Max", "US")).await;
    assert_ne!(again, first);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while s.lead(&again).await["id"] != first {
        assert!(std::time::Instant::now() < deadline, "the second submission was not merged in 20 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let carla = s.sign_in("carla@acme.example").await;
    for id in [&first, &again] {
        let (status, html) = s.page_as(&carla, &format!("/console/leads/{id}")).await;
        assert_eq!(status, StatusCode::OK, "{id}: {html}");
        assert!(html.contains(&first) && html.contains("max@initech.com"), "{id} shows the lead: {html}");
        let trail = html.split_once("<h2>Trail</h2>").map_or("", |(_, trail)| trail);
        assert_eq!(trail.matches("Submitted a form").count(), 2, "{id} shows both submissions on the trail: {html}");
        assert!(trail.contains("Assigned to Carla"), "{id} shows the assignment on the trail: {html}");
    }
    let (status, html) = s.page_as(&carla, "/console/leads/01JZZZZZZZZZZZZZZZZZZZZZZZ").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{html}");
}
