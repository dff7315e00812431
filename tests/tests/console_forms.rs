//! Every form of the console, fed bad input: each person (admin, marketer, rep) walks every
//! console page their links reach, and every field of every form on them is sent values a
//! careless or hostile person types — markup, a 100,000-character paste, negative and huge
//! numbers, control characters, an impossible date, an option the list does not offer. None may
//! answer a 5xx or echo markup unescaped; a refusal is an HTML page, and a 422 says what is
//! wrong next to the field itself (an element `#<field>-error`, or the field pointing at its
//! message with `aria-describedby`). Pages and forms added later are swept without a change here.

use std::collections::{BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use leadflow_tests::harness::Stack;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, COOKIE, LOCATION, ORIGIN};
use scraper::{ElementRef, Html, Selector};
use serde_json::{Value, json};

const TOKEN: &str = "console-forms-token";
const MARKUP: &str = "<script>alert(1)</script>";
/// Most pages one person's walk opens: every page family is reached well before this.
const MAX_PAGES: usize = 80;

/// Forms a sweep must not submit: signing out ends the walk, and the one-click action pages
/// carry their own credential in the path.
fn skipped(action: &str) -> bool {
    action.starts_with("/console/sign-out") || action.starts_with("/console/act/")
}

/// Links a walk does not follow: downloads, and pages outside the console.
fn followed(href: &str) -> bool {
    href.starts_with("/console")
        && !href.starts_with("/console/sign-out")
        && !href.starts_with("/console/act/")
        && !href.contains(".csv")
}

fn selector(css: &str) -> Selector {
    Selector::parse(css).unwrap_or_else(|e| panic!("selector {css}: {e}"))
}

/// One field of a form: its name, kind, and the value the page filled in.
#[derive(Debug, Clone)]
struct Field {
    name: String,
    kind: String,
    value: String,
}

#[derive(Debug, Clone)]
struct Form {
    page: String,
    method: String,
    action: String,
    fields: Vec<Field>,
}

impl Form {
    /// The form's values as the page filled them in: a checkbox only when checked, a select's
    /// selected (or first) option.
    fn defaults(&self) -> Vec<(String, String)> {
        self.fields
            .iter()
            .filter(|f| f.kind != "checkbox-unchecked")
            .map(|f| (f.name.clone(), f.value.clone()))
            .collect()
    }
}

fn forms_of(page: &str, html: &Html) -> Vec<Form> {
    let field_sel = selector("input[name], select[name], textarea[name]");
    let option_sel = selector("option");
    let mut forms = Vec::new();
    for form in html.select(&selector("form")) {
        let attr = |n: &str| form.value().attr(n).unwrap_or_default().to_string();
        let method = if attr("method").eq_ignore_ascii_case("post") { "post" } else { "get" }.to_string();
        let action = match attr("action") {
            a if a.is_empty() => page.to_string(),
            a => a,
        };
        let mut fields = Vec::new();
        for el in form.select(&field_sel) {
            let v = el.value();
            let name = v.attr("name").unwrap_or_default().to_string();
            let (kind, value) = match v.name() {
                "select" => {
                    let options: Vec<ElementRef> = el.select(&option_sel).collect();
                    let chosen = options.iter().find(|o| o.value().attr("selected").is_some()).or(options.first());
                    let value =
                        chosen.map(|o| o.value().attr("value").map_or_else(|| o.text().collect(), str::to_string));
                    ("select".to_string(), value.unwrap_or_default())
                }
                "textarea" => ("textarea".to_string(), el.text().collect()),
                _ => {
                    let kind = v.attr("type").unwrap_or("text").to_ascii_lowercase();
                    let value = v.attr("value").unwrap_or_default().to_string();
                    match kind.as_str() {
                        "checkbox" | "radio" if v.attr("checked").is_none() => {
                            ("checkbox-unchecked".to_string(), if value.is_empty() { "on".into() } else { value })
                        }
                        "checkbox" | "radio" => {
                            ("checkbox".to_string(), if value.is_empty() { "on".into() } else { value })
                        }
                        "submit" | "button" | "image" | "reset" => continue,
                        _ => (kind, value),
                    }
                }
            };
            fields.push(Field { name, kind, value });
        }
        forms.push(Form { page: page.to_string(), method, action, fields });
    }
    forms
}

/// What a careless or hostile person may put in a field of this kind. A GET form's paste is
/// shorter: a URL past 64 KiB is refused by the HTTP layer on both sides before any page sees it.
fn bad_values(field: &Field, method: &str) -> Vec<String> {
    let paste = if method == "post" { 100_000 } else { 10_000 };
    let mut values = vec![
        MARKUP.to_string(),
        "x".repeat(paste),
        "-1".to_string(),
        "999999999999999999999999".to_string(),
        "\u{7}\u{202e}\u{0}".to_string(),
        "2026-02-30".to_string(),
        String::new(),
    ];
    if field.kind == "select" || field.kind.starts_with("checkbox") {
        values.push("no-such-option".to_string());
    }
    values
}

/// A person walking the console with their session.
struct Walker<'a> {
    stack: &'a Stack,
    who: &'static str,
    cookie: String,
}

impl Walker<'_> {
    /// A page, following the console's own redirects (a rep's home is their leads).
    async fn get(&self, path: &str) -> (StatusCode, String, String) {
        let mut path = path.to_string();
        let mut hops = 0;
        let resp = loop {
            let sent = self.stack.http.get(format!("{}{path}", self.stack.base)).header(COOKIE, &self.cookie).send();
            let resp = sent.await.unwrap_or_else(|e| panic!("{} GET {path}: {e}", self.who));
            let to = resp.headers().get(LOCATION).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
            if !resp.status().is_redirection() || !to.starts_with("/console") {
                break resp;
            }
            hops += 1;
            assert!(hops < 5, "{}: {path} redirects in a loop", self.who);
            path = to;
        };
        let status = resp.status();
        let kind = resp.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
        (status, kind, resp.text().await.unwrap_or_default())
    }

    /// Every page this person's links reach from the home page, and the forms on them.
    async fn walk(&self, starts: &[String]) -> Vec<Form> {
        let link_sel = selector("a[href]");
        let mut seen = BTreeSet::new();
        let mut queue: VecDeque<String> = ["/console".to_string()].into_iter().chain(starts.iter().cloned()).collect();
        let mut forms = Vec::new();
        while let Some(path) = queue.pop_front() {
            if seen.len() >= MAX_PAGES || !seen.insert(path.clone()) {
                continue;
            }
            let (status, kind, body) = self.get(&path).await;
            assert!(status.is_success(), "{}: a link of the console leads to {path}, which answers {status}", self.who);
            assert!(kind.starts_with("text/html"), "{}: {path} is not a page: {kind}", self.who);
            let html = Html::parse_document(&body);
            for a in html.select(&link_sel) {
                let href = a.value().attr("href").unwrap_or_default();
                let href = href.split('#').next().unwrap_or_default();
                if followed(href) && !seen.contains(href) {
                    queue.push_back(href.to_string());
                }
            }
            forms.extend(forms_of(&path, &html));
        }
        forms
    }

    async fn send(&self, form: &Form, values: &[(String, String)]) -> (StatusCode, String, String) {
        let url = format!("{}{}", self.stack.base, form.action);
        let req = if form.method == "post" {
            self.stack.http.post(&url).header(ORIGIN, &self.stack.base).form(values)
        } else {
            self.stack.http.get(&url).query(values)
        };
        let resp = req.header(COOKIE, &self.cookie).send().await;
        let resp = resp.unwrap_or_else(|e| panic!("{} {} {}: {}", self.who, form.method, form.action, e.without_url()));
        let status = resp.status();
        let kind = resp.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
        (status, kind, resp.text().await.unwrap_or_default())
    }

    /// Sends every bad value in every visible field of every form; answers how many were sent.
    async fn sweep(&self, forms: &[Form]) -> usize {
        let mut sent = 0;
        let mut done = BTreeSet::new();
        for form in forms {
            // The same form on many pages (a lead's buttons) is swept once.
            let names: Vec<&str> = form.fields.iter().map(|f| f.name.as_str()).collect();
            if skipped(&form.action) || !done.insert((form.method.clone(), form.action.clone(), names.join(","))) {
                continue;
            }
            // A form whose own defaults are refused (an empty "new" form) says so at other
            // fields too: there, a 422 must place every message at a field, not necessarily this one.
            let (baseline, _, _) = self.send(form, &form.defaults()).await;
            for field in form.fields.iter().filter(|f| f.kind != "hidden") {
                for bad in bad_values(field, &form.method) {
                    let mut values = form.defaults();
                    values.retain(|(n, _)| *n != field.name);
                    values.push((field.name.clone(), bad.clone()));
                    let (status, kind, body) = self.send(form, &values).await;
                    sent += 1;
                    let what = format!(
                        "{}: {} {} (on {}) with {}={:?}",
                        self.who,
                        form.method,
                        form.action,
                        form.page,
                        field.name,
                        bad.chars().take(40).collect::<String>()
                    );
                    assert!(!status.is_server_error(), "{what} answered {status}: {}", &body[..body.len().min(500)]);
                    assert!(!body.contains(MARKUP), "{what}: the markup came back unescaped");
                    if status.is_client_error() {
                        assert!(kind.starts_with("text/html"), "{what}: a {status} a person sees as {kind}");
                    }
                    if status == StatusCode::UNPROCESSABLE_ENTITY {
                        let names: Vec<&str> = form.fields.iter().map(|f| f.name.as_str()).collect();
                        assert!(
                            every_message_at_a_field(&body, &names),
                            "{what}: 422 with a message at no field: {}",
                            &body[..body.len().min(2_000)]
                        );
                    }
                    // Ticking a box is a choice, not a typing error: what it asks for next (the
                    // hours of a working day) is told at those fields, checked above.
                    let typed = !field.kind.starts_with("checkbox");
                    if typed
                        && status == StatusCode::UNPROCESSABLE_ENTITY
                        && baseline != StatusCode::UNPROCESSABLE_ENTITY
                    {
                        assert!(
                            at_the_field(&body, &field.name),
                            "{what}: 422 without a message next to the field: {}",
                            errors_of(&body)
                        );
                    }
                }
            }
        }
        sent
    }
}

/// The messages of a refused page and where they are, for a failure's report.
fn errors_of(body: &str) -> String {
    let html = Html::parse_document(body);
    html.select(&selector(".error, [aria-invalid], [aria-describedby]"))
        .map(|e| {
            let v = e.value();
            format!(
                "<{} id={:?} name={:?} describedby={:?}>{}",
                v.name(),
                v.attr("id"),
                v.attr("name"),
                v.attr("aria-describedby"),
                e.text().collect::<String>().trim()
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Whether every error message on a refused page belongs to a field of the form (by its id
/// `<field>-error`, or a field pointing at it), and there is at least one.
fn every_message_at_a_field(body: &str, names: &[&str]) -> bool {
    let html = Html::parse_document(body);
    let described: BTreeSet<String> = html
        .select(&selector("[aria-describedby]"))
        .filter_map(|el| el.value().attr("aria-describedby"))
        .flat_map(|ids| ids.split_whitespace().map(str::to_string))
        .collect();
    let errors: Vec<String> = html
        .select(&selector(".error"))
        .filter(|e| !e.text().collect::<String>().trim().is_empty())
        .map(|e| e.value().attr("id").unwrap_or_default().to_string())
        .collect();
    !errors.is_empty()
        && errors
            .iter()
            .all(|id| described.contains(id) || names.iter().any(|n| *id == format!("{n}-error")) || id == "form-error")
}

/// Whether a refused page tells what is wrong at `name`: an element `#<name>-error`, or the
/// field itself (or its group) described by an error message on the page.
fn at_the_field(body: &str, name: &str) -> bool {
    let html = Html::parse_document(body);
    if html.select(&selector(&format!("[id=\"{name}-error\"]"))).next().is_some() {
        return true;
    }
    // The field, or the group it is in (a day among the working days), points at its message.
    let described: Vec<String> = html
        .select(&selector(&format!("[name=\"{name}\"]")))
        .flat_map(|el| {
            std::iter::once(el)
                .chain(el.ancestors().filter_map(ElementRef::wrap))
                .filter_map(|e| e.value().attr("aria-describedby").map(str::to_string))
                .collect::<Vec<_>>()
        })
        .collect();
    described.iter().flat_map(|ids| ids.split_whitespace()).any(|id| {
        html.select(&selector(&format!("[id=\"{id}\"]")))
            .next()
            .is_some_and(|e| !e.text().collect::<String>().trim().is_empty())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_field_of_every_console_form_refuses_bad_input_clearly() {
    let s = Stack::start(TOKEN, Duration::from_secs(1)).await;
    let mut ids = Vec::new();
    for (email, name, country) in
        [("dee@initech.com", "Dee", "DE"), ("carl@globex.com", "<b>Carl</b>", "US"), ("fay@gmail.com", "Fay", "FR")]
    {
        let lead = json!({"email": email, "first_name": name, "last_name": "Tester", "company": "Initech",
                          "job_title": "CTO", "country": country, "phone": "+1 212 555 0100", "utm_source": "google"});
        ids.push(s.post_lead(&lead).await);
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    for id in &ids {
        while s.lead(id).await["owner"]["rep_id"].as_str().is_none() {
            assert!(Instant::now() < deadline, "lead {id} was not assigned in 20 s");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    // A lead in the welcome series, then a second version of it: the campaign page offers to
    // move that lead, and the walk reaches the form that does.
    let gus = s.post_lead(&json!({"email": "gus@gmail.com", "first_name": "Gus"})).await;
    while s.lead(&gus).await["enrollments"].as_array().is_none_or(Vec::is_empty) {
        assert!(Instant::now() < deadline, "lead {gus} was not enrolled in 20 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let paused = s.http.post(format!("{}/admin/campaigns/welcome/pause", s.base)).bearer_auth(&s.token).send().await;
    assert!(paused.is_ok_and(|r| r.status().is_success()), "version 2 of the welcome series");
    let lead_pages: Vec<String> = ids.iter().map(|id| format!("/console/leads/{id}")).collect();

    let mut total = 0;
    for (who, email) in
        [("admin", "boss@acme.example"), ("marketer", "maria@acme.example"), ("rep", "anna@acme.example")]
    {
        let walker = Walker { stack: &s, who, cookie: s.sign_in(email).await };
        let starts = if who == "rep" { Vec::new() } else { lead_pages.clone() };
        let forms = walker.walk(&starts).await;
        assert!(!forms.is_empty(), "{who} found no form");
        total += walker.sweep(&forms).await;
    }
    // A walk that found nearly nothing would pass without testing anything.
    assert!(total > 200, "only {total} bad values were sent");
    eprintln!("{total} bad values sent to the console's forms");
    still_readable(&s, &ids).await;
    s.running.shutdown().await;
}

/// The leads are still there, readable through the JSON API: nothing the sweep sent broke them.
async fn still_readable(s: &Stack, ids: &[String]) {
    for id in ids {
        let lead: Value = s.lead(id).await;
        assert_eq!(lead["id"].as_str(), Some(id.as_str()), "{lead}");
    }
}
