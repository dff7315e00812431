//! An SQS endpoint (AWS JSON 1.0, as the SDK speaks it) for what moto lacks: moto 5.2.5 has no
//! `StartMessageMoveTask`. It answers `GetQueueAttributes` with a queue ARN and a message
//! count the test sets, and `StartMessageMoveTask` with a task handle, and keeps every request
//! (operation and JSON body) for the test to check.
#![allow(dead_code)] // each test binary uses its own part of these helpers

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_sdk_sqs::config::Credentials;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub const DLQ_ARN: &str = "arn:aws:sqs:us-east-1:123456789012:lf-RouteDLQ";
pub const TASK_HANDLE: &str = "fake-move-task-1";
const MAX_REQUEST: usize = 1 << 20;

/// How the fake answers.
#[derive(Debug, Clone)]
pub struct Setup {
    /// `ApproximateNumberOfMessages` of every queue.
    pub messages: u64,
    /// `Some(code)`: `StartMessageMoveTask` is refused with this error code.
    pub refuse_move: Option<String>,
}

/// One request: the operation (`X-Amz-Target` without `AmazonSQS.`) and its JSON body.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub operation: String,
    pub body: Value,
}

#[derive(Clone)]
pub struct FakeSqs {
    pub endpoint: String,
    setup: Arc<Mutex<Setup>>,
    requests: Arc<Mutex<Vec<Request>>>,
}

impl FakeSqs {
    pub async fn start(setup: Setup) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free local port");
        let endpoint = format!("http://{}", listener.local_addr().expect("the bound address"));
        let fake = FakeSqs { endpoint, setup: Arc::new(Mutex::new(setup)), requests: Arc::default() };
        let shared = fake.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(shared.clone().serve(stream));
            }
        });
        fake
    }

    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().expect("fake SQS requests").clone()
    }

    /// An SQS client talking to this fake, without retries (one request per call).
    pub async fn client(&self) -> aws_sdk_sqs::Client {
        let sdk = aws_config::defaults(BehaviorVersion::latest())
            .http_client(leadflow_aws::https::https_client())
            .endpoint_url(&self.endpoint)
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("test", "test", None, None, "fake-sqs"))
            .retry_config(RetryConfig::disabled())
            .timeout_config(TimeoutConfig::builder().operation_timeout(Duration::from_secs(20)).build())
            .load()
            .await;
        aws_sdk_sqs::Client::new(&sdk)
    }

    fn answer(&self, request: &Request) -> (u16, Value) {
        let setup = self.setup.lock().expect("fake SQS setup").clone();
        match request.operation.as_str() {
            "GetQueueAttributes" => (
                200,
                json!({"Attributes": {
                    "QueueArn": DLQ_ARN,
                    "ApproximateNumberOfMessages": setup.messages.to_string(),
                    "ApproximateNumberOfMessagesNotVisible": "0",
                }}),
            ),
            "StartMessageMoveTask" => match setup.refuse_move {
                Some(code) => (400, json!({"__type": format!("com.amazonaws.sqs#{code}"), "message": "refused"})),
                None => (200, json!({"TaskHandle": TASK_HANDLE})),
            },
            other => {
                (400, json!({"__type": "com.amazonaws.sqs#InvalidAction", "message": format!("not faked: {other}")}))
            }
        }
    }

    async fn serve(self, mut stream: TcpStream) {
        let mut buf = Vec::new();
        loop {
            let Some((head_len, body_len, target)) = read_head(&mut stream, &mut buf).await else { return };
            while buf.len() < head_len + body_len {
                let mut chunk = [0u8; 8192];
                match stream.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
            let body: Value = serde_json::from_slice(&buf[head_len..head_len + body_len]).unwrap_or(Value::Null);
            buf.drain(..head_len + body_len);
            let request = Request { operation: target.trim_start_matches("AmazonSQS.").to_string(), body };
            let (status, answer) = self.answer(&request);
            self.requests.lock().expect("fake SQS requests").push(request);
            let text = answer.to_string();
            let reason = if status == 200 { "OK" } else { "Bad Request" };
            let response = format!(
                "HTTP/1.1 {status} {reason}\r\ncontent-type: application/x-amz-json-1.0\r\ncontent-length: {}\r\nx-amzn-RequestId: fake\r\n\r\n{text}",
                text.len()
            );
            if stream.write_all(response.as_bytes()).await.is_err() {
                return;
            }
        }
    }
}

/// Reads until a request's head is in `buf`: its length, the body's, and `X-Amz-Target`.
async fn read_head(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<(usize, usize, String)> {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            let header = |name: &str| {
                head.lines().find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_string())
                })
            };
            let body_len = header("content-length").and_then(|v| v.parse::<usize>().ok()).unwrap_or(0);
            let target = header("x-amz-target").unwrap_or_default();
            return (body_len <= MAX_REQUEST).then_some((end + 4, body_len, target));
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
