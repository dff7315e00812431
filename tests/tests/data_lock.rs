//! Two local stacks on one data folder: the second refuses to start, says which folder and
//! which process has it, and leaves the first one serving; once the first is killed (kill -9,
//! no clean shutdown) a new stack starts on the folder at once.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const TOKEN: &str = "data-lock-admin-token";

fn command(data: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_leadflow-under-test"));
    c.args(["dev", "--addr", "127.0.0.1:0"])
        .arg("--data-dir")
        .arg(data)
        .arg("--config")
        .arg(leadflow_tests::config_dir())
        .env("LEADFLOW_ADMIN_TOKEN", TOKEN)
        .env("LEADFLOW_LOG", "warn");
    c
}

/// A running stack, killed (SIGKILL) when dropped, so a failing assertion leaves no process.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.kill().ok();
        let _ = self.0.wait();
    }
}

/// Starts a stack that is expected to run; answers it with the base URL it printed.
fn spawn(data: &Path) -> (Running, String) {
    let mut child = command(data).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().expect("the binary starts");
    let stdout = child.stdout.take().expect("stdout");
    let child = Running(child);
    let mut lines = BufReader::new(stdout).lines();
    let addr = loop {
        let line = lines.next().and_then(|l| l.ok()).expect("the stack prints where it listens");
        if let Some(rest) = line.strip_prefix("Leadflow local stack listening on ") {
            break rest.trim().to_string();
        }
    };
    // Keep reading so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (child, addr)
}

/// Runs a stack that is expected to stop by itself: its exit code and everything it printed.
fn run_to_exit(data: &Path) -> (Option<i32>, String) {
    let mut child = command(data).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("the binary starts");
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            child.kill().ok();
            let _ = child.wait();
            panic!("the second stack kept running on a folder in use");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut out = String::new();
    child.stdout.take().expect("stdout").read_to_string(&mut out).expect("stdout");
    child.stderr.take().expect("stderr").read_to_string(&mut out).expect("stderr");
    (status.code(), out)
}

/// Posts a qualified lead and waits until the stack has assigned it and emailed the rep.
async fn serves(base: &str, who: &str) {
    let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().expect("client");
    let lead = json!({"email": format!("{who}@globex.example"), "first_name": who, "job_title": "CTO",
                      "company": "Globex", "country": "DE"});
    let resp = http.post(format!("{base}/leads")).json(&lead).send().await.expect("capture answers");
    assert_eq!(resp.status(), reqwest::StatusCode::ACCEPTED);
    let id = resp.json::<Value>().await.expect("JSON")["lead_id"].as_str().expect("a lead id").to_string();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let l: Value = match http.get(format!("{base}/admin/leads/{id}")).bearer_auth(TOKEN).send().await {
            Ok(r) => r.json().await.unwrap_or(Value::Null),
            Err(_) => Value::Null,
        };
        if l["owner"].is_object()
            && l["activities"].as_array().is_some_and(|a| a.iter().any(|x| x["kind"] == "email_sent"))
        {
            return;
        }
        assert!(Instant::now() < deadline, "lead {id} was not assigned and emailed in 30 s: {l}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_stack_on_the_same_folder_refuses_to_start_and_the_first_keeps_serving() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let (first, base) = spawn(&data);
    serves(&base, "ana").await;
    let lock_file = data.join(leadflow_infra::dev::LOCK_FILE);
    let holder = first.0.id().to_string();
    assert_eq!(std::fs::read_to_string(&lock_file).expect("the lock file").trim(), holder);

    let (code, out) = run_to_exit(&data);
    assert_eq!(code, Some(1), "{out}");
    let want = format!("the data folder {} is in use by another local stack (pid {holder})", data.display());
    assert!(out.contains(&want), "the message names the folder and the holder: {out}");
    assert!(out.contains("--data-dir"), "and says what to do: {out}");
    assert!(!out.contains("listening"), "nothing was started: {out}");
    assert_eq!(
        std::fs::read_to_string(&lock_file).expect("the lock file").trim(),
        holder,
        "the lock file is untouched"
    );

    // The first stack did not notice: it still takes, routes and emails leads.
    serves(&base, "bo").await;

    // A crash leaves no lock behind: the kernel drops it with the process (dropping `first`
    // kills it with SIGKILL: no clean shutdown).
    drop(first);
    let (second, base) = spawn(&data);
    serves(&base, "cy").await;
    assert_eq!(std::fs::read_to_string(&lock_file).expect("the lock file").trim(), second.0.id().to_string());
}
