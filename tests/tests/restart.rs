//! Kill the local stack in the middle of a burst of 500 leads, start it again on the same data
//! folder, and every lead it accepted still finds its way to a rep — once.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::Mutex;

const TOKEN: &str = "restart-admin-token";
const LEADS: usize = 500;

/// Starts the real binary and answers it with the address it printed.
fn spawn(data: &Path) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_leadflow-under-test"))
        .args(["dev", "--addr", "127.0.0.1:0", "--nurture-every", "0.2"])
        .arg("--data-dir")
        .arg(data)
        .arg("--config")
        .arg(leadflow_tests::config_dir())
        .env("LEADFLOW_ADMIN_TOKEN", TOKEN)
        .env("LEADFLOW_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the leadflow binary starts");
    let stdout = child.stdout.take().expect("stdout");
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

fn lead(i: usize) -> Value {
    json!({"email": format!("buyer{i}@firm{i}.example"), "first_name": format!("Buyer{i}"),
           "job_title": "Director", "company": format!("Firm {i}"), "country": "DE"})
}

/// Posts leads `todo` concurrently; records the id of each one answered 202. Stops early,
/// killing the process, once `kill_after` answers came back.
async fn burst(
    base: &str,
    todo: Vec<usize>,
    accepted: Arc<Mutex<BTreeMap<usize, String>>>,
    mut kill: Option<(usize, Child)>,
) {
    let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().expect("client");
    let answered = Arc::new(AtomicUsize::new(0));
    let queue = Arc::new(Mutex::new(todo));
    let mut workers = Vec::new();
    for _ in 0..16 {
        let (http, queue, accepted, answered, base) =
            (http.clone(), Arc::clone(&queue), Arc::clone(&accepted), Arc::clone(&answered), base.to_string());
        workers.push(tokio::spawn(async move {
            loop {
                let Some(i) = queue.lock().await.pop() else { return };
                let resp = http
                    .post(format!("{base}/leads"))
                    .header("idempotency-key", format!("burst-{i}"))
                    .json(&lead(i))
                    .send()
                    .await;
                if let Ok(r) = resp
                    && r.status() == reqwest::StatusCode::ACCEPTED
                    && let Ok(body) = r.json::<Value>().await
                    && let Some(id) = body["lead_id"].as_str()
                {
                    accepted.lock().await.insert(i, id.to_string());
                    answered.fetch_add(1, Ordering::SeqCst);
                }
            }
        }));
    }
    if let Some((after, child)) = kill.as_mut() {
        while answered.load(Ordering::SeqCst) < *after {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        child.kill().expect("kill -9 the stack");
        let _ = child.wait();
    }
    for w in workers {
        let _ = w.await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_restart_in_the_middle_of_a_burst_loses_no_lead() {
    let dir = tempfile::tempdir().expect("temp dir");
    let accepted = Arc::new(Mutex::new(BTreeMap::new()));

    let (child, base) = spawn(dir.path());
    burst(&base, (0..LEADS).collect(), Arc::clone(&accepted), Some((150, child))).await;
    let before_restart = accepted.lock().await.len();
    assert!((150..LEADS).contains(&before_restart), "the kill landed mid-burst ({before_restart} accepted)");

    // The visitor's browser retries what got no answer; the same idempotency key is used.
    let (mut child, base) = spawn(dir.path());
    let missing: Vec<usize> = {
        let acc = accepted.lock().await;
        (0..LEADS).filter(|i| !acc.contains_key(i)).collect()
    };
    burst(&base, missing, Arc::clone(&accepted), None).await;
    let accepted = accepted.lock().await.clone();
    assert_eq!(accepted.len(), LEADS, "every lead is accepted in the end");

    // Every accepted lead reaches a rep.
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut pending: BTreeSet<usize> = (0..LEADS).collect();
    while !pending.is_empty() {
        assert!(
            Instant::now() < deadline,
            "{} leads never got an owner and an email, e.g. {:?}",
            pending.len(),
            pending.iter().take(5).collect::<Vec<_>>()
        );
        let mut done = Vec::new();
        for &i in pending.iter().take(50) {
            let resp = http.get(format!("{base}/admin/leads/{}", accepted[&i])).bearer_auth(TOKEN).send().await;
            if let Ok(r) = resp
                && let Ok(l) = r.json::<Value>().await
                && l["owner"].is_object()
                // The email goes out just after the assignment commits: wait for it too.
                && l["activities"].as_array().is_some_and(|a| a.iter().any(|x| x["kind"] == "email_sent"))
            {
                assert_eq!(l["contact"]["email"], format!("buyer{i}@firm{i}.example"));
                done.push(i);
            }
        }
        if done.is_empty() {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        for i in done {
            pending.remove(&i);
        }
    }
    child.kill().ok();
    let _ = child.wait();

    // Exactly one lead and one assignment email per person.
    let store = leadflow_local::SqliteStore::open(dir.path().join("leadflow.db")).expect("store opens");
    assert_eq!(store.count_leads().expect("count"), LEADS as u64, "no lead lost, none duplicated");
    let assignment_emails: Vec<String> = std::fs::read_dir(dir.path().join("outbox"))
        .expect("outbox")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("assignment"))
        .collect();
    assert_eq!(assignment_emails.len(), LEADS, "one assignment email per lead");
    let leads_emailed: BTreeSet<&str> =
        accepted.values().map(String::as_str).filter(|id| assignment_emails.iter().any(|n| n.contains(id))).collect();
    assert_eq!(leads_emailed.len(), LEADS, "every lead's rep was emailed");
}
