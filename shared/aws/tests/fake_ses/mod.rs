//! An SES v2 endpoint that answers `SendEmail` the way the test tells it to: accept, or refuse
//! with one of SES's errors in the restJson1 shape the SDK reads (the HTTP status, the code in
//! `x-amzn-ErrorType` with the suffix SES appends, and `{"message": …}` as the body). moto
//! emits none of SES's account-level errors, so this is how the mailer meets them.
#![allow(dead_code)] // each test binary uses its own part of these helpers

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_sdk_sesv2::config::Credentials;
use leadflow_aws::mailer::SesMailer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The suffix real SES puts after the code in `x-amzn-ErrorType`; the SDK strips it.
const CODE_SUFFIX: &str = ":http://internal.amazon.com/coral/com.amazonaws.services.email/";
/// The address SES quotes in its messages here; no error text may show it.
pub const QUOTED: &str = "ada.lovelace@analytical-engines.example";
/// The biggest request the fake reads; a raw email of the tests is a few KB.
const MAX_REQUEST: usize = 1 << 20;

/// How the fake answers the next `SendEmail` requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Accept,
    Refuse { status: u16, code: String },
}

impl Answer {
    pub fn refuse(status: u16, code: &str) -> Self {
        Answer::Refuse { status, code: code.to_string() }
    }
}

#[derive(Debug)]
struct State {
    answer: Answer,
    /// Every `SendEmail` request, in order, with what it was answered.
    requests: Vec<Answer>,
}

#[derive(Clone)]
pub struct FakeSes {
    endpoint: String,
    state: Arc<Mutex<State>>,
}

impl FakeSes {
    /// Listens on a free local port until the test's runtime ends.
    pub async fn start(answer: Answer) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free local port");
        let endpoint = format!("http://{}", listener.local_addr().expect("the bound address"));
        let state = Arc::new(Mutex::new(State { answer, requests: Vec::new() }));
        let shared = Arc::clone(&state);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, Arc::clone(&shared)));
            }
        });
        FakeSes { endpoint, state }
    }

    pub fn answer(&self, answer: Answer) {
        self.state.lock().expect("fake SES state").answer = answer;
    }

    /// The `SendEmail` requests so far, each with the answer it got.
    pub fn requests(&self) -> Vec<Answer> {
        self.state.lock().expect("fake SES state").requests.clone()
    }

    /// How many `SendEmail` requests were accepted, i.e. how many emails SES would have sent.
    pub fn accepted(&self) -> usize {
        self.requests().iter().filter(|a| **a == Answer::Accept).count()
    }

    /// A mailer whose SDK client talks to this fake, as the functions' do to SES, with the
    /// given attempts per send (1: no SDK retries).
    pub async fn mailer(&self, attempts: u32, configuration_set: Option<&str>) -> SesMailer {
        let retry = if attempts <= 1 {
            RetryConfig::disabled()
        } else {
            RetryConfig::standard()
                .with_max_attempts(attempts)
                .with_initial_backoff(Duration::from_millis(1))
                .with_max_backoff(Duration::from_millis(5))
        };
        let sdk = aws_config::defaults(BehaviorVersion::latest())
            .http_client(leadflow_aws::https::https_client())
            .endpoint_url(&self.endpoint)
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("test", "test", None, None, "fake-ses"))
            .retry_config(retry)
            // A fake that stopped answering fails the test instead of hanging it.
            .timeout_config(TimeoutConfig::builder().operation_timeout(Duration::from_secs(20)).build())
            .load()
            .await;
        SesMailer::new(aws_sdk_sesv2::Client::new(&sdk), configuration_set.map(str::to_string))
    }
}

/// Answers the requests of one keep-alive connection.
async fn serve(mut stream: TcpStream, state: Arc<Mutex<State>>) {
    let mut buf = Vec::new();
    loop {
        let Some((head, body_len)) = read_head(&mut stream, &mut buf).await else { return };
        while buf.len() < head + body_len {
            let mut chunk = [0u8; 8192];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let request_line =
            String::from_utf8_lossy(&buf[..buf.iter().position(|b| *b == b'\r').unwrap_or(0)]).to_string();
        buf.drain(..head + body_len);
        let response = if request_line.starts_with("POST /v2/email/outbound-emails ") {
            let answer = {
                let mut s = state.lock().expect("fake SES state");
                let answer = s.answer.clone();
                s.requests.push(answer.clone());
                answer
            };
            match answer {
                Answer::Accept => {
                    let n = state.lock().expect("fake SES state").requests.len();
                    response(200, &[], &format!(r#"{{"MessageId":"fake-ses-{n}"}}"#))
                }
                Answer::Refuse { status, code } => {
                    // SES quotes addresses in its messages, as in "failed the check: <address>".
                    let body = serde_json::json!({
                        "message": format!("Refused. The following identities failed the check in region US-EAST-1: {QUOTED}")
                    });
                    response(status, &[("x-amzn-ErrorType", &format!("{code}{CODE_SUFFIX}"))], &body.to_string())
                }
            }
        } else {
            // The mailer calls nothing else; an unexpected call shows in the test's failure.
            response(
                404,
                &[("x-amzn-ErrorType", "UnknownOperationException")],
                &format!(r#"{{"message":"{request_line}"}}"#),
            )
        };
        if stream.write_all(response.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// Reads until a request's head is in `buf`; answers its length and the body's (from
/// `content-length`), or `None` when the connection ends.
async fn read_head(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<(usize, usize)> {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let body_len = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if head.lines().any(|l| l.starts_with("expect:") && l.contains("100-continue")) {
                stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").await.ok()?;
            }
            return (body_len <= MAX_REQUEST).then_some((end + 4, body_len));
        }
        if buf.len() > MAX_REQUEST {
            return None;
        }
        let mut chunk = [0u8; 8192];
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

fn response(status: u16, headers: &[(&str, &str)], body: &str) -> String {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    };
    let mut out = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nx-amzn-RequestId: fake\r\n",
        body.len()
    );
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str("\r\n");
    out.push_str(body);
    out
}
