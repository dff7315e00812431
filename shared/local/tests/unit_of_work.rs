//! Group commit: what a stage worker's unit of work promises about its writes.

use chrono::{DateTime, TimeZone, Utc};
use leadflow_core::model::{Suppression, SuppressionReason};
use leadflow_core::ports::{DomainEvent, EventBus, Mailer, Suppressions};
use leadflow_local::{JsonlBus, OutboxMailer, SqliteStore};
use leadflow_memory::fixtures::outgoing_email;

fn at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 1, 9, 0, 0).single().unwrap_or_default()
}

fn entry(key: &str) -> Suppression {
    Suppression { email_key: key.to_string(), reason: SuppressionReason::Bounced, at: at(), lead_id: None }
}

fn open(dir: &tempfile::TempDir) -> SqliteStore {
    SqliteStore::open(dir.path().join("leadflow.db")).unwrap_or_else(|e| panic!("{e}"))
}

async fn keys(store: &SqliteStore) -> Vec<String> {
    let page = store.suppressions(None, 10).await.unwrap_or_else(|e| panic!("{e}"));
    let mut keys: Vec<String> = page.entries.into_iter().map(|e| e.email_key).collect();
    keys.sort();
    keys
}

#[tokio::test]
async fn a_units_writes_last_only_if_it_commits() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let store = open(&dir);
    let unit = store.begin_unit().unwrap_or_else(|e| panic!("{e}"));
    assert!(store.suppress(&entry("k1"), &[]).await.unwrap_or_else(|e| panic!("{e}")));
    assert_eq!(keys(&store).await, ["k1"], "the unit's own thread sees its writes");
    drop(unit);
    assert!(keys(&store).await.is_empty(), "a unit ended without a commit is rolled back");

    let unit = store.begin_unit().unwrap_or_else(|e| panic!("{e}"));
    assert!(store.suppress(&entry("k2"), &[]).await.unwrap_or_else(|e| panic!("{e}")));
    unit.commit().unwrap_or_else(|e| panic!("{e}"));
    drop(store);
    assert_eq!(keys(&open(&dir)).await, ["k2"], "committed, and so in the file");
}

#[tokio::test]
async fn another_thread_never_reads_a_units_writes_uncommitted() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let store = open(&dir);
    let unit = store.begin_unit().unwrap_or_else(|e| panic!("{e}"));
    assert!(store.suppress(&entry("k1"), &[]).await.unwrap_or_else(|e| panic!("{e}")));
    let other = store.clone();
    let seen = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap_or_else(|e| panic!("{e}"));
        runtime.block_on(keys(&other))
    })
    .join()
    .unwrap_or_else(|_| panic!("the reading thread panicked"));
    assert_eq!(seen, ["k1"]);
    // What the other thread saw was committed for it, so the unit can no longer take it back.
    drop(unit);
    assert_eq!(keys(&store).await, ["k1"]);
}

fn mailer_and_bus(dir: &tempfile::TempDir, store: &SqliteStore) -> (OutboxMailer, JsonlBus) {
    let mailer = OutboxMailer::open(dir.path().join("outbox")).and_then(|m| m.joins_units_of(store));
    let bus = JsonlBus::open(dir.path().join("events.jsonl")).and_then(|b| b.joins_units_of(store));
    (mailer.unwrap_or_else(|e| panic!("{e}")), bus.unwrap_or_else(|e| panic!("{e}")))
}

fn event(id: &str) -> DomainEvent {
    DomainEvent { id: id.into(), detail_type: "lead.assigned".into(), at: at(), detail: serde_json::Value::Null }
}

/// The outbox's files, hidden ones (temporary, pending) included, sorted.
fn outbox_files(dir: &tempfile::TempDir) -> Vec<String> {
    let entries = std::fs::read_dir(dir.path().join("outbox")).unwrap_or_else(|e| panic!("{e}"));
    let mut names: Vec<String> =
        entries.map(|e| e.unwrap_or_else(|e| panic!("{e}")).file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

/// How many lines of the events file carry the event `id`.
fn event_lines(dir: &tempfile::TempDir, id: &str) -> usize {
    let text = std::fs::read_to_string(dir.path().join("events.jsonl")).unwrap_or_default();
    text.lines().filter(|l| l.contains(&format!("\"id\":\"{id}\""))).count()
}

/// Sends an email and publishes an event inside a unit, between two writes.
async fn write_send_publish(store: &SqliteStore, mailer: &OutboxMailer, bus: &JsonlBus, n: u32) {
    assert!(store.suppress(&entry(&format!("before-{n}")), &[]).await.unwrap_or_else(|e| panic!("{e}")));
    mailer.send(&outgoing_email(&format!("assignment-{n}")), at()).await.unwrap_or_else(|e| panic!("{e}"));
    bus.publish(&[event(&format!("evt-{n}"))]).await.unwrap_or_else(|e| panic!("{e}"));
    assert!(store.suppress(&entry(&format!("after-{n}")), &[]).await.unwrap_or_else(|e| panic!("{e}")));
}

#[tokio::test]
async fn an_email_or_event_sent_in_a_unit_leaves_with_its_writes_once_they_are_committed() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let store = open(&dir);
    let (mailer, bus) = mailer_and_bus(&dir, &store);

    let unit = store.begin_unit().unwrap_or_else(|e| panic!("{e}"));
    write_send_publish(&store, &mailer, &bus, 1).await;
    assert!(!outbox_files(&dir).contains(&"assignment-1.eml".to_string()), "not before the commit");
    assert_eq!(event_lines(&dir, "evt-1"), 0, "not before the commit");
    // A crash here, or a batch given up: the writes are undone, and so are the email and event.
    drop(unit);
    assert!(keys(&store).await.is_empty());
    assert!(!outbox_files(&dir).contains(&"assignment-1.eml".to_string()));
    assert_eq!(event_lines(&dir, "evt-1"), 0);

    let unit = store.begin_unit().unwrap_or_else(|e| panic!("{e}"));
    write_send_publish(&store, &mailer, &bus, 2).await;
    assert!(!outbox_files(&dir).contains(&"assignment-2.eml".to_string()));
    unit.commit().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(keys(&store).await, ["after-2", "before-2"]);
    assert!(outbox_files(&dir).contains(&"assignment-2.eml".to_string()), "placed once committed");
    assert_eq!(event_lines(&dir, "evt-2"), 1);

    // The undone email's pending file goes with the next start.
    drop((mailer, bus));
    let (_mailer, _bus) = mailer_and_bus(&dir, &store);
    assert_eq!(outbox_files(&dir), ["assignment-2.eml"]);
}

#[tokio::test]
async fn what_a_crash_left_between_the_commit_and_the_delivery_leaves_on_the_next_start() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let store = open(&dir);
    let (mailer, bus) = mailer_and_bus(&dir, &store);
    let unit = store.begin_unit().unwrap_or_else(|e| panic!("{e}"));
    write_send_publish(&store, &mailer, &bus, 1).await;
    // Another thread needs the connection: the unit's writes are committed for it.
    let other = store.clone();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap_or_else(|e| panic!("{e}"));
        runtime.block_on(keys(&other))
    })
    .join()
    .unwrap_or_else(|_| panic!("the reading thread panicked"));
    // The process dies before the unit ends: nothing is delivered.
    std::mem::forget(unit);
    drop((mailer, bus, store));
    assert!(!outbox_files(&dir).contains(&"assignment-1.eml".to_string()));
    assert_eq!(event_lines(&dir, "evt-1"), 0);

    let store = open(&dir);
    let (_mailer, _bus) = mailer_and_bus(&dir, &store);
    assert_eq!(keys(&store).await, ["after-1", "before-1"]);
    assert_eq!(outbox_files(&dir), ["assignment-1.eml"], "placed, and its pending file gone");
    assert_eq!(event_lines(&dir, "evt-1"), 1, "appended once");
}

#[tokio::test]
async fn outside_a_unit_an_email_or_event_leaves_at_once() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let store = open(&dir);
    let (mailer, bus) = mailer_and_bus(&dir, &store);
    write_send_publish(&store, &mailer, &bus, 1).await;
    assert_eq!(outbox_files(&dir), ["assignment-1.eml"]);
    assert_eq!(event_lines(&dir, "evt-1"), 1);
}
