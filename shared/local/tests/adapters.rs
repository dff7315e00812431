use std::time::Duration;

use chrono::{TimeZone, Utc};
use leadflow_core::ports::{Clock, DomainEvent, EmailCategory, EventBus, Mailbox, Mailer, OutgoingEmail};
use leadflow_local::{JsonlBus, OutboxMailer, SystemClock};
use mail_parser::MessageParser;

fn email(key: &str, subject: &str) -> OutgoingEmail {
    OutgoingEmail {
        key: key.to_string(),
        category: EmailCategory::Marketing,
        from: Mailbox { name: Some("Leadflow".into()), email: "hello@leadflow.example".into() },
        to: Mailbox { name: Some("Ada Lovelace".into()), email: "ada@example.com".into() },
        subject: subject.to_string(),
        text: "Hello Ada, plain.".into(),
        html: "<p>Hello <b>Ada</b>, rich.</p>".into(),
        headers: vec![("List-Unsubscribe".into(), "<https://leadflow.example/u/tok>".into())],
        tags: Vec::new(),
    }
}

fn eml_files(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<_> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

#[tokio::test]
async fn the_outbox_writes_one_parseable_eml_per_key() {
    let dir = tempfile::tempdir().unwrap();
    let outbox_dir = dir.path().join("outbox");
    let mailer = OutboxMailer::open(&outbox_dir).unwrap();
    let now = Utc.with_ymd_and_hms(2025, 6, 1, 9, 0, 0).unwrap();

    let key = "drip-01ARZ3NDEKTSV4RRFFQ69G5FAV-welcome-v1-0";
    let id = mailer.send(&email(key, "Welcome aboard"), now).await.unwrap();
    assert_eq!(id, format!("{key}@leadflow.local"));
    // A retry, even of a re-rendered email, writes nothing and answers the same id.
    let again = mailer.send(&email(key, "A different subject"), now).await.unwrap();
    assert_eq!(again, id);
    assert_eq!(eml_files(&outbox_dir), vec![format!("{key}.eml")], "one file, no temporary leftovers");

    let bytes = std::fs::read(mailer.path_for(key)).unwrap();
    let msg = MessageParser::default().parse(&bytes).expect("a parseable message");
    assert_eq!(msg.subject(), Some("Welcome aboard"));
    assert_eq!(msg.message_id(), Some(id.as_str()));
    let to = msg.to().and_then(|a| a.first()).expect("a recipient");
    assert_eq!((to.name(), to.address()), (Some("Ada Lovelace"), Some("ada@example.com")));
    assert_eq!(msg.text_body_count(), 1);
    assert_eq!(msg.html_body_count(), 1);
    assert_eq!(msg.body_text(0).as_deref().map(str::trim), Some("Hello Ada, plain."));
    assert!(msg.body_html(0).is_some_and(|h| h.contains("<b>Ada</b>")));
    assert_eq!(msg.header_raw("List-Unsubscribe").map(str::trim), Some("<https://leadflow.example/u/tok>"));
}

#[tokio::test]
async fn outbox_keys_with_unsafe_characters_stay_inside_the_outbox() {
    let dir = tempfile::tempdir().unwrap();
    let outbox_dir = dir.path().join("outbox");
    let mailer = OutboxMailer::open(&outbox_dir).unwrap();
    let now = Utc::now();
    let a = mailer.send(&email("../escape/a b", "A"), now).await.unwrap();
    let b = mailer.send(&email("../escape/a_b", "B"), now).await.unwrap();
    assert_ne!(a, b);
    assert_eq!(eml_files(&outbox_dir).len(), 2);
    assert!(!dir.path().join("escape").exists());
    let parsed = std::fs::read(mailer.path_for("../escape/a b")).unwrap();
    assert_eq!(MessageParser::default().parse(&parsed).unwrap().message_id(), Some(a.as_str()));
}

#[tokio::test]
async fn an_outbox_that_cannot_be_written_says_where_without_personal_data() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("not-a-folder");
    std::fs::write(&blocker, "").unwrap();
    let err = OutboxMailer::open(&blocker).unwrap_err().to_string();
    assert!(err.starts_with("cannot create the outbox folder"), "{err}");

    let mailer = OutboxMailer::open(dir.path().join("outbox")).unwrap();
    std::fs::remove_dir(mailer.dir()).unwrap();
    std::fs::write(mailer.dir(), "").unwrap();
    let err = mailer.send(&email("k", "s"), Utc::now()).await.unwrap_err().to_string();
    assert!(err.contains("outbox"), "{err}");
    assert!(!err.contains("ada@example.com"), "{err}");
}

#[tokio::test]
async fn events_are_appended_as_json_lines() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events").join("events.jsonl");
    let event = |n: u32| DomainEvent {
        id: format!("lead.assigned-{n}"),
        detail_type: "lead.assigned".into(),
        at: Utc.with_ymd_and_hms(2025, 6, 1, 9, 0, n).unwrap(),
        detail: serde_json::json!({ "lead_id": n, "rep_id": "rep-1" }),
    };
    {
        let bus = JsonlBus::open(&path).unwrap();
        bus.publish(&[event(1), event(2)]).await.unwrap();
        bus.publish(&[]).await.unwrap();
    }
    // Reopening appends rather than truncating.
    JsonlBus::open(&path).unwrap().publish(&[event(3)]).await.unwrap();

    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.ends_with('\n'));
    let read: Vec<DomainEvent> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(read, vec![event(1), event(2), event(3)]);
}

#[test]
fn the_system_clock_tells_system_time_and_the_accelerated_one_runs_faster() {
    let before = Utc::now();
    let now = SystemClock::new().now();
    assert!(now >= before && now <= Utc::now());

    let fast = SystemClock::accelerated(3600.0);
    let start = fast.now();
    std::thread::sleep(Duration::from_millis(20));
    let elapsed = fast.now() - start;
    // 20 ms of real time is at least 72 s at 3600×; allow for a slow machine above.
    assert!(elapsed >= chrono::TimeDelta::seconds(72), "{elapsed}");
    assert!(elapsed < chrono::TimeDelta::hours(2), "{elapsed}");

    assert_eq!(SystemClock::accelerated(f64::NAN).factor(), 1.0);
    assert_eq!(SystemClock::accelerated(-2.0).factor(), 1.0);
}
