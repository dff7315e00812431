mod common;

use std::time::Duration;

use chrono::TimeDelta;
use common::{id, lead, t};
use leadflow_core::ports::Leads;
use leadflow_core::ports::{Stage, StageQueue};
use leadflow_local::{DeadLetter, SqliteStore};

const VISIBILITY: Duration = Duration::from_secs(30);

fn open() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(dir.path().join("leadflow.db")).expect("open store");
    (dir, store)
}

fn bodies(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[tokio::test]
async fn messages_come_out_in_order_and_per_stage() {
    let (_dir, store) = open();
    let queue = store.queue();
    queue.send(Stage::Validate, &bodies(&["v1", "v2", "v3"])).await.unwrap();
    queue.send(Stage::Score, &bodies(&["s1"])).await.unwrap();
    assert_eq!(queue.depth(Stage::Validate).unwrap(), 3);
    assert_eq!(queue.depth(Stage::Route).unwrap(), 0);

    let got = queue.receive(Stage::Validate, 2, VISIBILITY, t(0)).unwrap();
    let got_bodies: Vec<_> = got.iter().map(|m| m.body.as_str()).collect();
    assert_eq!(got_bodies, ["v1", "v2"]);
    assert!(got.iter().all(|m| !m.id.is_empty() && m.receive_count == 1));
    assert_eq!(queue.receive(Stage::Validate, 10, VISIBILITY, t(0)).unwrap()[0].body, "v3");
    assert_eq!(queue.receive(Stage::Score, 10, VISIBILITY, t(0)).unwrap()[0].body, "s1");
    assert_eq!(queue.in_flight(Stage::Validate, t(0)).unwrap(), 3);

    assert_eq!(queue.delete(Stage::Validate, got.iter().map(|m| &m.id)).unwrap(), 2);
    assert_eq!(queue.delete(Stage::Validate, got.iter().map(|m| &m.id)).unwrap(), 0, "deleted already");
    assert_eq!(queue.depth(Stage::Validate).unwrap(), 1);
}

#[tokio::test]
async fn a_received_message_is_hidden_until_its_visibility_timeout_then_redelivered() {
    let (_dir, store) = open();
    let queue = store.queue();
    queue.send(Stage::Route, &bodies(&["m"])).await.unwrap();
    let first = queue.receive(Stage::Route, 10, VISIBILITY, t(0)).unwrap();
    assert_eq!(first.len(), 1);

    assert!(queue.receive(Stage::Route, 10, VISIBILITY, t(29)).unwrap().is_empty(), "still hidden");
    let again = queue.receive(Stage::Route, 10, VISIBILITY, t(30)).unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!((again[0].id.as_str(), again[0].body.as_str(), again[0].receive_count), (first[0].id.as_str(), "m", 2));
}

#[tokio::test]
async fn a_released_message_comes_back_after_the_retry_delay() {
    let (_dir, store) = open();
    let queue = store.queue();
    queue.send(Stage::Score, &bodies(&["m"])).await.unwrap();
    let m = queue.receive(Stage::Score, 1, VISIBILITY, t(0)).unwrap().remove(0);
    assert!(queue.release(Stage::Score, &m.id, "store unavailable", Duration::from_secs(5), t(1)).unwrap());
    assert!(queue.receive(Stage::Score, 1, VISIBILITY, t(5)).unwrap().is_empty());
    assert_eq!(queue.receive(Stage::Score, 1, VISIBILITY, t(6)).unwrap()[0].receive_count, 2);
    assert!(!queue.release(Stage::Score, "no-such-id", "x", Duration::ZERO, t(7)).unwrap());
}

#[tokio::test]
async fn a_message_that_keeps_failing_ends_in_the_dead_letters_with_its_last_error() {
    let (_dir, store) = open();
    let queue = store.queue().with_max_receives(3);
    queue.send(Stage::Validate, &bodies(&["poison", "fine"])).await.unwrap();

    let mut now = t(0);
    for attempt in 1..=3 {
        let got = queue.receive(Stage::Validate, 1, VISIBILITY, now).unwrap();
        assert_eq!((got[0].body.as_str(), got[0].receive_count), ("poison", attempt));
        queue
            .release(Stage::Validate, &got[0].id, &format!("attempt {attempt}: bad payload"), Duration::ZERO, now)
            .unwrap();
        now += TimeDelta::seconds(1);
    }
    // The fourth receive skips the poison message to the dead letters and still fills the batch.
    let got = queue.receive(Stage::Validate, 1, VISIBILITY, now).unwrap();
    assert_eq!(got[0].body, "fine");
    let dead = queue.dead_letters(Stage::Validate).unwrap();
    assert_eq!(
        dead,
        vec![DeadLetter {
            id: dead[0].id.clone(),
            body: "poison".into(),
            receive_count: 3,
            last_error: Some("attempt 3: bad payload".into()),
        }]
    );
    assert_eq!(queue.depth(Stage::Validate).unwrap(), 1, "the dead letter left the queue");
    assert!(queue.dead_letters(Stage::Score).unwrap().is_empty());
}

#[tokio::test]
async fn the_default_is_five_receives() {
    let (_dir, store) = open();
    let queue = store.queue();
    queue.send(Stage::Route, &bodies(&["m"])).await.unwrap();
    for n in 0..5 {
        assert_eq!(queue.receive(Stage::Route, 1, Duration::ZERO, t(n)).unwrap().len(), 1);
    }
    assert!(queue.receive(Stage::Route, 1, Duration::ZERO, t(5)).unwrap().is_empty());
    let dead = queue.dead_letters(Stage::Route).unwrap();
    assert_eq!((dead.len(), dead[0].receive_count, dead[0].last_error.clone()), (1, 5, None));
}

#[tokio::test]
async fn unacknowledged_messages_survive_reopening_and_come_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("leadflow.db");
    let id = {
        let queue = SqliteStore::open(&path).unwrap().queue();
        queue.send(Stage::Validate, &bodies(&["m"])).await.unwrap();
        queue.receive(Stage::Validate, 1, VISIBILITY, t(0)).unwrap().remove(0).id
    };
    let queue = SqliteStore::open(&path).unwrap().queue();
    assert_eq!(queue.depth(Stage::Validate).unwrap(), 1);
    assert!(queue.receive(Stage::Validate, 1, VISIBILITY, t(1)).unwrap().is_empty(), "its lease still runs");
    let again = queue.receive(Stage::Validate, 1, VISIBILITY, t(30)).unwrap();
    assert_eq!((again[0].id.clone(), again[0].receive_count), (id, 2));
}

/// Where the child process of the crash test writes; unset in a normal run.
const CHILD_DB: &str = "LEADFLOW_LOCAL_TEST_CHILD_DB";

/// In a normal run this does nothing. Run by `writes_survive_the_process_being_killed` as a
/// child process, it writes and then dies without unwinding, closing or checkpointing.
#[tokio::test]
async fn crash_child() {
    let Some(path) = std::env::var_os(CHILD_DB) else {
        return;
    };
    let store = SqliteStore::open(path).unwrap();
    store.create_lead(&lead(1, "ada@example.com"), &[]).await.unwrap();
    let queue = store.queue();
    queue.send(Stage::Score, &bodies(&["acked", "in flight", "waiting"])).await.unwrap();
    let got = queue.receive(Stage::Score, 2, VISIBILITY, t(0)).unwrap();
    queue.delete(Stage::Score, [&got[0].id]).unwrap();
    std::process::abort();
}

#[tokio::test]
async fn writes_survive_the_process_being_killed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("leadflow.db");
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "crash_child", "--test-threads=1"])
        .env(CHILD_DB, &path)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(!status.success(), "the child must have died");

    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.get_lead(id(1)).await.unwrap().map(|l| l.id), Some(id(1)));
    let queue = store.queue();
    assert_eq!(queue.depth(Stage::Score).unwrap(), 2);
    let redelivered = queue.receive(Stage::Score, 10, VISIBILITY, t(30)).unwrap();
    let seen: Vec<_> = redelivered.iter().map(|m| (m.body.as_str(), m.receive_count)).collect();
    assert_eq!(seen, [("in flight", 2), ("waiting", 1)]);
}

#[tokio::test]
async fn a_stage_moved_to_an_intake_file_keeps_its_messages_and_dead_letters() {
    let (dir, store) = open();
    let old = store.queue().with_max_receives(1);
    old.send(Stage::Validate, &bodies(&["dies"])).await.unwrap();
    assert_eq!(old.receive(Stage::Validate, 10, VISIBILITY, t(0)).unwrap().len(), 1);
    assert!(old.receive(Stage::Validate, 10, VISIBILITY, t(60)).unwrap().is_empty(), "dead-lettered");
    old.send(Stage::Validate, &bodies(&["w1", "w2"])).await.unwrap();
    old.send(Stage::Score, &bodies(&["stays"])).await.unwrap();

    let intake = leadflow_local::SqliteQueue::open_intake(dir.path().join("intake.db")).unwrap().with_max_receives(1);
    assert!(!intake.shares_file_with(&store) && old.shares_file_with(&store));
    assert_eq!(old.move_stage_to(Stage::Validate, &intake).unwrap(), 3);
    assert_eq!(old.move_stage_to(Stage::Validate, &intake).unwrap(), 0, "nothing is moved twice");
    assert_eq!((old.depth(Stage::Validate).unwrap(), old.dead_letters(Stage::Validate).unwrap().len()), (0, 0));
    assert_eq!(old.depth(Stage::Score).unwrap(), 1, "other stages stay where they were");

    // A message that dies in the intake file later must not take a moved dead letter's place.
    let got = intake.receive(Stage::Validate, 10, VISIBILITY, t(0)).unwrap();
    assert_eq!(got.iter().map(|m| m.body.as_str()).collect::<Vec<_>>(), ["w1", "w2"]);
    assert!(intake.receive(Stage::Validate, 10, VISIBILITY, t(60)).unwrap().is_empty());
    let mut dead: Vec<String> = intake.dead_letters(Stage::Validate).unwrap().into_iter().map(|d| d.body).collect();
    dead.sort();
    assert_eq!(dead, ["dies", "w1", "w2"]);
}

#[tokio::test]
async fn an_intake_file_holds_queues_only_and_refuses_a_newer_version() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("intake.db");
    let intake = leadflow_local::SqliteQueue::open_intake(&path).unwrap();
    intake.send(Stage::Validate, &bodies(&["kept"])).await.unwrap();
    drop(intake);
    let reopened = leadflow_local::SqliteQueue::open_intake(&path).unwrap();
    assert_eq!(reopened.depth(Stage::Validate).unwrap(), 1, "a message survives a reopen");
    drop(reopened);
    let conn = rusqlite::Connection::open(&path).unwrap();
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(tables, ["dead_letters", "queue_messages"]);
    conn.pragma_update(None, "user_version", 2).unwrap();
    drop(conn);
    let refused = leadflow_local::SqliteQueue::open_intake(&path).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(refused.contains("newer"), "{refused}");
}
