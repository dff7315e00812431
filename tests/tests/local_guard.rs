//! The local stack keeps to its own machine and stays up, as a first real user would try it:
//! it will not start with an empty or short admin token; it answers only requests addressed to
//! it by a loopback name or its public URL's host (DNS rebinding); a rule value that once
//! crashed it is refused at its field; and a plain client that writes a too-large body before
//! reading gets the JSON 413, not a broken pipe.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use leadflow_tests::harness::Stack;
use reqwest::StatusCode;
use reqwest::header::HOST;
use serde_json::{Value, json};

const TOKEN: &str = "local-guard-admin-token";

// ---- the admin token ---------------------------------------------------------------------------

/// Starts `leadflow dev` with `LEADFLOW_ADMIN_TOKEN=token` and waits for it to exit: its exit
/// status, what it printed, and whether it created its data folder.
fn start_with_token(token: &str) -> (std::process::ExitStatus, String, bool) {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let mut child = Command::new(env!("CARGO_BIN_EXE_leadflow-under-test"))
        .args(["dev", "--addr", "127.0.0.1:0"])
        .arg("--data-dir")
        .arg(&data)
        .arg("--config")
        .arg(leadflow_tests::config_dir())
        .env("LEADFLOW_ADMIN_TOKEN", token)
        .env("LEADFLOW_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the leadflow binary starts");
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            child.kill().ok();
            let _ = child.wait();
            panic!("leadflow dev kept running with the token {token:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut out = String::new();
    child.stdout.take().expect("stdout").read_to_string(&mut out).expect("stdout");
    child.stderr.take().expect("stderr").read_to_string(&mut out).expect("stderr");
    (status, out, data.exists())
}

#[test]
fn the_stack_refuses_to_start_with_an_empty_or_short_admin_token() {
    let (status, out, created) = start_with_token("");
    assert!(!status.success(), "{out}");
    assert!(out.contains("admin token (LEADFLOW_ADMIN_TOKEN or --admin-token) is set but empty"), "{out}");
    assert!(!out.contains("listening") && !created, "nothing started: {out}");

    let short = "fifteen-chars-x";
    let (status, out, created) = start_with_token(short);
    assert!(!status.success(), "{out}");
    assert!(out.contains("is shorter than 16 characters"), "{out}");
    assert!(!out.contains(short), "the token is never printed: {out}");
    assert!(!out.contains("listening") && !created, "{out}");
}

/// The lead once the pipeline has stored it (capture answers before it is).
async fn stored(s: &Stack, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let lead = s.lead(id).await;
        if lead["contact"]["email"].is_string() {
            return lead;
        }
        assert!(Instant::now() < deadline, "lead {id} was not stored in 20 s: {lead}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// ---- the Host header -----------------------------------------------------------------------------

async fn get_with_host(s: &Stack, path: &str, host: &str) -> (StatusCode, Value) {
    let resp = s.http.get(format!("{}{path}", s.base)).header(HOST, host).bearer_auth(&s.token).send().await;
    let resp = resp.unwrap_or_else(|e| panic!("{path} answers: {e}"));
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_for_another_host_is_refused_and_loopback_ones_are_served() {
    let s = Stack::start(TOKEN, Duration::from_secs(1)).await;
    let port = s.running.addr.port();
    let id = s.post_lead(&json!({"email": "ana@acme.io", "first_name": "Ana", "country": "DE"})).await;
    stored(&s, &id).await;

    for path in ["/health", "/admin/leads?email=ana@acme.io", "/console", "/thanks", &format!("/admin/leads/{id}")] {
        for host in ["evil.example", &format!("evil.example:{port}"), "localhost.evil.example", "127.0.0.1.nip.io"] {
            let (status, body) = get_with_host(&s, path, host).await;
            assert_eq!(status, StatusCode::MISDIRECTED_REQUEST, "{path} for {host}: {body}");
            assert_eq!(body["error"]["code"], "host_not_allowed", "{body}");
            assert!(body["error"]["message"].as_str().is_some_and(|m| m.contains("DNS rebinding")), "{body}");
        }
    }
    // Nor may another host's page post a lead or reach a token-guarded endpoint.
    let resp = s
        .http
        .post(format!("{}/leads", s.base))
        .header(HOST, "evil.example")
        .json(&json!({"email": "eve@evil.example"}))
        .send()
        .await
        .expect("capture answers");
    assert_eq!(resp.status(), StatusCode::MISDIRECTED_REQUEST);
    let resp = s
        .http
        .post(format!("{}/dev/sign-in-link", s.base))
        .header(HOST, "evil.example")
        .bearer_auth(&s.token)
        .json(&json!({}))
        .send()
        .await
        .expect("the link endpoint answers");
    assert_eq!(resp.status(), StatusCode::MISDIRECTED_REQUEST);

    // Loopback names and addresses, and the host of the configured public URL, are served.
    for host in [format!("127.0.0.1:{port}"), format!("localhost:{port}"), "localhost".into(), "leadflow.test".into()] {
        let (status, body) = get_with_host(&s, &format!("/admin/leads/{id}"), &host).await;
        assert_eq!(status, StatusCode::OK, "{host}: {body}");
        assert_eq!(body["contact"]["email"], "ana@acme.io");
    }
    let (status, _) = s.page_as("", "/thanks").await;
    assert_eq!(status, StatusCode::OK, "the normal request, with reqwest's own Host");
    s.running.shutdown().await;
}

// ---- rule values that crashed the stack --------------------------------------------------------

async fn put_rules(s: &Stack, kind: &str, rules: &Value) -> (StatusCode, Value) {
    let resp = s
        .http
        .put(format!("{}/admin/rules/{kind}", s.base))
        .bearer_auth(&s.token)
        .json(rules)
        .send()
        .await
        .unwrap_or_else(|e| panic!("PUT {kind}: {e}"));
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unbounded_rule_values_are_refused_at_their_field_and_the_stack_keeps_serving() {
    let s = Stack::start(TOKEN, Duration::from_secs(1)).await;

    let mut routing = s.api("/admin/rules/routing").await["routing"].clone();
    routing["sla_hours"] = json!(1e10);
    let (status, body) = put_rules(&s, "routing", &routing).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["field"], "sla_hours", "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("at most 8760 hours"), "the allowed range: {body}");

    let mut scoring = s.api("/admin/rules/scoring").await["scoring"].clone();
    let rule = scoring["fit"][0]["id"].as_str().expect("a fit rule").to_string();
    scoring["fit"][0]["points"] = json!(1e300);
    let (status, body) = put_rules(&s, "scoring", &scoring).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["field"], format!("fit.{rule}"), "{body}");
    assert!(body["error"]["message"].as_str().is_some_and(|m| m.contains("points must be from -1000 to 1000")));

    // Nothing was stored, and the stack still captures, scores and routes.
    assert_eq!(s.api("/admin/rules/routing").await["version"], Value::Null);
    assert_eq!(s.api("/admin/rules/scoring").await["version"], Value::Null);
    let id = s
        .post_lead(&json!({"email": "ana@acme.io", "first_name": "Ana", "company": "Acme",
                                 "job_title": "CTO", "country": "DE"}))
        .await;
    let owner = s.owner(&id).await;
    assert!(!owner.is_empty());
    assert!(s.lead(&id).await["score"]["total"].is_number());

    // The console's rule editor shares the validation: the error is at the field, with its line.
    let boss = s.sign_in("boss@acme.example").await;
    let (_, editor) = s.page_as(&boss, "/console/admin/rules/routing").await;
    let csrf = Stack::csrf_of(&editor);
    let toml = Stack::textarea_of(&editor, "toml");
    let draft = toml.replacen("sla_hours = 4", "sla_hours = 1e10", 1);
    assert_ne!(draft, toml, "the routing file sets sla_hours: {toml}");
    let line = draft.lines().position(|l| l.contains("sla_hours = 1e10")).expect("line") + 1;
    let form = [("csrf", csrf.as_str()), ("toml", draft.as_str()), ("action", "save"), ("base", "")];
    let resp = s.post_as(&boss, "/console/admin/rules/routing", &form).await;
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = resp.text().await.expect("page");
    assert!(page.contains(&format!("<strong>sla_hours</strong> (line {line}")), "{page}");
    assert!(page.contains("at most 8760 hours"), "{page}");
    assert_eq!(s.api("/health").await["status"], "ok");
    s.running.shutdown().await;
}

// ---- a too-large body, sent by a plain client ----------------------------------------------------

/// Sends `head` and then `body` on a new connection, writing all of it before reading anything,
/// as Python's urllib does; answers the status and the JSON body of the response.
fn send_then_read(addr: SocketAddr, head: &str, body: &[u8]) -> Result<(u16, Value), String> {
    let mut conn = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
    conn.set_read_timeout(Some(Duration::from_secs(20))).map_err(|e| e.to_string())?;
    conn.write_all(head.as_bytes()).map_err(|e| format!("writing the head: {e}"))?;
    conn.write_all(body).map_err(|e| format!("writing the body: {e}"))?;
    let mut answer = Vec::new();
    conn.read_to_end(&mut answer).map_err(|e| format!("reading the answer: {e}"))?;
    let text = String::from_utf8_lossy(&answer);
    let (head, json) = text.split_once("\r\n\r\n").ok_or_else(|| format!("no answer: {text:?}"))?;
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).ok_or_else(|| format!("status: {head}"))?;
    Ok((status, serde_json::from_str(json).map_err(|e| format!("not JSON ({e}): {json}"))?))
}

fn big_lead(size: usize) -> Vec<u8> {
    let mut body = br#"{"email":"big@acme.io","notes":""#.to_vec();
    body.resize(size - 2, b'x');
    body.extend_from_slice(b"\"}");
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_client_sending_a_megabyte_reads_the_413_every_time() {
    let s = Stack::start(TOKEN, Duration::from_secs(1)).await;
    let addr = s.running.addr;
    let body = big_lead(1024 * 1024);
    let head = move |extra: &str| {
        format!(
            "POST /leads HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: Python-urllib/3.11\r\nConnection: close\r\n{extra}\r\n"
        )
    };
    let outcomes = tokio::task::spawn_blocking(move || {
        let mut outcomes = Vec::new();
        let declared = head(&format!("Content-Type: application/json\r\nContent-Length: {}\r\n", body.len()));
        for _ in 0..20 {
            outcomes.push(("declared", send_then_read(addr, &declared, &body)));
        }
        // Chunked: the size is only known by reading past the limit.
        let chunked_head = head("Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n");
        let mut chunked = Vec::new();
        for part in body.chunks(64 * 1024) {
            chunked.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
            chunked.extend_from_slice(part);
            chunked.extend_from_slice(b"\r\n");
        }
        chunked.extend_from_slice(b"0\r\n\r\n");
        for _ in 0..5 {
            outcomes.push(("chunked", send_then_read(addr, &chunked_head, &chunked)));
        }
        // Refused before the size is even looked at: the body is read all the same.
        let wrong_type = head(&format!("Content-Type: text/plain\r\nContent-Length: {}\r\n", body.len()));
        outcomes.push(("wrong type", send_then_read(addr, &wrong_type, &body)));
        let other_host = format!(
            "POST /leads HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        outcomes.push(("other host", send_then_read(addr, &other_host, &body)));
        outcomes
    })
    .await
    .expect("the client thread");

    for (what, outcome) in outcomes {
        let (status, json) = outcome.unwrap_or_else(|e| panic!("{what}: {e}"));
        let want = match what {
            "wrong type" => (415, "unsupported_media_type"),
            "other host" => (421, "host_not_allowed"),
            _ => (413, "body_too_large"),
        };
        assert_eq!((status, json["error"]["code"].as_str()), (want.0, Some(want.1)), "{what}: {json}");
    }
    // And the stack is none the worse for it.
    let id = s.post_lead(&json!({"email": "small@acme.io"})).await;
    assert_eq!(stored(&s, &id).await["contact"]["email"], "small@acme.io");
    s.running.shutdown().await;
}
