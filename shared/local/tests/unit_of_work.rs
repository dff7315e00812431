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

#[tokio::test]
async fn an_email_or_event_leaves_only_after_the_units_writes_are_committed() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let store = open(&dir);
    let mailer =
        OutboxMailer::open(dir.path().join("outbox")).unwrap_or_else(|e| panic!("{e}")).commits_units_of(&store);
    let bus =
        JsonlBus::open(dir.path().join("events.jsonl")).unwrap_or_else(|e| panic!("{e}")).commits_units_of(&store);

    let unit = store.begin_unit().unwrap_or_else(|e| panic!("{e}"));
    assert!(store.suppress(&entry("before-email"), &[]).await.unwrap_or_else(|e| panic!("{e}")));
    mailer.send(&outgoing_email("assignment-1"), at()).await.unwrap_or_else(|e| panic!("{e}"));
    assert!(store.suppress(&entry("before-event"), &[]).await.unwrap_or_else(|e| panic!("{e}")));
    let event = DomainEvent {
        id: "evt-1".into(),
        detail_type: "LeadAssigned".into(),
        at: at(),
        detail: serde_json::Value::Null,
    };
    bus.publish(&[event]).await.unwrap_or_else(|e| panic!("{e}"));
    assert!(store.suppress(&entry("after-both"), &[]).await.unwrap_or_else(|e| panic!("{e}")));
    // A crash here: what the email and the event were about stays; the rest is undone.
    drop(unit);
    assert_eq!(keys(&store).await, ["before-email", "before-event"]);

    // An outbox that does not commit first sends while the unit's writes can still be undone.
    let plain = OutboxMailer::open(dir.path().join("plain")).unwrap_or_else(|e| panic!("{e}"));
    let unit = store.begin_unit().unwrap_or_else(|e| panic!("{e}"));
    assert!(store.suppress(&entry("undone"), &[]).await.unwrap_or_else(|e| panic!("{e}")));
    plain.send(&outgoing_email("assignment-2"), at()).await.unwrap_or_else(|e| panic!("{e}"));
    drop(unit);
    assert_eq!(keys(&store).await, ["before-email", "before-event"]);
}
