//! The console's admin pages over HTTP, against the running local stack: an admin changes a
//! rep and a team (each save the next routing version, as the JSON API sees it, and the next
//! lead is routed by it), bad input is told next to its field with nothing stored, marketing and
//! sales are refused every page and every form, forms need their CSRF token, names are escaped,
//! and a lead is erased only after its address is typed again.

use std::time::{Duration, Instant};

use leadflow_tests::harness::{Stack, location, unescape};
use reqwest::StatusCode;
use serde_json::{Value, json};

const TOKEN: &str = "console-admin-pages-token";

async fn stack() -> Stack {
    Stack::start(TOKEN, Duration::from_secs(1)).await
}

/// A lead good enough for sales, so that it is assigned.
fn qualified(email: &str, country: &str) -> Value {
    json!({"email": email, "first_name": "Ana", "last_name": "Lima", "company": "Initech",
           "job_title": "CTO", "country": country, "phone": "+49 30 901820"})
}

/// The routing version in force (`null`: the deployed file).
async fn version(s: &Stack) -> Value {
    s.api("/admin/rules/routing").await["version"].clone()
}

/// Follows a save's 303 and answers the page it lands on.
async fn landed(s: &Stack, cookie: &str, resp: reqwest::Response) -> (String, String) {
    assert_eq!(resp.status(), StatusCode::SEE_OTHER, "{}", resp.text().await.unwrap_or_default());
    let to = location(&resp);
    let (status, page) = s.page_as(cookie, &to).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    (to, page)
}

/// A form built here, as the fields [`Stack::post_as`] sends.
fn fields(form: &[(String, String)]) -> Vec<(&str, &str)> {
    form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

/// A bad form: the changes to a good one, the field whose error tells it, what the error says.
type Case<'a> = (&'a [(&'a str, Option<&'a str>)], &'a str, &'a str);

/// `base` with `changes` over it: a field replaced, added, or (with `None`) left out.
fn form<K: AsRef<str>, V: AsRef<str>>(base: &[(K, V)], changes: &[(&str, Option<&str>)]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> =
        base.iter().map(|(k, v)| (k.as_ref().to_string(), v.as_ref().to_string())).collect();
    for (k, v) in changes {
        out.retain(|(name, _)| name != k);
        if let Some(v) = v {
            out.push((k.to_string(), v.to_string()));
        }
    }
    out
}

/// Anna's form as the page shows it (test configuration): any time, no capacity, in EMEA.
fn anna(csrf: &str) -> Vec<(String, String)> {
    form(
        &[
            ("csrf", csrf),
            ("name", "Anna Schmidt"),
            ("email", "anna@acme.example"),
            ("active", "yes"),
            ("capacity", ""),
            ("time_zone", "Europe/Berlin"),
            ("start", ""),
            ("end", ""),
            ("ooo_from", ""),
            ("ooo_until", ""),
            ("weight_emea", "1"),
            ("weight_americas", ""),
        ],
        &[],
    )
}

/// Text as the page's HTML escapes it (minijinja's auto-escaping).
fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#x27;")
        .replace('/', "&#x2f;")
}

/// The tag of the element whose id is `id`.
fn tag<'a>(page: &'a str, id: &str) -> &'a str {
    let at = page.find(&format!("id=\"{id}\"")).unwrap_or_else(|| panic!("no element #{id}"));
    let open = page[..at].rfind('<').unwrap_or(0);
    let close = at + page[at..].find('>').unwrap_or(0);
    &page[open..=close]
}

/// The message shown for the form field `id`: the error right after its input (nothing but
/// the days' checkboxes between them), the input marked invalid and pointing at it.
fn error_at(page: &str, id: &str) -> String {
    let input = page.find(&format!("id=\"{id}\"")).unwrap_or_else(|| panic!("no field #{id}"));
    let marker = format!("id=\"{id}-error\"");
    let at = page.find(&marker).unwrap_or_else(|| panic!("no error at #{id}:\n{page}"));
    assert!(at > input, "the error of #{id} comes after it");
    let between = &page[input..at];
    let inputs = between.matches("<input").count() - between.matches("type=\"checkbox\"").count();
    assert_eq!(inputs, 0, "the error of #{id} is right after it: {between}");
    let own = tag(page, id);
    assert!(own.contains(&format!("aria-describedby=\"{id}-error\"")), "{own}");
    if id != "days" {
        assert!(own.contains("aria-invalid=\"true\""), "{own}");
    }
    let start = at + page[at..].find('>').unwrap_or(0) + 1;
    let end = start + page[start..].find("</p>").unwrap_or(0);
    unescape(&page[start..end])
}

/// The message shown for condition row `id` (`when_<n>`): inside the row, both of its inputs
/// marked invalid and pointing at it.
fn row_error(page: &str, id: &str) -> String {
    let row = page.find(&format!("id=\"{id}\"")).unwrap_or_else(|| panic!("no row #{id}"));
    let rest = &page[row..];
    let end = row + rest.find("class=\"cond\"").or_else(|| rest.find("</fieldset>")).unwrap_or(rest.len());
    let inside = &page[row..end];
    let n = id.trim_start_matches("when_");
    for input in [format!("when_field_{n}"), format!("when_value_{n}")] {
        let own = tag(page, &input);
        assert!(own.contains(&format!("aria-describedby=\"{id}-error\"")) && own.contains("aria-invalid"), "{own}");
    }
    let at = inside.find(&format!("id=\"{id}-error\"")).unwrap_or_else(|| panic!("no error in row #{id}: {inside}"));
    let start = at + inside[at..].find('>').unwrap_or(0) + 1;
    let stop = start + inside[start..].find("</p>").unwrap_or(0);
    unescape(&inside[start..stop])
}

/// About `days` from now, as the rep form's date and time (read in the rep's zone, an hour or
/// two off UTC: still days ahead).
fn days_ahead(days: i64) -> String {
    (chrono::Utc::now() + chrono::Duration::days(days)).format("%Y-%m-%dT%H:%M").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_changes_a_rep_and_the_next_leads_are_routed_by_it() {
    let s = stack().await;
    let boss = s.sign_in("boss@acme.example").await;
    assert_eq!(version(&s).await, Value::Null, "the deployed routing to start with");

    let (status, list) = s.page_as(&boss, "/console/admin/reps").await;
    assert_eq!(status, StatusCode::OK);
    for shown in ["Anna Schmidt", "anna@acme.example", "Europe/Berlin", "EMEA (1)", "0 open, no limit", "Any time"] {
        assert!(list.contains(&escape(shown)), "{shown} on the list:\n{list}");
    }
    assert!(list.contains("href=\"/console/admin/reps/anna\"") && list.contains("href=\"/console/admin/reps/new\""));
    assert!(list.contains("id=\"reps-list\""), "a list for phones");

    let (status, page) = s.page_as(&boss, "/console/admin/reps/anna").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        tag(&page, "weight_emea").contains("value=\"1\"") && tag(&page, "time_zone").contains("Europe&#x2f;Berlin")
    );
    assert!(page.contains("0 to 10000"), "the capacity's bound is said");
    let csrf = Stack::csrf_of(&page);

    // Capacity 0: Anna takes nothing, so a German lead goes to Ben.
    let resp =
        s.post_as(&boss, "/console/admin/reps/anna", &fields(&form(&anna(&csrf), &[("capacity", Some("0"))]))).await;
    let (to, saved) = landed(&s, &boss, resp).await;
    assert_eq!(to, "/console/admin/reps/anna?done=saved&v=1");
    assert!(saved.contains("Saved as routing version 1."), "{saved}");
    assert!(tag(&saved, "capacity").contains("value=\"0\""));
    let api = s.api("/admin/reps/anna").await;
    assert_eq!((api["version"].clone(), api["rep"]["capacity"].clone()), (json!(1), json!(0)), "{api}");
    let first = s.post_lead(&qualified("one@initech.de", "DE")).await;
    assert_eq!(s.owner(&first).await, "ben");

    // Out of office from now for two days, no capacity: the next German leads go to Ben again
    // (in turn, one of two would be Anna's).
    let until = days_ahead(2);
    let away = form(&anna(&csrf), &[("ooo_until", Some(&until))]);
    let (_, saved) = landed(&s, &boss, s.post_as(&boss, "/console/admin/reps/anna", &fields(&away)).await).await;
    assert!(saved.contains("Saved as routing version 2."), "{saved}");
    let rep = s.api("/admin/reps/anna").await["rep"].clone();
    assert_eq!(rep["capacity"], Value::Null);
    assert!(rep["out_of_office"]["until"].is_string(), "{rep}");
    for n in 0..2 {
        let id = s.post_lead(&qualified(&format!("away{n}@initech.de"), "DE")).await;
        assert_eq!(s.owner(&id).await, "ben", "Anna is away");
    }
    let (_, list) = s.page_as(&boss, "/console/admin/reps").await;
    assert!(list.contains("Out of office until"), "{list}");
    assert!(list.contains("3 open, no limit"), "Ben's three leads: {list}");

    // The same form again: nothing changed, no version.
    let (_, page) = s.page_as(&boss, "/console/admin/reps/anna").await;
    let ooo_from =
        tag(&page, "ooo_from").split("value=\"").nth(1).and_then(|v| v.split('"').next()).map(str::to_string);
    let same = form(&away, &[("ooo_from", ooo_from.as_deref())]);
    assert!(ooo_from.as_deref().is_some_and(|f| !f.is_empty()), "the absence's start is shown");
    let resp = s.post_as(&boss, "/console/admin/reps/anna", &fields(&same)).await;
    let (_, page) = landed(&s, &boss, resp).await;
    assert!(page.contains("Nothing changed: still routing version 2."), "{page}");

    // A new rep, in a team; her name is escaped wherever it is shown.
    let zed = form(
        &anna(&csrf),
        &[
            ("id", Some("zed")),
            ("name", Some("<b>Zed</b> & \"Co\"")),
            ("email", Some("zed@acme.example")),
            ("time_zone", Some("America/Chicago")),
            ("day_mon", Some("yes")),
            ("day_tue", Some("yes")),
            ("start", Some("22:00")),
            ("end", Some("06:00")),
            ("weight_emea", None),
            ("weight_americas", Some("3")),
        ],
    );
    let resp = s.post_as(&boss, "/console/admin/reps/new", &fields(&zed)).await;
    let (to, _) = landed(&s, &boss, resp).await;
    assert!(to.starts_with("/console/admin/reps/zed?done=saved"), "{to}");
    let (_, list) = s.page_as(&boss, "/console/admin/reps").await;
    assert!(list.contains("&lt;b&gt;Zed&lt;&#x2f;b&gt; &amp; &quot;Co&quot;") && !list.contains("<b>Zed"), "{list}");
    assert!(list.contains("Mon, Tue 22:00–06:00 (past midnight)") && list.contains("Americas (3)"), "{list}");
    let team = s.api("/admin/teams/americas").await["team"].clone();
    assert_eq!(team["members"], json!([{ "rep": "carla", "weight": 1 }, { "rep": "zed", "weight": 3 }]));

    // Every admin page within the console's 200 KB budget (the rep form carries the zone list).
    for path in ["/console/admin/reps", "/console/admin/reps/anna", "/console/admin/teams", "/console/admin/teams/emea"]
    {
        let started = Instant::now();
        let (status, page) = s.page_as(&boss, path).await;
        assert_eq!(status, StatusCode::OK);
        assert!(page.len() < 200 * 1024, "{path} is {} bytes", page.len());
        eprintln!("{path}: {} bytes, {:?}", page.len(), started.elapsed());
    }
    s.running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_told_next_to_its_field_and_nothing_is_stored() {
    let s = stack().await;
    let boss = s.sign_in("boss@acme.example").await;
    let (_, page) = s.page_as(&boss, "/console/admin/reps/anna").await;
    let csrf = Stack::csrf_of(&page);
    let cases: &[Case] = &[
        (&[("capacity", Some("20000"))], "capacity", "at most 10000"),
        (&[("capacity", Some("lots"))], "capacity", "from 0 to 10000"),
        (&[("capacity", Some("-1"))], "capacity", "from 0 to 10000"),
        (&[("time_zone", Some("Mars/Olympus"))], "time_zone", "unknown time zone `Mars/Olympus`"),
        (&[("day_mon", Some("yes")), ("start", Some("09:00")), ("end", Some("09:00"))], "end", "equals start"),
        (&[("day_mon", Some("yes")), ("start", Some("25:00")), ("end", Some("17:00"))], "start", "00:00 to 23:59"),
        (&[("day_mon", Some("yes"))], "start", "give a time"),
        (&[("start", Some("09:00")), ("end", Some("17:00"))], "days", "name at least one day"),
        (&[("weight_emea", Some("101"))], "weight_emea", "at most 100"),
        (&[("weight_emea", Some("0"))], "weight_emea", "from 1 to 100"),
        (&[("ooo_until", Some("2020-01-01T09:00"))], "ooo_until", "already past"),
        (&[("ooo_from", Some("2031-01-02T09:00")), ("ooo_until", Some("2031-01-01T09:00"))], "ooo_until", "after from"),
        (&[("ooo_until", Some("next week"))], "ooo_until", "a date and time"),
        (&[("name", Some(""))], "name", "must not be empty"),
        (&[("email", Some("not-an-address"))], "email", ""),
    ];
    for (changes, field, says) in cases {
        let resp = s.post_as(&boss, "/console/admin/reps/anna", &fields(&form(&anna(&csrf), changes))).await;
        assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY, "{changes:?}");
        let page = resp.text().await.expect("page");
        let message = error_at(&page, field);
        assert!(message.contains(says), "{changes:?}: {message}");
        assert!(!page.contains("id=\"form-error\""), "nothing unplaced: {page}");
        assert!(page.contains("Id: anna"), "still Anna's form");
        // What was typed comes back.
        for (name, value) in changes.iter().filter(|(n, _)| !n.starts_with("day_")) {
            let escaped = escape(value.unwrap_or_default());
            assert!(tag(&page, name).contains(&format!("value=\"{escaped}\"")), "{name} kept: {}", tag(&page, name));
        }
    }
    // Several at once: each at its own field.
    let many =
        form(&anna(&csrf), &[("capacity", Some("20000")), ("time_zone", Some("Nowhere")), ("weight_emea", Some("x"))]);
    let page = s.post_as(&boss, "/console/admin/reps/anna", &fields(&many)).await.text().await.expect("page");
    for field in ["capacity", "time_zone", "weight_emea"] {
        assert!(!error_at(&page, field).is_empty());
    }
    // A new rep with a taken id or the form's own address.
    for (id, says) in [("ben", "already has this id"), ("new", "address of this form"), ("no spaces", "an id is")] {
        let new = form(&anna(&csrf), &[("id", Some(id)), ("email", Some("x@acme.example"))]);
        let resp = s.post_as(&boss, "/console/admin/reps/new", &fields(&new)).await;
        assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert!(error_at(&resp.text().await.expect("page"), "id").contains(says), "{id}");
    }
    // The JSON API holds the same bounds: they are the same checks.
    for (path, body, field) in [
        ("/admin/reps/anna", json!({ "capacity": 20000 }), "capacity"),
        ("/admin/teams/emea", json!({ "members": [{ "rep": "anna", "weight": 500 }] }), "members[0].weight"),
    ] {
        let resp = s.http.put(format!("{}{path}", s.base)).bearer_auth(TOKEN).json(&body).send().await.expect("put");
        assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(resp.json::<Value>().await.expect("json")["error"]["field"], field);
    }
    assert_eq!(version(&s).await, Value::Null, "nothing was stored");
    assert_eq!(s.api("/admin/reps/anna").await["rep"]["capacity"], Value::Null);
    let (status, _) = s.page_as(&boss, "/console/admin/reps/nobody").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    s.running.shutdown().await;
}

/// The EMEA form as the page shows it.
fn emea(csrf: &str) -> Vec<(String, String)> {
    form(
        &[
            ("csrf", csrf),
            ("name", "EMEA"),
            ("when_field_0", "country"),
            ("when_test_0", "in"),
            ("when_value_0", "DE, AT, CH, FR, GB"),
            ("when_field_1", ""),
            ("when_test_1", "in"),
            ("when_value_1", ""),
            ("when_field_2", ""),
            ("when_test_2", "in"),
            ("when_value_2", ""),
            ("weight_anna", "1"),
            ("weight_ben", "1"),
            ("weight_carla", ""),
            ("weight_desk", ""),
        ],
        &[],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_changes_a_team_with_errors_at_their_rows() {
    let s = stack().await;
    let boss = s.sign_in("boss@acme.example").await;
    let (status, list) = s.page_as(&boss, "/console/admin/teams").await;
    assert_eq!(status, StatusCode::OK);
    for shown in ["country is one of DE, AT, CH, FR, GB", "Anna Schmidt (1), Ben Okafor (1)", "Sales Desk", "4 hours"] {
        assert!(list.contains(&escape(shown)), "{shown}:\n{list}");
    }
    let (status, page) = s.page_as(&boss, "/console/admin/teams/emea").await;
    assert_eq!(status, StatusCode::OK);
    assert!(tag(&page, "when_value_0").contains("value=\"DE, AT, CH, FR, GB\""), "the row as stored");
    assert!(tag(&page, "when_field_2").contains("value=\"\""), "two empty rows to add conditions");
    let csrf = Stack::csrf_of(&page);

    let cases: &[Case] = &[
        (
            &[("when_field_1", Some("employees")), ("when_test_1", Some("range")), ("when_value_1", Some("ten..20"))],
            "when_1",
            "two numbers",
        ),
        (
            &[("when_field_2", Some("colour")), ("when_test_2", Some("equals")), ("when_value_2", Some("red"))],
            "when_2",
            "unknown field",
        ),
        (
            &[("when_field_1", Some("company")), ("when_test_1", Some("regex")), ("when_value_1", Some("(unclosed"))],
            "when_1",
            "regex",
        ),
        (&[("weight_ben", Some("500"))], "weight_ben", "at most 100"),
        (&[("weight_carla", Some("zero"))], "weight_carla", "from 1 to 100"),
        (&[("name", Some(""))], "name", "must not be empty"),
    ];
    for (changes, field, says) in cases {
        let resp = s.post_as(&boss, "/console/admin/teams/emea", &fields(&form(&emea(&csrf), changes))).await;
        assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY, "{changes:?}");
        let page = resp.text().await.expect("page");
        let message = if field.starts_with("when_") { row_error(&page, field) } else { error_at(&page, field) };
        assert!(message.contains(says), "{changes:?}: {message}");
    }
    assert_eq!(version(&s).await, Value::Null, "nothing was stored");

    // Fewer countries, Anna three times Ben's share, Carla in too.
    let changed = form(
        &emea(&csrf),
        &[("when_value_0", Some("DE, AT")), ("weight_anna", Some("3")), ("weight_carla", Some("1"))],
    );
    let (to, page) = landed(&s, &boss, s.post_as(&boss, "/console/admin/teams/emea", &fields(&changed)).await).await;
    assert_eq!(to, "/console/admin/teams/emea?done=saved&v=1");
    assert!(page.contains("Saved as routing version 1."));
    let team = s.api("/admin/teams/emea").await["team"].clone();
    assert_eq!(team["when"], json!([{ "field": "country", "in": ["DE", "AT"] }]));
    assert_eq!(
        team["members"],
        json!([{ "rep": "anna", "weight": 3 }, { "rep": "ben", "weight": 1 }, { "rep": "carla", "weight": 1 }])
    );
    // France is no longer EMEA's: its lead goes to the fallback owner.
    let french = s.post_lead(&qualified("fr@initech.fr", "FR")).await;
    assert_eq!(s.owner(&french).await, "desk");

    // A new team, last in order, with a name that is escaped.
    let nordics = form(
        &emea(&csrf),
        &[
            ("id", Some("nordics")),
            ("name", Some("<i>Nordics</i>")),
            ("when_value_0", Some("SE, NO")),
            ("weight_anna", None),
            ("weight_ben", None),
            ("weight_carla", Some("2")),
        ],
    );
    let (to, _) = landed(&s, &boss, s.post_as(&boss, "/console/admin/teams/new", &fields(&nordics)).await).await;
    assert!(to.starts_with("/console/admin/teams/nordics?done=saved&v=2"), "{to}");
    let (_, list) = s.page_as(&boss, "/console/admin/teams").await;
    assert!(list.contains("&lt;i&gt;Nordics&lt;&#x2f;i&gt;") && !list.contains("<i>Nordics"), "{list}");
    assert!(list.contains("Carla Diaz (2)") && list.contains("country is one of SE, NO"));
    let swede = s.post_lead(&qualified("se@initech.se", "SE")).await;
    assert_eq!(s.owner(&swede).await, "carla");
    s.running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_marketer_cannot_edit_routing_nor_a_rep_erase_and_forms_need_their_token() {
    let s = stack().await;
    let lead = s.post_lead(&qualified("kept@initech.de", "DE")).await;
    s.owner(&lead).await;
    let gets = [
        "/console/admin/reps".to_string(),
        "/console/admin/reps/anna".into(),
        "/console/admin/reps/new".into(),
        "/console/admin/teams".into(),
        "/console/admin/teams/emea".into(),
        "/console/admin/teams/new".into(),
        format!("/console/leads/{lead}/erase"),
    ];
    let posts = [
        ("/console/admin/reps/anna".to_string(), anna("")),
        ("/console/admin/reps/new".into(), form(&anna(""), &[("id", Some("mine"))])),
        ("/console/admin/teams/emea".into(), emea("")),
        ("/console/admin/teams/new".into(), form(&emea(""), &[("id", Some("mine"))])),
        (format!("/console/leads/{lead}/erase"), form(&[("csrf", "")], &[("confirm", Some("kept@initech.de"))])),
    ];
    // Signed out: to sign-in, and back.
    let resp = s.http.get(format!("{}/console/admin/reps/anna", s.base)).send().await.expect("get");
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&resp), "/console/sign-in?next=%2Fconsole%2Fadmin%2Freps%2Fanna");

    for (email, home) in [("maria@acme.example", "/console"), ("ben@acme.example", "/console/leads/mine")] {
        let who = s.sign_in(email).await;
        let (_, home) = s.page_as(&who, home).await;
        assert!(!home.contains("href=\"/console/admin/reps\""), "no Reps link for {email}");
        let csrf = Stack::csrf_of(&home);
        for path in &gets {
            let (status, page) = s.page_as(&who, path).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{email} {path}");
            assert!(page.contains("Only admins"), "{page}");
        }
        for (path, body) in &posts {
            let body = form(body, &[("csrf", Some(&csrf))]);
            let resp = s.post_as(&who, path, &fields(&body)).await;
            assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{email} {path}");
        }
        let (_, page) = s.page_as(&who, &format!("/console/leads/{lead}")).await;
        assert!(!page.contains("/erase"), "no erase button for {email}");
    }
    // An admin's form without its token, or with another sign-in's, is refused.
    let boss = s.sign_in("boss@acme.example").await;
    let other = s.sign_in("boss@acme.example").await;
    let (_, page) = s.page_as(&other, "/console/admin/reps/anna").await;
    let others = Stack::csrf_of(&page);
    for token in ["", others.as_str()] {
        let resp = s
            .post_as(&boss, "/console/admin/reps/anna", &fields(&form(&anna(token), &[("capacity", Some("1"))])))
            .await;
        assert_eq!(resp.status(), StatusCode::FORBIDDEN);
        assert!(resp.text().await.expect("page").contains("This form was refused"));
        let resp = s.post_as(&boss, &format!("/console/leads/{lead}/erase"), &fields(&posts[4].1)).await;
        assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    }
    assert_eq!(version(&s).await, Value::Null, "nothing was stored");
    assert_eq!(s.lead(&lead).await["erased"], false);
    s.running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_erases_a_lead_after_typing_its_address_and_twice_is_harmless() {
    let s = stack().await;
    let id = s.post_lead(&qualified("ana@initech.de", "DE")).await;
    s.owner(&id).await;
    let boss = s.sign_in("boss@acme.example").await;
    let (_, page) = s.page_as(&boss, &format!("/console/leads/{id}")).await;
    assert!(page.contains(&format!("href=\"/console/leads/{id}/erase\"")) && page.contains("Erase this lead…"));

    let erase = format!("/console/leads/{id}/erase");
    let (status, page) = s.page_as(&boss, &erase).await;
    assert_eq!(status, StatusCode::OK);
    for says in ["cannot be undone", "Removed", "Kept", "ana@initech.de", "suppression list"] {
        assert!(page.contains(says), "{says}:\n{page}");
    }
    let csrf = Stack::csrf_of(&page);
    let before = s.lead(&id).await;
    assert_eq!(before["erased"], false, "the page changed nothing");
    assert!(before["activities"].as_array().is_some_and(|a| !a.is_empty()), "a trail to erase");

    for wrong in ["", "ana@initech.com", "ERASE"] {
        let resp = s.post_as(&boss, &erase, &fields(&form(&[("csrf", csrf.as_str()), ("confirm", wrong)], &[]))).await;
        assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY, "{wrong}");
        let page = resp.text().await.expect("page");
        assert!(error_at(&page, "confirm").contains("email address exactly"), "{wrong}");
        assert!(tag(&page, "confirm").contains(&format!("value=\"{wrong}\"")));
        assert_eq!(s.lead(&id).await["contact"]["email"], "ana@initech.de", "not erased");
    }

    let right = form(&[("csrf", csrf.as_str()), ("confirm", " ANA@initech.de ")], &[]);
    let (to, page) = landed(&s, &boss, s.post_as(&boss, &erase, &fields(&right)).await).await;
    assert_eq!(to, erase);
    assert!(page.contains("Erased") && page.contains("was erased"), "{page}");
    let after = s.lead(&id).await;
    assert_eq!(after["erased"], true);
    let text = after.to_string();
    for gone in ["ana@initech.de", "Ana", "Lima", "Initech", "CTO", "901820"] {
        assert!(!text.contains(gone), "{gone} survived: {text}");
    }
    assert_eq!(after["activities"], json!([]));
    let (status, page) = s.page_as(&boss, &format!("/console/leads/{id}")).await;
    assert_eq!(status, StatusCode::GONE);
    assert!(page.contains("This lead was erased"), "{page}");

    // Again (a second click, a resent form): harmless, and it says so.
    let (to, page) = landed(&s, &boss, s.post_as(&boss, &erase, &fields(&right)).await).await;
    assert_eq!(to, erase);
    assert!(page.contains("Erased"));
    assert_eq!(s.lead(&id).await["erased"], true);
    let (status, _) = s.page_as(&boss, "/console/leads/01KAAAAAAAAAAAAAAAAAAAAAAA/erase").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    s.running.shutdown().await;
}
