//! The `leadflow` command line against a deployment's address: https (or `--sigv4`) means
//! SigV4-signed requests, with the AWS credentials of the environment, over TLS for https.
//! The real binary, as its own process, so the environment it reads is its own.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::{Command, Output};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

const AWS_VARS: [&str; 5] =
    ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_REGION", "AWS_DEFAULT_REGION"];

/// `leadflow <args>` with none of the AWS or Leadflow variables of this process, and `vars`.
fn leadflow(args: &[&str], vars: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_leadflow-under-test"));
    cmd.args(args);
    for name in AWS_VARS.iter().chain(&["LEADFLOW_URL", "LEADFLOW_ADMIN_TOKEN", "LEADFLOW_SIGV4"]) {
        cmd.env_remove(name);
    }
    cmd.envs(vars.iter().copied()).env("LEADFLOW_LOG", "warn");
    match cmd.output() {
        Ok(out) => out,
        Err(e) => panic!("cannot run leadflow: {e}"),
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A loopback listener that hands the first `want` bytes (or fewer, at the end) of its first
/// connection to `reply`, which answers what to write back.
fn one_shot_server(
    reply: impl FnOnce(&[u8]) -> Vec<u8> + Send + 'static,
    done: impl Fn(&[u8]) -> bool + Send + 'static,
) -> (u16, mpsc::Receiver<Vec<u8>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("cannot bind: {e}"));
    let port = listener.local_addr().map(|a| a.port()).unwrap_or_else(|e| panic!("no address: {e}"));
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let Ok((mut conn, _)) = listener.accept() else { return };
        let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while !done(&got) {
            match conn.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
        let answer = reply(&got);
        let _ = conn.write_all(&answer);
        let _ = conn.flush();
        let _ = tx.send(got);
    });
    (port, rx)
}

#[test]
fn an_https_url_without_aws_credentials_fails_naming_the_variables() {
    let url = "https://abc123.execute-api.eu-west-1.amazonaws.com";
    let out = leadflow(&["rep", "list", "--url", url, "--region", "eu-west-1", "--token", "tok"], &[]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.starts_with("error: missing_credentials: "), "{err}");
    assert!(err.contains("AWS_ACCESS_KEY_ID") && err.contains("AWS_SECRET_ACCESS_KEY"), "{err}");

    // One of the two given: the other is named, and the given secret never printed.
    let secret = "wJalrXUtnFEMI-not-to-be-printed";
    let out = leadflow(&["lead", "show", "x", "--url", url], &[("AWS_SECRET_ACCESS_KEY", secret), ("AWS_REGION", "r")]);
    let err = stderr(&out);
    assert!(!out.status.success());
    assert!(err.contains("not set: AWS_ACCESS_KEY_ID") && !err.contains(secret), "{err}");

    // Credentials but no region.
    let keys = [("AWS_ACCESS_KEY_ID", "AKIDTEST"), ("AWS_SECRET_ACCESS_KEY", secret)];
    let out = leadflow(&["rep", "list", "--url", url], &keys);
    let err = stderr(&out);
    assert!(err.starts_with("error: missing_region: ") && err.contains("--region"), "{err}");
    assert!(!err.contains(secret), "{err}");
}

#[test]
fn an_https_url_is_no_longer_refused_and_is_spoken_to_over_tls() {
    // Reads the client's first bytes, then hangs up: the handshake fails, after it started.
    let (port, first_bytes) = one_shot_server(|_| Vec::new(), |got| got.len() >= 5);
    let url = format!("https://127.0.0.1:{port}");
    let keys = [("AWS_ACCESS_KEY_ID", "AKIDTEST"), ("AWS_SECRET_ACCESS_KEY", "secret"), ("AWS_REGION", "eu-west-1")];
    let out = leadflow(&["rep", "list", "--url", &url], &keys);
    let err = stderr(&out);
    assert!(!out.status.success());
    assert!(err.starts_with("error: unreachable: "), "{err}");
    assert!(!err.contains("bad_url") && !err.contains("scheme is not http"), "{err}");
    let got = first_bytes.recv_timeout(Duration::from_secs(30)).unwrap_or_else(|e| panic!("no connection: {e}"));
    // A TLS record: handshake (22), protocol 3.x: a ClientHello.
    assert_eq!(got.get(..2), Some(&[0x16, 0x03][..]), "not a TLS ClientHello: {got:?}");
}

#[test]
fn sigv4_requests_reach_the_api_signed_and_without_the_bearer_token() {
    let answer = |_: &[u8]| {
        let body = r#"{"reps":[]}"#;
        format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    };
    let (port, request) = one_shot_server(answer, |got| got.windows(4).any(|w| w == b"\r\n\r\n"));
    let url = format!("http://127.0.0.1:{port}");
    let vars = [
        ("AWS_ACCESS_KEY_ID", "AKIDTEST"),
        ("AWS_SECRET_ACCESS_KEY", "secret"),
        ("AWS_SESSION_TOKEN", "SESSIONTOK"),
        ("AWS_DEFAULT_REGION", "eu-west-1"),
        ("LEADFLOW_SIGV4", "1"),
    ];
    let out = leadflow(&["rep", "list", "--url", &url, "--token", "tok"], &vars);
    assert!(out.status.success(), "{}", stderr(&out));
    let request = request.recv_timeout(Duration::from_secs(30)).unwrap_or_else(|e| panic!("no request: {e}"));
    let request = String::from_utf8_lossy(&request).to_ascii_lowercase();
    assert!(request.starts_with("get /admin/reps http/1.1\r\n"), "{request}");
    let authorization = request
        .lines()
        .find_map(|l| l.strip_prefix("authorization: "))
        .unwrap_or_else(|| panic!("no authorization: {request}"));
    assert!(
        authorization.starts_with("aws4-hmac-sha256 credential=akidtest/")
            && authorization.contains("/eu-west-1/execute-api/aws4_request, ")
            && authorization.contains("signedheaders=host;x-amz-date;x-amz-security-token, signature="),
        "{authorization}"
    );
    assert!(request.contains("\r\nx-amz-date: ") && request.contains("\r\nx-amz-security-token: sessiontok\r\n"));
    assert!(!request.contains("bearer"), "{request}");
}
