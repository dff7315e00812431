//! End to end over HTTP against the running local stack, on a random port: what a user sees.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use leadflow_infra::dev::Running;
use reqwest::StatusCode;
use serde_json::{Value, json};

const TOKEN: &str = "test-admin-token";

struct Stack {
    running: Running,
    base: String,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Stack {
    async fn start() -> Stack {
        let (running, dir) = leadflow_tests::harness::local_stack(TOKEN, Duration::from_millis(100)).await;
        let base = format!("http://{}", running.addr);
        Stack { running, base, http: reqwest::Client::new(), _dir: dir }
    }

    async fn post_json(&self, body: &Value) -> (StatusCode, Value) {
        self.post_raw("application/json", body.to_string().into_bytes(), &[]).await
    }

    async fn post_raw(&self, content_type: &str, body: Vec<u8>, headers: &[(&str, &str)]) -> (StatusCode, Value) {
        let mut req = self.http.post(format!("{}/leads", self.base)).header("content-type", content_type).body(body);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = req.send().await.expect("capture answers");
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    async fn admin(&self, path: &str) -> (StatusCode, Value) {
        let resp =
            self.http.get(format!("{}{path}", self.base)).bearer_auth(TOKEN).send().await.expect("admin answers");
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// Polls the admin API until `done` holds for the lead, or 10 s pass.
    async fn wait_for_lead(&self, id: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let (status, lead) = self.admin(&format!("/admin/leads/{id}")).await;
            if status == StatusCode::OK && done(&lead) {
                return lead;
            }
            assert!(Instant::now() < deadline, "lead {id} did not get there in 10 s: {status} {lead}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn outbox(&self) -> PathBuf {
        self.running.outbox.clone()
    }
}

fn emls(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
                .filter_map(|e| Some((e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).ok()?)))
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

fn assignment_emls_for(dir: &Path, lead_id: &str) -> Vec<Vec<u8>> {
    emls(dir).into_iter().filter(|(n, _)| n.contains("assignment") && n.contains(lead_id)).map(|(_, b)| b).collect()
}

fn ana() -> Value {
    json!({"email": "ana@acme.io", "first_name": "Ana", "last_name": "Lima", "company": "Acme",
           "job_title": "CTO", "country": "DE", "phone": "+49 30 901820", "utm_source": "google",
           "consent": true, "consent_text": "Yes, email me about Acme."})
}

#[tokio::test]
async fn a_valid_lead_reaches_an_assignment_email_to_the_right_rep() {
    let stack = Stack::start().await;
    let (status, body) = stack.post_json(&ana()).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let id = body["lead_id"].as_str().expect("lead id").to_string();

    let lead = stack.wait_for_lead(&id, |l| l["owner"].is_object()).await;
    let rep = lead["owner"]["rep_id"].as_str().unwrap_or_default().to_string();
    assert!(rep == "anna" || rep == "ben", "EMEA lead went to {rep}");
    assert_eq!(lead["contact"]["email"], "ana@acme.io");
    assert_eq!(lead["contact"]["phone"], "+4930901820");
    assert_eq!(lead["lifecycle"], "mql");
    let reasons = lead["score"]["reasons"].as_array().cloned().unwrap_or_default();
    let sum: f64 = reasons.iter().filter_map(|r| r["points"].as_f64()).sum();
    assert!((sum - lead["score"]["total"].as_f64().unwrap_or(-1.0)).abs() < 1e-9, "reasons add up to the score");
    assert!(lead["owner"]["explanation"].as_array().is_some_and(|e| !e.is_empty()));
    assert!(lead["consent"].is_null(), "consent waits for the confirmation email's button: {lead}");

    let deadline = Instant::now() + Duration::from_secs(5);
    let eml = loop {
        if let Some(e) = assignment_emls_for(&stack.outbox(), &id).pop() {
            break e;
        }
        assert!(Instant::now() < deadline, "no assignment email in the outbox");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let msg = mail_parser::MessageParser::default().parse(&eml).expect("the .eml is RFC 5322");
    let to = msg.to().and_then(|a| a.first()).and_then(|a| a.address()).unwrap_or_default().to_string();
    assert_eq!(to, format!("{rep}@acme.example"));
    assert!(msg.subject().unwrap_or_default().contains("Ana Lima"));
    let text = msg.body_text(0).unwrap_or_default();
    let html = msg.body_html(0).unwrap_or_default();
    assert!(text.contains("ana@acme.io") && text.contains("EMEA"), "{text}");
    assert!(html.contains("Acme"));

    let (_, trail) = stack.admin(&format!("/admin/leads/{id}")).await;
    let kinds: Vec<&str> = trail["activities"]
        .as_array()
        .map(|a| a.iter().filter_map(|x| x["kind"].as_str()).collect())
        .unwrap_or_default();
    for k in ["form_submission", "stage_changed", "assigned", "email_sent"] {
        assert!(kinds.contains(&k), "trail lacks {k}: {kinds:?}");
    }
    stack.running.shutdown().await;
}

#[tokio::test]
async fn a_duplicate_email_merges_and_an_idempotent_retry_is_one_lead() {
    let stack = Stack::start().await;
    let (_, a) = stack.post_json(&ana()).await;
    let mut again = ana();
    again["email"] = json!("Ana@ACME.io");
    let (status, b) = stack.post_json(&again).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (a, b) =
        (a["lead_id"].as_str().unwrap_or_default().to_string(), b["lead_id"].as_str().unwrap_or_default().to_string());
    let merged = stack.wait_for_lead(&b, |l| l["submissions"] == 2).await;
    assert_eq!(merged["id"], a.as_str(), "the second submission resolves to the first lead");

    let key = [("idempotency-key", "form-7f3a")];
    let bob = json!({"email": "bob@initech.example", "job_title": "Head of IT", "country": "US"});
    let (_, x) = stack.post_raw("application/json", bob.to_string().into_bytes(), &key).await;
    let (_, y) = stack.post_raw("application/json", bob.to_string().into_bytes(), &key).await;
    assert_eq!(x["lead_id"], y["lead_id"], "a retry gets the same lead id");
    let id = x["lead_id"].as_str().unwrap_or_default();
    let lead = stack.wait_for_lead(id, |l| l["owner"].is_object()).await;
    assert_eq!(lead["submissions"], 1);
    assert_eq!(lead["owner"]["rep_id"], "carla");
    let (status, by_email) = stack.admin("/admin/leads?email=BOB@initech.example").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(by_email["id"], id);
    stack.running.shutdown().await;
}

#[tokio::test]
async fn a_filled_honeypot_stores_nothing() {
    let stack = Stack::start().await;
    let (status, body) = stack
        .post_json(&json!({"email": "bot@spam.example", "job_title": "CEO", "country": "DE", "_gotcha": "x"}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert!(body["lead_id"].is_string(), "bots get the answer humans get");
    // A human after the bot: once it is through, the bot would have been too.
    let (_, human) = stack.post_json(&ana()).await;
    stack.wait_for_lead(human["lead_id"].as_str().unwrap_or_default(), |l| l["owner"].is_object()).await;
    let (status, _) = stack.admin("/admin/leads?email=bot@spam.example").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = stack.admin(&format!("/admin/leads/{}", body["lead_id"].as_str().unwrap_or_default())).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    stack.running.shutdown().await;
}

#[tokio::test]
async fn bad_input_gets_a_4xx_json_error_never_a_5xx() {
    let stack = Stack::start().await;
    let long = "x".repeat(13 * 1024);
    let json_ct = "application/json";
    let form_ct = "application/x-www-form-urlencoded";
    // (what, content type, body, extra headers, expected status, expected error code)
    type Case<'a> = (&'a str, &'a str, Vec<u8>, Vec<(&'a str, &'a str)>, u16, &'a str);
    let cases: Vec<Case> = vec![
        ("broken JSON", json_ct, b"{\"email\": \"a@b.co\",".to_vec(), vec![], 400, "malformed_body"),
        ("JSON array", json_ct, b"[1,2]".to_vec(), vec![], 400, "malformed_body"),
        ("email is a number", json_ct, br#"{"email": 123}"#.to_vec(), vec![], 422, "invalid_type"),
        (
            "name is an object",
            json_ct,
            br#"{"email": "a@acme.io", "first_name": {"x": 1}}"#.to_vec(),
            vec![],
            422,
            "invalid_type",
        ),
        (
            "custom field is an array",
            json_ct,
            br#"{"email": "a@acme.io", "notes": [1]}"#.to_vec(),
            vec![],
            422,
            "invalid_type",
        ),
        (
            "13 KiB name",
            json_ct,
            json!({"email": "a@acme.io", "first_name": long}).to_string().into_bytes(),
            vec![],
            422,
            "invalid_field",
        ),
        ("1 MiB body", json_ct, vec![b' '; 1024 * 1024], vec![], 413, "body_too_large"),
        ("non-UTF-8 JSON", json_ct, b"{\"email\": \"a\xff\xfe@acme.io\"}".to_vec(), vec![], 400, "malformed_body"),
        ("non-UTF-8 form", form_ct, b"email=a%FF%FE%40acme.io".to_vec(), vec![], 400, "malformed_body"),
        (
            "CR/LF in email",
            json_ct,
            json!({"email": "a@acme.io\r\nBcc: all@acme.io"}).to_string().into_bytes(),
            vec![],
            422,
            "invalid_field",
        ),
        (
            "CR/LF in name",
            json_ct,
            json!({"email": "a@acme.io", "last_name": "Lima\r\nX-Evil: 1"}).to_string().into_bytes(),
            vec![],
            422,
            "invalid_field",
        ),
        (
            "NUL in company",
            json_ct,
            json!({"email": "a@acme.io", "company": "Ac\u{0}me"}).to_string().into_bytes(),
            vec![],
            422,
            "invalid_field",
        ),
        ("no email", json_ct, br#"{"first_name": "Ana"}"#.to_vec(), vec![], 422, "required"),
        ("not an email", json_ct, br#"{"email": "ana at acme"}"#.to_vec(), vec![], 422, "invalid_field"),
        ("text/plain", "text/plain", b"email=a@acme.io".to_vec(), vec![], 415, "unsupported_media_type"),
        ("no content type", "", b"{}".to_vec(), vec![], 415, "unsupported_media_type"),
        (
            "foreign origin",
            json_ct,
            br#"{"email": "a@acme.io"}"#.to_vec(),
            vec![("origin", "https://evil.example")],
            403,
            "origin_not_allowed",
        ),
        (
            "too many fields",
            json_ct,
            {
                let mut m = serde_json::Map::new();
                m.insert("email".into(), json!("a@acme.io"));
                for i in 0..30 {
                    m.insert(format!("f{i}"), json!("v"));
                }
                Value::Object(m).to_string().into_bytes()
            },
            vec![],
            422,
            "too_many_fields",
        ),
        (
            "empty idempotency key",
            json_ct,
            br#"{"email": "a@acme.io"}"#.to_vec(),
            vec![("idempotency-key", "")],
            400,
            "invalid_idempotency_key",
        ),
    ];
    for (what, ct, body, headers, want, code) in cases {
        let (status, err) = stack.post_raw(ct, body, &headers).await;
        assert_eq!(status.as_u16(), want, "{what}: {err}");
        assert_eq!(err["error"]["code"], code, "{what}: {err}");
        assert!(err["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{what}: {err}");
    }
    let (status, err) = stack.post_json(&json!({"email": "a@acme.io", "last_name": "x\r\ny"})).await;
    assert_eq!(err["error"]["field"], "last_name", "{status} {err}");

    let resp = stack.http.get(format!("{}/leads", stack.base)).send().await.expect("answers");
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
    let err: Value = resp.json().await.unwrap_or(Value::Null);
    assert_eq!(err["error"]["code"], "method_not_allowed");

    // The stack is still healthy after all that.
    let health = stack.http.get(format!("{}/health", stack.base)).send().await.expect("health answers");
    assert_eq!(health.status(), StatusCode::OK);
    stack.running.shutdown().await;
}

#[tokio::test]
async fn script_in_a_name_comes_out_escaped_in_the_email() {
    let stack = Stack::start().await;
    let mut lead = ana();
    lead["email"] = json!("mallory@acme.io");
    lead["first_name"] = json!("<script>alert(1)</script>");
    let (status, body) = stack.post_json(&lead).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let id = body["lead_id"].as_str().unwrap_or_default().to_string();
    stack.wait_for_lead(&id, |l| l["owner"].is_object()).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    let eml = loop {
        if let Some(e) = assignment_emls_for(&stack.outbox(), &id).pop() {
            break e;
        }
        assert!(Instant::now() < deadline, "no assignment email");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let msg = mail_parser::MessageParser::default().parse(&eml).expect("parses");
    let html = msg.body_html(0).unwrap_or_default();
    assert!(!html.contains("<script>"), "raw script tag in the HTML part");
    assert!(html.contains("&lt;script&gt;"), "{html}");
    stack.running.shutdown().await;
}

#[tokio::test]
async fn a_plain_html_form_is_redirected_to_its_thank_you_page() {
    let stack = Stack::start().await;
    let form = "email=eve%40globex.example&first_name=Eve&form=contact&job_title=Director&country=GB&consent=on";
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    let resp = client
        .post(format!("{}/leads", stack.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("origin", "https://www.acme.example")
        .body(form)
        .send()
        .await
        .expect("answers");
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(resp.headers().get("location").and_then(|v| v.to_str().ok()), Some("https://www.acme.example/thanks"));

    // Preflight from the allowed origin.
    let pre = client
        .request(reqwest::Method::OPTIONS, format!("{}/leads", stack.base))
        .header("origin", "https://www.acme.example")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .expect("answers");
    assert_eq!(
        pre.headers().get("access-control-allow-origin").and_then(|v| v.to_str().ok()),
        Some("https://www.acme.example")
    );
    let (status, lead) = {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let r = stack.admin("/admin/leads?email=eve@globex.example").await;
            if r.0 == StatusCode::OK && r.1["owner"].is_object() || Instant::now() > deadline {
                break r;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    assert_eq!(status, StatusCode::OK);
    assert!(lead["consent"].is_null(), "consent waits for the confirmation email's button: {lead}");
    assert_eq!(lead["attribution"]["first_touch"]["form"], "contact");
    stack.running.shutdown().await;
}

#[tokio::test]
async fn the_admin_api_wants_the_token() {
    let stack = Stack::start().await;
    let resp = stack.http.get(format!("{}/admin/leads?email=ana@acme.io", stack.base)).send().await.expect("answers");
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let resp = stack
        .http
        .get(format!("{}/admin/leads?email=ana@acme.io", stack.base))
        .bearer_auth("wrong")
        .send()
        .await
        .expect("answers");
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let (status, err) = stack.admin("/admin/leads/not-a-ulid").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(err["error"]["code"], "invalid_lead_id");
    stack.running.shutdown().await;
}

#[tokio::test]
async fn a_lead_below_mql_gets_its_first_drip_in_the_outbox() {
    let stack = Stack::start().await;
    let (_, body) = stack.post_json(&json!({"email": "joe@gmail.com", "first_name": "Joe"})).await;
    let id = body["lead_id"].as_str().unwrap_or_default().to_string();
    let lead = stack.wait_for_lead(&id, |l| l["enrollments"].as_array().is_some_and(|e| !e.is_empty())).await;
    assert!(lead["owner"].is_null());
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let drips: Vec<_> =
            emls(&stack.outbox()).into_iter().filter(|(n, _)| n.contains("drip") && n.contains(&id)).collect();
        if let Some((_, eml)) = drips.first() {
            let msg = mail_parser::MessageParser::default().parse(eml).expect("parses");
            assert!(msg.subject().unwrap_or_default().contains("Joe"));
            assert_eq!(drips.len(), 1, "only the first step is due");
            break;
        }
        assert!(Instant::now() < deadline, "no drip email in the outbox");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stack.running.shutdown().await;
}

#[tokio::test]
async fn an_erased_lead_leaves_no_personal_data_and_is_never_emailed_again() {
    let stack = Stack::start().await;
    let email = "erin.erasable@gmail.com";
    let (_, body) = stack.post_json(&json!({"email": email, "first_name": "Erin", "phone": "+49 30 901820"})).await;
    let id = body["lead_id"].as_str().unwrap_or_default().to_string();
    stack.wait_for_lead(&id, |l| l["enrollments"].as_array().is_some_and(|e| !e.is_empty())).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while !emls(&stack.outbox()).iter().any(|(n, _)| n.contains("drip") && n.contains(&id)) {
        assert!(Instant::now() < deadline, "no drip email in the outbox");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let events_before = std::fs::read(&stack.running.events).map(|b| b.len()).unwrap_or(0);

    let resp = stack
        .http
        .delete(format!("{}/admin/leads/{id}", stack.base))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("admin answers");
    assert!(resp.status().is_success(), "{}", resp.status());

    // The store: the lead is a tombstone, the address no longer finds it.
    let (_, lead) = stack.admin(&format!("/admin/leads/{id}")).await;
    let shown = lead.to_string();
    for personal in [email, "Erin", "901820"] {
        assert!(!shown.contains(personal), "{personal} still shown: {shown}");
    }
    let (status, _) = stack.admin(&format!("/admin/leads?email={email}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // The outbox holds no email about the lead any more.
    for (name, bytes) in emls(&stack.outbox()) {
        assert!(!name.contains(&id), "{name} is still in the outbox");
        assert!(!String::from_utf8_lossy(&bytes).contains(email), "{name} still has the address");
    }
    // The same address comes back: accepted, stored, never emailed.
    let (status, again) = stack.post_json(&json!({"email": email, "first_name": "Erin"})).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let new_id = again["lead_id"].as_str().unwrap_or_default().to_string();
    stack.wait_for_lead(&new_id, |l| l["score"].is_object()).await;
    tokio::time::sleep(Duration::from_millis(800)).await; // several scheduler ticks
    for (name, bytes) in emls(&stack.outbox()) {
        assert!(!String::from_utf8_lossy(&bytes).contains(email), "{name}: the erased address was emailed again");
    }
    // Events written since carry no personal data.
    let events = std::fs::read(&stack.running.events).unwrap_or_default();
    let new_lines = String::from_utf8_lossy(&events[events_before.min(events.len())..]).into_owned();
    for personal in [email, "Erin", "901820"] {
        assert!(!new_lines.contains(personal), "{personal} in a new event line: {new_lines}");
    }
    stack.running.shutdown().await;
}

/// The README's command for the local stack, as a newcomer types it, compiles no AWS SDK crate:
/// cargo's unit graph of that exact command (with `build` for `run`) names every package it would
/// compile. `RUSTC_BOOTSTRAP` only unlocks the `--unit-graph` flag of this stable cargo; nothing
/// is built.
#[test]
fn the_readme_command_for_the_local_stack_compiles_no_aws_sdk() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md");
    let command = readme
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("cargo run") && l.ends_with("-- dev"))
        .expect("the README gives `cargo run … -- dev`");
    let words: Vec<&str> = command.split_whitespace().take_while(|w| *w != "--").collect();
    assert_eq!(&words[..2], ["cargo", "run"], "{command}");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let out = std::process::Command::new(&cargo)
        .current_dir(&root)
        .env("RUSTC_BOOTSTRAP", "1")
        .arg("build")
        .args(&words[2..])
        .args(["-Z", "unstable-options", "--unit-graph"])
        .output()
        .expect("cargo runs");
    assert!(out.status.success(), "{command}: {}", String::from_utf8_lossy(&out.stderr));
    let graph: Value = serde_json::from_slice(&out.stdout).expect("the unit graph is JSON");
    let packages: std::collections::BTreeSet<String> = graph["units"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|u| u["pkg_id"].as_str())
        // "path+file:///…#leadflow-infra@0.1.0" or "registry+…#aws-config@1.13.0"
        .filter_map(|id| id.rsplit('#').next()?.split('@').next().map(str::to_string))
        .collect();
    assert!(packages.contains("leadflow-infra"), "the command builds the leadflow binary: {packages:?}");
    let aws_side: Vec<&String> = packages
        .iter()
        .filter(|p| {
            p.starts_with("aws-sdk-")
                || p.starts_with("lambda_")
                // aws-lc's C build came in through rustls's unified features, minutes of it.
                || p.starts_with("aws-lc")
                || ["aws-config", "aws-runtime", "aws-smithy-runtime", "aws_lambda_events", "leadflow-aws"]
                    .contains(&p.as_str())
        })
        .collect();
    assert!(aws_side.is_empty(), "`{command}` compiles {aws_side:?}");
}
