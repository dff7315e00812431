//! Dead letters on the local stack, as an operator meets them: a submission the validate stage
//! kept failing on sits in the dead letters with the reason of its last failure; the admin API
//! and `leadflow dead-letters` list it (by lead id and kind, never with the address it carries)
//! and redrive it, after which the stage handles it and the lead is there.

use std::time::{Duration, Instant};

use chrono::Utc;
use leadflow_core::model::{LeadId, Submission};
use leadflow_core::ports::Stage;
use leadflow_infra::cli::dead_letters::{DeadLetterArgs, DeadLetterCommand, StageArg};
use leadflow_infra::cli::{ApiCall, Format, Output, execute};
use leadflow_infra::client::AdminClient;
use leadflow_local::SqliteStore;
use serde_json::{Value, json};

const TOKEN: &str = "dead-letters-test-admin-token-0123456789";
const REASON: &str = "the lead store is unavailable: database is locked";
const EMAIL: &str = "dora@deadletter.example";

/// A data folder whose validate queue has one dead letter: a submission released with
/// [`REASON`] on each of its deliveries, as the local runner releases a failed message. It is in
/// the store's file, where builds before the intake file kept validate's queue: the stack moves it
/// when it starts, so this test also shows that nothing such a build left is stranded.
fn folder_with_a_dead_letter() -> (tempfile::TempDir, LeadId) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
    let store = SqliteStore::open(dir.path().join("leadflow.db")).unwrap_or_else(|e| panic!("store: {e}"));
    let queue = store.queue().with_max_receives(2);
    let lead_id = LeadId::from_parts(u64::try_from(Utc::now().timestamp_millis()).unwrap_or(0), 0xdead);
    let submission = Submission {
        lead_id,
        received_at: Utc::now(),
        email: EMAIL.into(),
        first_name: Some("Dora".into()),
        ..Submission::default()
    };
    let body = serde_json::to_string(&submission).unwrap_or_else(|e| panic!("{e}"));
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap_or_else(|e| panic!("{e}"));
    rt.block_on(leadflow_core::ports::StageQueue::send(&queue, Stage::Validate, &[body]))
        .unwrap_or_else(|e| panic!("send: {e}"));
    for _ in 0..2 {
        let got = queue.receive(Stage::Validate, 10, Duration::from_secs(30), Utc::now()).unwrap_or_default();
        assert_eq!(got.len(), 1);
        let released = queue.release(Stage::Validate, &got[0].id, REASON, Duration::ZERO, Utc::now());
        assert_eq!(released.ok(), Some(true));
    }
    // The third receive finds it delivered twice: dead-lettered, nothing handed out.
    assert!(queue.receive(Stage::Validate, 10, Duration::from_secs(30), Utc::now()).unwrap_or_default().is_empty());
    assert_eq!(queue.depth(Stage::Validate).ok(), Some(0));
    (dir, lead_id)
}

async fn start(dir: &tempfile::TempDir) -> leadflow_infra::dev::Running {
    let opts = leadflow_infra::dev::DevOptions {
        addr: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        data_dir: dir.path().to_path_buf(),
        config_dir: Some(leadflow_tests::config_dir()),
        admin_token: Some(TOKEN.into()),
        nurture_every: Duration::from_secs(3600),
        ..leadflow_infra::dev::DevOptions::default()
    };
    leadflow_infra::dev::start(opts).await.unwrap_or_else(|e| panic!("the local stack starts: {e}"))
}

async fn call(http: &reqwest::Client, method: reqwest::Method, url: &str, token: Option<&str>) -> (u16, Value) {
    let mut req = http.request(method, url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.unwrap_or_else(|e| panic!("{url}: {e}"));
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or_else(|_| json!({ "text": text })))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_letter_is_listed_with_its_reason_and_redriven_into_the_pipeline() {
    let (dir, lead_id) = tokio::task::spawn_blocking(folder_with_a_dead_letter).await.unwrap_or_else(|e| panic!("{e}"));
    let running = start(&dir).await;
    let base = format!("http://{}", running.addr);
    let http = reqwest::Client::new();

    let (status, listed) = call(&http, reqwest::Method::GET, &format!("{base}/admin/dead-letters"), Some(TOKEN)).await;
    assert_eq!(status, 200, "{listed}");
    let stages: Vec<&str> =
        listed["stages"].as_array().into_iter().flatten().filter_map(|s| s["stage"].as_str()).collect();
    assert_eq!(stages, ["validate", "score", "route"]);
    let validate = &listed["stages"][0];
    assert_eq!(validate["total"], json!(1));
    let item = &validate["items"][0];
    assert_eq!(item["reason"], json!(REASON));
    assert_eq!(item["lead_id"], json!(lead_id.to_string()));
    assert_eq!(item["kind"], json!("submission"));
    assert_eq!(item["receive_count"], json!(2));
    assert!(item["dead_at"].is_string(), "{item}");
    assert!(!listed.to_string().contains(EMAIL), "the listing shows what the submission carries: {listed}");
    assert!(!listed.to_string().contains("Dora"), "the listing shows what the submission carries: {listed}");

    // The admin API's rules: the token, a bounded limit, a known stage.
    let url = format!("{base}/admin/dead-letters");
    assert_eq!(call(&http, reqwest::Method::GET, &url, None).await.0, 401);
    assert_eq!(call(&http, reqwest::Method::GET, &url, Some("wrong-token-0123456789012345")).await.0, 401);
    for bad in ["limit=0", "limit=101", "limit=x", "stage=nurture"] {
        let (status, body) = call(&http, reqwest::Method::GET, &format!("{url}?{bad}"), Some(TOKEN)).await;
        assert_eq!(status, 422, "{bad}: {body}");
        assert_eq!(body["error"]["field"], json!(bad.split('=').next()), "{bad}: {body}");
    }
    let (status, one) = call(&http, reqwest::Method::GET, &format!("{url}?stage=route&limit=1"), Some(TOKEN)).await;
    assert_eq!((status, one["stages"].as_array().map(Vec::len)), (200, Some(1)));
    assert_eq!(one["stages"][0]["total"], json!(0));
    let nowhere = call(&http, reqwest::Method::POST, &format!("{url}/nurture/redrive"), Some(TOKEN)).await;
    assert_eq!(nowhere.0, 404, "{}", nowhere.1);
    assert_eq!(call(&http, reqwest::Method::POST, &format!("{url}/validate/redrive"), None).await.0, 401);

    // The lead is nowhere yet: its submission is a dead letter.
    let find = format!("{base}/admin/leads?email={EMAIL}");
    assert_eq!(call(&http, reqwest::Method::GET, &find, Some(TOKEN)).await.0, 404);

    // The CLI shows the same, for a person.
    let client = AdminClient::new(&base, Some(TOKEN.into())).unwrap_or_else(|e| panic!("{e}"));
    let list = ApiCall::DeadLetters(DeadLetterArgs { stage: Some(StageArg::Validate), limit: None, action: None });
    match execute(&client, list, Format::Human).await {
        Ok(Output::Human { text, hint }) => {
            assert!(text.contains("validate: 1 dead letter(s)"), "{text}");
            assert!(text.contains(REASON), "{text}");
            assert!(text.contains(&lead_id.to_string()), "{text}");
            assert_eq!(hint.as_deref(), Some("put them back with: leadflow dead-letters redrive --stage validate"));
        }
        other => panic!("{other:?}"),
    }

    let redrive = ApiCall::DeadLetters(DeadLetterArgs {
        stage: None,
        limit: None,
        action: Some(DeadLetterCommand::Redrive { stage: StageArg::Validate }),
    });
    match execute(&client, redrive, Format::Json).await {
        Ok(Output::Json(v)) => assert_eq!(v, json!({"stage": "validate", "messages": 1, "done": true, "task": null})),
        other => panic!("{other:?}"),
    }

    // Back in the pipeline: validate handles it, and the lead is there.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, lead) = call(&http, reqwest::Method::GET, &find, Some(TOKEN)).await;
        if status == 200 {
            assert_eq!(lead["id"], json!(lead_id.to_string()));
            break;
        }
        assert!(Instant::now() < deadline, "the redriven submission was not handled: {status} {lead}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, after) = call(&http, reqwest::Method::GET, &format!("{url}?stage=validate"), Some(TOKEN)).await;
    assert_eq!(after["stages"][0]["total"], json!(0), "{after}");
    let again = ApiCall::DeadLetters(DeadLetterArgs {
        stage: None,
        limit: None,
        action: Some(DeadLetterCommand::Redrive { stage: StageArg::Validate }),
    });
    match execute(&client, again, Format::Human).await {
        Ok(Output::Human { text, .. }) => assert_eq!(text, "validate: no dead letters to redrive\n"),
        other => panic!("{other:?}"),
    }
    running.shutdown().await;
}

/// A submission an older build left waiting for validate in the store's file is handled after an
/// upgrade: the stack moves it to the intake file on start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_submission_left_waiting_by_an_older_build_becomes_a_lead() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
    let lead_id = LeadId::from_parts(u64::try_from(Utc::now().timestamp_millis()).unwrap_or(0), 0xbeef);
    let submission = Submission {
        lead_id,
        received_at: Utc::now(),
        email: "wanda@waiting.example".into(),
        first_name: Some("Wanda".into()),
        ..Submission::default()
    };
    let body = serde_json::to_string(&submission).unwrap_or_else(|e| panic!("{e}"));
    {
        let store = SqliteStore::open(dir.path().join("leadflow.db")).unwrap_or_else(|e| panic!("store: {e}"));
        leadflow_core::ports::StageQueue::send(&store.queue(), Stage::Validate, &[body])
            .await
            .unwrap_or_else(|e| panic!("send: {e}"));
    }
    let running = start(&dir).await;
    let base = format!("http://{}", running.addr);
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, lead) =
            call(&http, reqwest::Method::GET, &format!("{base}/admin/leads/{lead_id}"), Some(TOKEN)).await;
        if status == 200 {
            assert_eq!(lead["contact"]["first_name"], json!("Wanda"), "{lead}");
            break;
        }
        assert!(Instant::now() < deadline, "the waiting submission was not handled: {status} {lead}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    running.shutdown().await;
    let store = SqliteStore::open(dir.path().join("leadflow.db")).unwrap_or_else(|e| panic!("store: {e}"));
    assert_eq!(store.queue().depth(Stage::Validate).ok(), Some(0), "nothing is left in the store's file");
}
