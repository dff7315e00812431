//! Marketing's Leads page, its CSV and the suppression list, over HTTP against the running local
//! stack: every filter narrows to exactly the leads the admin API says match, pages cover every
//! match once, the CSV is the same leads quoted and defused, bad input is told at its field, a
//! rep is refused, and the suppression list shows an unsubscribed and an erased lead and answers
//! "is this address suppressed?".

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use leadflow_tests::browser::wait_for_eml;
use leadflow_tests::harness::Stack;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_DISPOSITION, CONTENT_TYPE, LOCATION};
use serde_json::{Value, json};

const TOKEN: &str = "console-leads-token";

async fn stack() -> Stack {
    Stack::start(TOKEN, Duration::from_secs(1)).await
}

/// Waits until the pipeline is done with the lead (scored, then assigned or enrolled); answers
/// it as the admin API shows it.
async fn settled(s: &Stack, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let lead = s.lead(id).await;
        let enrolled = lead["enrollments"].as_array().is_some_and(|e| !e.is_empty());
        if !lead["grade"].is_null() && (!lead["owner"].is_null() || enrolled) {
            return lead;
        }
        assert!(Instant::now() < deadline, "lead {id} was not scored and placed in 20 s: {lead}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The lead ids of the page's table, in order.
fn table_ids(html: &str) -> Vec<String> {
    let Some(start) = html.find("id=\"leads-table\"") else { return Vec::new() };
    let table = &html[start..html[start..].find("</table>").map_or(html.len(), |e| start + e)];
    table.split("href=\"/console/leads/").skip(1).map(|s| s.split('"').next().unwrap_or_default().to_string()).collect()
}

/// An attribute's text as a browser reads it.
fn unescape(text: &str) -> String {
    text.replace("&#x2f;", "/").replace("&#x27;", "'").replace("&quot;", "\"").replace("&amp;", "&")
}

/// The `href` of the element with `id`.
fn href_of(html: &str, id: &str) -> Option<String> {
    let at = html.find(&format!("id=\"{id}\" href=\""))? + id.len() + 12;
    Some(unescape(html[at..].split('"').next()?))
}

/// Every lead the Leads page lists for `query`, following "Next" to the end; no lead twice.
async fn listed(s: &Stack, cookie: &str, query: &str) -> Vec<String> {
    let mut path = format!("/console/leads?{query}");
    let mut all = Vec::new();
    for _ in 0..20 {
        let (status, html) = s.page_as(cookie, &path).await;
        assert_eq!(status, StatusCode::OK, "{path}: {html}");
        let ids = table_ids(&html);
        assert!(ids.len() <= 25, "a page holds at most 25");
        all.extend(ids);
        match href_of(&html, "next") {
            Some(next) => path = next,
            None => {
                let unique: BTreeSet<&String> = all.iter().collect();
                assert_eq!(unique.len(), all.len(), "{query}: a lead listed twice: {all:?}");
                return all;
            }
        }
    }
    panic!("{query}: more than 20 pages");
}

/// The ids of `leads` that `keep` holds for, newest first (ids are ULIDs: they sort by capture).
fn expected(leads: &[Value], keep: impl Fn(&Value) -> bool) -> Vec<String> {
    let mut ids: Vec<String> =
        leads.iter().filter(|l| keep(l)).filter_map(|l| l["id"].as_str().map(String::from)).collect();
    ids.sort_unstable_by(|a, b| b.cmp(a));
    ids
}

/// RFC 4180 records: quoted cells may hold commas, doubled quotes and line breaks.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let (mut row, mut cell, mut quoted, mut chars) = (Vec::new(), String::new(), false, text.chars().peekable());
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                cell.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => cell.push(c),
            (false, '"') if cell.is_empty() => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut cell)),
            (false, '\r') => {}
            (false, '\n') => {
                row.push(std::mem::take(&mut cell));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => cell.push(c),
        }
    }
    if !cell.is_empty() || !row.is_empty() {
        row.push(cell);
        rows.push(row);
    }
    rows
}

async fn csv(s: &Stack, cookie: &str, query: &str) -> (StatusCode, Vec<Vec<String>>) {
    let resp = s.get_as(cookie, &format!("/console/leads/export.csv?{query}")).await;
    let status = resp.status();
    if status == StatusCode::OK {
        assert_eq!(resp.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()), Some("text/csv; charset=utf-8"));
        let disposition = resp.headers().get(CONTENT_DISPOSITION).and_then(|v| v.to_str().ok()).unwrap_or_default();
        assert!(disposition.starts_with("attachment;"), "{disposition}");
    }
    let text = resp.text().await.expect("text");
    let text = text.strip_prefix('\u{feff}').unwrap_or_else(|| panic!("no byte order mark: {text}"));
    (status, parse_csv(text))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_marketer_filters_pages_and_downloads_the_leads() {
    let s = stack().await;
    let mut posted = vec![
        s.post_lead(
            &json!({"email": "ana@initech.com", "first_name": "Ana", "last_name": "Lima", "company": "Initech",
            "job_title": "CTO", "country": "DE", "phone": "+49 30 901820", "utm_source": "google",
            "utm_medium": "cpc", "utm_campaign": "spring", "consent": true, "consent_text": "Yes, email me."}),
        )
        .await,
        s.post_lead(
            &json!({"email": "bo@globex.com", "first_name": "Bo", "job_title": "CTO", "utm_source": "linkedin"}),
        )
        .await,
        s.post_lead(&json!({"email": "cy@hooli.com", "first_name": "Cy", "company": "Hooli", "utm_source": "Google"}))
            .await,
        s.post_lead(&json!({"email": "dee@gmail.com", "first_name": "Dee", "country": "US"})).await,
        s.post_lead(&json!({"email": "eve@evilcorp.com", "first_name": "<script>alert(1)</script>",
            "company": "=HYPERLINK(\"http://evil.example\",\"click\")", "job_title": "Head of \"Growth\", EMEA",
            "utm_source": "csv-test"}))
            .await,
    ];
    for i in 0..27 {
        // With a country, B and assigned; without, C and nurtured.
        let mut lead = json!({"email": format!("bulk{i}@bulkco.com"), "first_name": format!("Bulk{i}"),
            "company": "Bulk Co", "utm_source": "bulk"});
        if i % 3 == 0 {
            lead["country"] = json!("FR");
        }
        posted.push(s.post_lead(&lead).await);
    }
    let mut leads = Vec::new();
    for id in &posted {
        leads.push(settled(&s, id).await);
    }
    let (ana, cy, dee, eve) = (&leads[0], &leads[2], &leads[3], &leads[4]);
    assert_eq!((ana["grade"].as_str(), dee["grade"].as_str()), (Some("A"), Some("D")), "the test's leads differ");
    let maria = s.sign_in("maria@acme.example").await;

    // No filter: every lead, newest first, across two pages.
    let (status, first) = s.page_as(&maria, "/console/leads").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(table_ids(&first).len(), 25);
    assert_eq!(listed(&s, &maria, "").await, expected(&leads, |_| true));

    // Each filter narrows to exactly what the admin API says of each lead.
    let is = |field: &'static str, want: &'static str| move |l: &Value| l[field] == want;
    let enrolled =
        |l: &Value| l["enrollments"].as_array().is_some_and(|e| e.iter().any(|x| x["campaign_id"] == "welcome"));
    let owner = ana["owner"]["rep_id"].as_str().expect("ana is assigned").to_string();
    let owned_by = |l: &Value| l["owner"]["rep_id"].as_str() == Some(owner.as_str());
    let cases: Vec<(String, Vec<String>)> = vec![
        ("q=INITECH".into(), expected(&leads, |l| l["id"] == ana["id"])),
        ("q=dee%40gmail".into(), expected(&leads, |l| l["id"] == dee["id"])),
        ("stage=mql".into(), expected(&leads, is("lifecycle", "mql"))),
        ("stage=lead".into(), expected(&leads, is("lifecycle", "lead"))),
        ("stage=new".into(), expected(&leads, is("status", "new"))),
        ("stage=won".into(), Vec::new()),
        ("grade=A".into(), expected(&leads, is("grade", "A"))),
        ("grade=b".into(), expected(&leads, is("grade", "B"))),
        ("grade=C".into(), expected(&leads, is("grade", "C"))),
        ("grade=D".into(), expected(&leads, is("grade", "D"))),
        ("owner=%28none%29".into(), expected(&leads, |l| l["owner"].is_null())),
        (format!("owner={owner}"), expected(&leads, owned_by)),
        ("source=google".into(), expected(&leads, |l| [&ana["id"], &cy["id"]].contains(&&l["id"]))),
        ("campaign=welcome".into(), expected(&leads, enrolled)),
        (
            "source=bulk&campaign=welcome&grade=C".into(),
            expected(&leads, |l| {
                l["attribution"]["first_touch"]["utm"]["source"] == "bulk" && enrolled(l) && l["grade"] == "C"
            }),
        ),
    ];
    for (query, want) in &cases {
        assert_eq!(&listed(&s, &maria, query).await, want, "{query}");
    }
    assert!(cases.iter().filter(|(_, w)| !w.is_empty() && w.len() < leads.len()).count() >= 10, "filters narrow");
    // The admin API's search takes the same filters and finds the same leads.
    for (query, want) in &cases {
        let body = s.api(&format!("/admin/leads?{query}&limit=500")).await;
        let mut got: Vec<String> = body["leads"]
            .as_array()
            .expect("leads")
            .iter()
            .filter_map(|l| l["id"].as_str().map(String::from))
            .collect();
        got.sort_unstable_by(|a, b| b.cmp(a));
        assert_eq!((&got, &body["next"]), (want, &Value::Null), "GET /admin/leads?{query}");
    }
    assert_eq!(listed(&s, &maria, "source=bulk").await.len(), 27, "27 bulk leads over two pages");

    // Dates: `until` starts the listing, `since` ends it; a day includes itself.
    let at = cy["created_at"].as_str().expect("a time");
    let enc = |t: &str| t.replace(':', "%3A").replace('+', "%2B");
    let created = |l: &Value| {
        chrono::DateTime::parse_from_rfc3339(l["created_at"].as_str().unwrap_or_default()).expect("a capture time")
    };
    let since = listed(&s, &maria, &format!("since={}", enc(at))).await;
    assert_eq!(since, expected(&leads, |l| created(l) >= created(cy)));
    let until = listed(&s, &maria, &format!("until={}", enc(at))).await;
    assert_eq!(until, expected(&leads, |l| created(l) < created(cy)));
    assert!(since.contains(&posted[2]) && !until.contains(&posted[2]));
    assert!(!since.is_empty() && !until.is_empty() && since.len() + until.len() == leads.len());
    let day = &at[..10];
    let next_day = chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d").expect("a date") + chrono::Days::new(1);
    let day_before = chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d").expect("a date") - chrono::Days::new(1);
    assert!(listed(&s, &maria, &format!("since={day}&until={day}&q=hooli")).await.contains(&posted[2]));
    assert!(listed(&s, &maria, &format!("until={day_before}&q=hooli")).await.is_empty());
    assert!(listed(&s, &maria, &format!("since={next_day}")).await.is_empty());

    // Lead data is escaped; the row shows what a marketer scans for.
    let (_, page) = s.page_as(&maria, "/console/leads?q=eve%40evilcorp").await;
    assert!(page.contains("&lt;script&gt;alert(1)") && !page.contains("<script>alert"), "{page}");
    let (_, page) = s.page_as(&maria, "/console/leads?q=initech").await;
    for shown in ["Ana Lima", "Initech", "DE", "A · ", "MQL · new", "google"] {
        assert!(page.contains(shown), "{shown} on the row: {page}");
    }
    assert_eq!(
        href_of(&page, "csv").as_deref(),
        Some("/console/leads/export.csv?q=initech"),
        "the CSV carries the filters"
    );

    // The CSV: a header, one row per match, quoted and defused.
    let (status, rows) = csv(&s, &maria, "").await;
    assert_eq!(status, StatusCode::OK);
    let header = &rows[0];
    assert_eq!(header[0], "Lead id");
    for column in
        ["Email", "First name", "Company", "Grade", "Score", "Owner", "Source", "Medium", "Campaign", "Consent"]
    {
        assert!(header.contains(&column.to_string()), "{column} in {header:?}");
    }
    assert!(rows.iter().all(|r| r.len() == header.len()), "every row has every column");
    let ids: Vec<String> = rows[1..].iter().map(|r| r[0].clone()).collect();
    assert_eq!(ids, expected(&leads, |_| true), "every lead once, newest first");
    let col = |name: &str| header.iter().position(|h| h == name).expect("a column");
    let (_, rows) = csv(&s, &maria, "source=csv-test").await;
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[1][0], eve["id"].as_str().expect("an id"));
    assert_eq!(rows[1][col("Company")], "'=HYPERLINK(\"http://evil.example\",\"click\")", "a formula is defused");
    assert_eq!(rows[1][col("Job title")], "Head of \"Growth\", EMEA", "commas and quotes survive quoting");
    assert_eq!(rows[1][col("First name")], "<script>alert(1)</script>");
    let (_, rows) = csv(&s, &maria, "q=initech").await;
    let ana_row = &rows[1];
    assert_eq!(
        [
            &ana_row[col("Email")],
            &ana_row[col("Grade")],
            &ana_row[col("Lifecycle stage")],
            &ana_row[col("Sales status")]
        ],
        ["ana@initech.com", "A", "MQL", "new"]
    );
    assert_eq!(
        [&ana_row[col("Source")], &ana_row[col("Medium")], &ana_row[col("Campaign")], &ana_row[col("Consent")]],
        // Ticked, but not confirmed yet (double opt-in is on for every form unless turned off).
        ["google", "cpc", "spring", "no"]
    );
    assert_eq!(ana_row[col("Phone")], "'+4930901820", "a phone starting with + is defused too");
    let (_, rows) = csv(&s, &maria, "campaign=welcome").await;
    assert_eq!(rows[1..].iter().map(|r| r[0].clone()).collect::<Vec<_>>(), expected(&leads, enrolled));
    s.running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_filters_are_told_at_their_field_and_roles_are_enforced() {
    let s = stack().await;
    let id = s.post_lead(&json!({"email": "ana@initech.com", "first_name": "Ana"})).await;
    settled(&s, &id).await;
    let maria = s.sign_in("maria@acme.example").await;
    let long = "x".repeat(201);
    let cases = [
        ("grade=E".to_string(), "grade"),
        ("stage=hot".into(), "stage"),
        ("owner=zed".into(), "owner"),
        ("campaign=nope".into(), "campaign"),
        ("campaign=..%2F..".into(), "campaign"),
        (format!("q={long}"), "q"),
        (format!("source={long}"), "source"),
        ("since=2026-13-01".into(), "since"),
        ("until=yesterday".into(), "until"),
        ("since=2026-03-02&until=2026-03-01".into(), "until"),
        ("cursor=not-a-cursor".into(), "cursor"),
        ("grade=A&grade=B".into(), "query"),
    ];
    for (query, field) in &cases {
        let (status, html) = s.page_as(&maria, &format!("/console/leads?{query}")).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{query}");
        assert!(html.contains(&format!("class=\"error\" id=\"{field}-error\"")), "{query}: {html}");
        assert!(!html.contains("id=\"leads-table\""), "{query}: no results with a bad filter");
        let (status, _) = s.page_as(&maria, &format!("/console/leads/export.csv?{query}")).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{query}: the CSV too");
    }
    // The form shows back what was typed, next to the message.
    let (_, html) = s.page_as(&maria, "/console/leads?grade=A&since=2026-02-30&q=%3Cb%3E").await;
    assert!(html.contains("id=\"since-error\">From: must be a date"), "{html}");
    assert!(html.contains("value=\"2026-02-30\"") && html.contains("value=\"&lt;b&gt;\""), "{html}");
    assert!(html.contains("<option value=\"A\" selected>"), "{html}");

    // A rep gets a clear 403 on all three; a signed-out browser goes to sign in and back.
    let anna = s.sign_in("anna@acme.example").await;
    for path in ["/console/leads", "/console/leads/export.csv", "/console/suppressions"] {
        let (status, html) = s.page_as(&anna, path).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
        assert!(html.contains("marketing") && !html.contains("ana@initech.com"), "{path}: {html}");
        let resp = s.http.get(format!("{}{path}?grade=A", s.base)).send().await.expect("answers");
        assert_eq!(resp.status(), StatusCode::SEE_OTHER);
        let to = resp.headers().get(LOCATION).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
        let next = path.replace('/', "%2F");
        assert_eq!(to, format!("/console/sign-in?next={next}%3Fgrade%3DA"), "{path}");
    }
    let boss = s.sign_in("boss@acme.example").await;
    for path in ["/console/leads", "/console/suppressions"] {
        assert_eq!(s.page_as(&boss, path).await.0, StatusCode::OK, "an admin sees {path}");
    }
    s.running.shutdown().await;
}

/// The one-click unsubscribe link of the lead's first drip email.
async fn unsubscribe(s: &Stack, id: &str) {
    let eml = wait_for_eml(&s.running.outbox, &format!("drip-{id}")).await;
    let m = mail_parser::MessageParser::default().parse(&eml).expect("an email");
    let url = m.header_raw("List-Unsubscribe").expect("List-Unsubscribe").trim();
    let url = url.trim_start_matches('<').trim_end_matches('>');
    let path = url.split_once("://").and_then(|(_, rest)| rest.find('/').map(|i| rest[i..].to_string()));
    let resp = s
        .http
        .post(format!("{}{}", s.base, path.expect("a path")))
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .expect("the unsubscribe answers");
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_suppression_list_shows_who_opted_out_and_answers_for_an_address() {
    let s = stack().await;
    let dee = s.post_lead(&json!({"email": "dee@Gmail.com", "first_name": "Dee", "last_name": "Dee"})).await;
    let zed = s.post_lead(&json!({"email": "zed@gmail.com", "first_name": "Zed"})).await;
    let kim = s.post_lead(&json!({"email": "kim@gmail.com", "first_name": "Kim"})).await;
    for id in [&dee, &zed, &kim] {
        settled(&s, id).await;
    }
    let maria = s.sign_in("maria@acme.example").await;
    let (status, html) = s.page_as(&maria, "/console/suppressions").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("Nobody is suppressed yet.") && html.contains("hash"), "{html}");

    unsubscribe(&s, &dee).await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    let erased = s.http.delete(format!("{}/admin/leads/{zed}", s.base)).bearer_auth(TOKEN).send().await.expect("erase");
    assert_eq!(erased.status(), StatusCode::OK);

    let (status, html) = s.page_as(&maria, "/console/suppressions").await;
    assert_eq!(status, StatusCode::OK);
    let list = &html[html.find("id=\"suppressions\"").expect("the list")..];
    let (erased_at, unsubscribed_at) =
        (list.find("Erased").expect("erased"), list.find("Unsubscribed").expect("unsub"));
    assert!(erased_at < unsubscribed_at, "newest first: {list}");
    assert!(list.contains(&format!("href=\"/console/leads/{dee}\">Dee Dee</a>")), "{list}");
    assert!(list.contains("erased lead") && !list.contains(&zed) && !list.contains("zed@gmail.com"), "{list}");
    assert!(!list.contains(&kim), "only suppressed leads");

    // The check hashes the address as the store does: trimmed, its domain in lower case.
    let (status, html) = s.page_as(&maria, "/console/suppressions?email=+dee%40GMAIL.com+").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("Yes: dee@gmail.com is suppressed.") && html.contains("Unsubscribed,"), "{html}");
    let (_, html) = s.page_as(&maria, "/console/suppressions?email=zed%40gmail.com").await;
    assert!(html.contains("Yes: zed@gmail.com is suppressed.") && html.contains("Its lead has been erased."), "{html}");
    let (status, html) = s.page_as(&maria, "/console/suppressions?email=kim%40gmail.com").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("No: kim@gmail.com is not suppressed."), "{html}");
    for bad in ["not-an-address", "a%40b", "%3Cscript%3E%40x.com"] {
        let (status, html) = s.page_as(&maria, &format!("/console/suppressions?email={bad}")).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
        assert!(html.contains("class=\"error\" id=\"email-error\""), "{bad}: {html}");
        assert!(!html.contains("<script>"), "{bad}");
    }
    let (status, html) = s.page_as(&maria, "/console/suppressions?cursor=forged").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html.contains("id=\"cursor-error\"") && html.contains("Unsubscribed"), "the list still shows: {html}");
    s.running.shutdown().await;
}
