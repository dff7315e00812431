//! The functions as Lambda runs them: each built binary is a process of its own, with the
//! environment and the role credentials its template definition gives it, asking a stand-in for
//! the Lambda Runtime API (`/2018-06-01/runtime/...`) for invocations. So whatever a function's
//! `main` does, its start-up reads included, runs as on Lambda.
//!
//! The stand-in speaks just enough HTTP/1.1 for the runtime's client: one request at a time per
//! connection, bodies by `Content-Length` or chunked, keep-alive. `GET .../invocation/next`
//! waits for the next event; the function's answer (`.../response` or `.../error`) goes back to
//! whoever invoked.

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader as AsyncBufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, oneshot};

/// How an invocation ended.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// The function's answer.
    Response(Value),
    /// The function failed the invocation (`Runtime.*` / its own error type and message).
    Error(Value),
}

struct Invocation {
    id: String,
    event: Vec<u8>,
    deadline_ms: u128,
}

#[derive(Default)]
struct Shared {
    queue: Mutex<VecDeque<Invocation>>,
    queued: Notify,
    waiting: Mutex<HashMap<String, oneshot::Sender<Outcome>>>,
    /// Set by the first `next`: the function started.
    ready: Mutex<bool>,
    init_error: Mutex<Option<String>>,
    changed: Notify,
}

/// One function's process and its runtime API.
pub struct Function {
    pub binary: String,
    timeout: Duration,
    shared: Arc<Shared>,
    child: Mutex<Child>,
    log: Arc<Mutex<Vec<String>>>,
    counter: AtomicU64,
    server: tokio::task::JoinHandle<()>,
}

impl Function {
    /// Starts `binary` with exactly `env` (and nothing of this process's environment) against a
    /// runtime API of its own, and waits until it asks for its first invocation. A function that
    /// fails to start answers its init error and the last lines it logged.
    pub async fn start(
        binary: &str,
        path: &Path,
        function_name: &str,
        timeout: Duration,
        env: &[(String, String)],
    ) -> Result<Self, String> {
        let listener = TcpListener::bind("127.0.0.1:0").await.map_err(|e| format!("runtime API socket: {e}"))?;
        let port = listener.local_addr().map_err(|e| format!("runtime API address: {e}"))?.port();
        let shared = Arc::new(Shared::default());
        let arn = format!("arn:aws:lambda:us-east-1:123456789012:function:{function_name}");
        let server = tokio::spawn(serve(listener, Arc::clone(&shared), arn));

        let mut command = Command::new(path);
        command
            .env_clear()
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("AWS_LAMBDA_RUNTIME_API", format!("127.0.0.1:{port}"))
            .env("AWS_LAMBDA_FUNCTION_NAME", function_name)
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{function_name}"))
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "iam-test")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().map_err(|e| format!("{binary}: cannot start {}: {e}", path.display()))?;
        let log = Arc::new(Mutex::new(Vec::new()));
        if let Some(out) = child.stdout.take() {
            collect(out, Arc::clone(&log));
        }
        if let Some(err) = child.stderr.take() {
            collect(err, Arc::clone(&log));
        }
        let function = Function {
            binary: binary.to_string(),
            timeout,
            shared,
            child: Mutex::new(child),
            log,
            counter: AtomicU64::new(0),
            server,
        };
        function.wait_ready().await?;
        Ok(function)
    }

    async fn wait_ready(&self) -> Result<(), String> {
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            let changed = self.shared.changed.notified();
            if let Some(error) = lock(&self.shared.init_error).clone() {
                return Err(format!("{} failed to start: {error}\n{}", self.binary, self.recent_log(20)));
            }
            if *lock(&self.shared.ready) {
                return Ok(());
            }
            if let Some(status) = self.exited() {
                return Err(format!("{} exited at start-up ({status})\n{}", self.binary, self.recent_log(20)));
            }
            if Instant::now() > until {
                return Err(format!(
                    "{} did not ask for an invocation within 30 s\n{}",
                    self.binary,
                    self.recent_log(20)
                ));
            }
            let _ = tokio::time::timeout(Duration::from_millis(100), changed).await;
        }
    }

    fn exited(&self) -> Option<String> {
        let mut child = lock(&self.child);
        match child.try_wait() {
            Ok(Some(status)) => Some(status.to_string()),
            Ok(None) => None,
            Err(e) => Some(format!("cannot tell: {e}")),
        }
    }

    /// Hands `event` to the function and waits for its answer, as Lambda's synchronous invoke
    /// does (the function's timeout, and a little for the stand-in).
    pub async fn invoke(&self, event: &Value) -> Result<Outcome, String> {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let id = format!("{}-{n}", self.binary);
        let deadline = SystemTime::now() + self.timeout;
        let deadline_ms = deadline.duration_since(UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or_default();
        let (tx, rx) = oneshot::channel();
        lock(&self.shared.waiting).insert(id.clone(), tx);
        lock(&self.shared.queue).push_back(Invocation {
            id: id.clone(),
            event: event.to_string().into_bytes(),
            deadline_ms,
        });
        self.shared.queued.notify_one();
        let until = Instant::now() + self.timeout + Duration::from_secs(5);
        let mut rx = rx;
        loop {
            match tokio::time::timeout(Duration::from_millis(200), &mut rx).await {
                Ok(Ok(outcome)) => return Ok(outcome),
                Ok(Err(_)) => return Err(format!("{}: invocation {id} was dropped", self.binary)),
                Err(_) => {}
            }
            if let Some(status) = self.exited() {
                return Err(format!(
                    "{} exited during invocation {id} ({status})\n{}",
                    self.binary,
                    self.recent_log(30)
                ));
            }
            if Instant::now() > until {
                return Err(format!(
                    "{} did not answer invocation {id} within its timeout ({:?})\n{}",
                    self.binary,
                    self.timeout,
                    self.recent_log(30)
                ));
            }
        }
    }

    /// The last `n` lines the function wrote (its JSON logs, and anything on stderr).
    pub fn recent_log(&self, n: usize) -> String {
        let log = lock(&self.log);
        let start = log.len().saturating_sub(n);
        log[start..].iter().map(|l| format!("    {} | {l}", self.binary)).collect::<Vec<_>>().join("\n")
    }
}

impl Drop for Function {
    fn drop(&mut self) {
        let mut child = lock(&self.child);
        // Only the process this test started, by its handle.
        let _ = child.kill();
        let _ = child.wait();
        self.server.abort();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn collect(stream: impl Read + Send + 'static, log: Arc<Mutex<Vec<String>>>) {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            lock(&log).push(line);
        }
    });
}

async fn serve(listener: TcpListener, shared: Arc<Shared>, arn: String) {
    loop {
        let Ok((stream, _)) = listener.accept().await else { return };
        tokio::spawn(connection(stream, Arc::clone(&shared), arn.clone()));
    }
}

struct HttpRequest {
    method: String,
    path: String,
    body: Vec<u8>,
}

async fn read_request(reader: &mut AsyncBufReader<TcpStream>) -> Option<HttpRequest> {
    let mut line = String::new();
    if reader.read_line(&mut line).await.ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let path = parts.next()?.to_string();
    let mut length = 0usize;
    let mut chunked = false;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).await.ok()? == 0 {
            return None;
        }
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':')?;
        match name.trim().to_ascii_lowercase().as_str() {
            "content-length" => length = value.trim().parse().ok()?,
            "transfer-encoding" => chunked = value.to_ascii_lowercase().contains("chunked"),
            _ => {}
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size).await.ok()?;
            let size = usize::from_str_radix(size.trim().split(';').next()?.trim(), 16).ok()?;
            if size == 0 {
                // Trailers, up to the empty line.
                loop {
                    let mut trailer = String::new();
                    if reader.read_line(&mut trailer).await.ok()? == 0 || trailer.trim().is_empty() {
                        break;
                    }
                }
                break;
            }
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk).await.ok()?;
            chunk.truncate(size);
            body.extend(chunk);
        }
    } else if length > 0 {
        body = vec![0; length];
        reader.read_exact(&mut body).await.ok()?;
    }
    Some(HttpRequest { method, path, body })
}

async fn connection(stream: TcpStream, shared: Arc<Shared>, arn: String) {
    let mut reader = AsyncBufReader::new(stream);
    while let Some(request) = read_request(&mut reader).await {
        let reply = answer(&shared, &arn, request).await;
        if reader.get_mut().write_all(&reply).await.is_err() {
            return;
        }
    }
}

fn http(status: &str, headers: &[(&str, String)], body: &[u8]) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n", body.len());
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str("\r\n");
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    out
}

async fn answer(shared: &Shared, arn: &str, request: HttpRequest) -> Vec<u8> {
    const PREFIX: &str = "/2018-06-01/runtime/";
    let accepted = || http("202 Accepted", &[], br#"{"status":"OK"}"#);
    let Some(route) = request.path.strip_prefix(PREFIX) else {
        return http("404 Not Found", &[], b"{}");
    };
    let parse = |body: &[u8]| {
        serde_json::from_slice::<Value>(body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()))
    };
    match (request.method.as_str(), route) {
        ("GET", "invocation/next") => {
            *lock(&shared.ready) = true;
            shared.changed.notify_waiters();
            let invocation = loop {
                let queued = shared.queued.notified();
                if let Some(invocation) = lock(&shared.queue).pop_front() {
                    break invocation;
                }
                queued.await;
            };
            http(
                "200 OK",
                &[
                    ("lambda-runtime-aws-request-id", invocation.id.clone()),
                    ("lambda-runtime-deadline-ms", invocation.deadline_ms.to_string()),
                    ("lambda-runtime-invoked-function-arn", arn.to_string()),
                    ("lambda-runtime-trace-id", format!("Root=1-00000000-{:024x}", invocation.deadline_ms)),
                ],
                &invocation.event,
            )
        }
        ("POST", "init/error") => {
            *lock(&shared.init_error) = Some(parse(&request.body).to_string());
            shared.changed.notify_waiters();
            accepted()
        }
        ("POST", route) => {
            let Some(rest) = route.strip_prefix("invocation/") else {
                return http("404 Not Found", &[], b"{}");
            };
            let Some((id, kind)) = rest.rsplit_once('/') else {
                return http("404 Not Found", &[], b"{}");
            };
            let outcome = match kind {
                "response" => Outcome::Response(parse(&request.body)),
                "error" => Outcome::Error(parse(&request.body)),
                _ => return http("404 Not Found", &[], b"{}"),
            };
            if let Some(tx) = lock(&shared.waiting).remove(id) {
                let _ = tx.send(outcome);
            }
            accepted()
        }
        _ => http("404 Not Found", &[], b"{}"),
    }
}
