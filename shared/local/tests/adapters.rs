mod common;

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

/// An email to `to` about lead `lead`, with the lead's address in the body too, as the
/// assignment email to a rep has it.
fn about(key: &str, to: &str, lead_email: &str) -> OutgoingEmail {
    let mut e = email(key, "About a lead");
    e.to = Mailbox { name: None, email: to.to_string() };
    e.text = format!("The lead: {lead_email}");
    e.html = format!("<p>The lead: {lead_email}</p>");
    e
}

fn files_mentioning(dir: &std::path::Path, needle: &str) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| std::fs::read(p).unwrap().windows(needle.len()).any(|w| w == needle.as_bytes()))
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect()
}

#[tokio::test]
async fn erasing_a_lead_deletes_every_outbox_file_about_it_and_only_those() {
    let dir = tempfile::tempdir().unwrap();
    let outbox_dir = dir.path().join("outbox");
    let mailer = OutboxMailer::open(&outbox_dir).unwrap();
    let now = Utc::now();
    let (ada, bob) = (common::id(1), common::id(2));
    let ada_keys = [
        format!("assignment-{ada}-rep_1"),
        format!("drip-{ada}-welcome-v1-0"),
        format!("drip-{ada}-welcome-v1-1"),
        // A key long enough for its file name to be shortened, the lead id still at its start.
        format!("drip-{ada}-{}-v1-0", "a-very-long-campaign-name".repeat(8)),
    ];
    for key in &ada_keys {
        let to = if key.starts_with("assignment") { "rep1@leadflow.example" } else { "ada@example.com" };
        mailer.send(&about(key, to, "ada@example.com"), now).await.unwrap();
    }
    // A shortened name that lost the lead id: the file itself names the lead.
    let lost_id_key = format!("{}-{ada}", "x".repeat(300));
    let mut lost_id = about(&lost_id_key, "ada@example.com", "ada@example.com");
    lost_id.text = format!("https://leadflow.example/admin/leads/{ada}");
    mailer.send(&lost_id, now).await.unwrap();
    // The temporary file of a send that died before linking it into place.
    let stem = mailer.path_for(&format!("drip-{ada}-welcome-v1-2")).file_stem().unwrap().to_string_lossy().into_owned();
    std::fs::write(outbox_dir.join(format!(".{stem}.4242.0.tmp")), "To: ada@example.com\r\n").unwrap();

    let bob_keys = [format!("assignment-{bob}-rep_1"), format!("drip-{bob}-welcome-v1-0")];
    for key in &bob_keys {
        mailer.send(&about(key, "bob@example.com", "bob@example.com"), now).await.unwrap();
    }
    // Not the outbox's: left alone.
    std::fs::write(outbox_dir.join("README.txt"), "notes").unwrap();
    assert_eq!(files_mentioning(&outbox_dir, "ada@example.com").len(), 6);

    assert_eq!(mailer.erase(ada).await.unwrap(), 6);
    assert_eq!(files_mentioning(&outbox_dir, "ada@example.com"), Vec::<String>::new());
    let mut kept: Vec<String> = bob_keys.iter().map(|k| format!("{k}.eml")).collect();
    kept.push("README.txt".into());
    kept.sort();
    assert_eq!(eml_files(&outbox_dir), kept);
    for key in &bob_keys {
        assert!(mailer.path_for(key).exists(), "{key}");
    }
    assert_eq!(mailer.erase(ada).await.unwrap(), 0, "nothing left to erase");
    assert_eq!(mailer.erase(common::id(3)).await.unwrap(), 0);
}

#[tokio::test]
async fn the_recording_mailer_forgets_the_emails_about_an_erased_lead() {
    let mailer = leadflow_memory::RecordingMailer::new();
    let (ada, bob) = (common::id(1), common::id(2));
    for key in
        [format!("assignment-{ada}-rep_1"), format!("drip-{bob}-welcome-v1-0"), format!("drip-{ada}-welcome-v1-0")]
    {
        mailer.send(&email(&key, "s"), Utc::now()).await.unwrap();
    }
    assert_eq!(mailer.erase(ada).await.unwrap(), 2);
    let left: Vec<String> = mailer.sent().into_iter().map(|e| e.key).collect();
    assert_eq!(left, vec![format!("drip-{bob}-welcome-v1-0")]);
    assert_eq!(mailer.erase(ada).await.unwrap(), 0);
}

#[tokio::test]
async fn a_restarted_outbox_deletes_the_temporary_files_a_killed_send_left_and_only_those() {
    let dir = tempfile::tempdir().unwrap();
    let outbox_dir = dir.path().join("outbox");
    let lead = common::id(1);
    let key = format!("assignment-{lead}-ben");
    {
        let mailer = OutboxMailer::open(&outbox_dir).unwrap();
        mailer
            .send(&about(&format!("assignment-{}-ana", common::id(2)), "ana@x.example", "b@x.example"), Utc::now())
            .await
            .unwrap();
        // What a kill -9 in the middle of a write leaves: the temporary file, empty or half
        // written, and no .eml.
        let stem = mailer.path_for(&key).file_stem().unwrap().to_string_lossy().into_owned();
        std::fs::write(outbox_dir.join(format!(".{stem}.4242.0.tmp")), "").unwrap();
        std::fs::write(outbox_dir.join(format!(".{stem}.4242.1.tmp")), "To: ben@").unwrap();
    }
    // Not the outbox's names: a user's notes stay.
    std::fs::write(outbox_dir.join(".notes.tmp"), "mine").unwrap();
    std::fs::write(outbox_dir.join("README.txt"), "notes").unwrap();

    let mailer = OutboxMailer::open(&outbox_dir).unwrap();
    let mut expected =
        vec![".notes.tmp".to_string(), "README.txt".into(), format!("assignment-{}-ana.eml", common::id(2))];
    expected.sort();
    assert_eq!(eml_files(&outbox_dir), expected);

    // The retried send writes the whole email, once.
    mailer.send(&about(&key, "ben@x.example", "b@x.example"), Utc::now()).await.unwrap();
    let assignment_files = eml_files(&outbox_dir).into_iter().filter(|n| n.contains("assignment")).count();
    assert_eq!(assignment_files, 2);
    let written = std::fs::read(mailer.path_for(&key)).unwrap();
    assert!(MessageParser::default().parse(&written).is_some_and(|m| m.subject() == Some("About a lead")));
}
