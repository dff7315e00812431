//! The `leadflow` command line's admin commands against a running admin API (the real router
//! over the in-memory adapters, served on a loopback port).

use std::net::SocketAddr;
use std::sync::Arc;

use chrono::{TimeZone, Utc};
use leadflow_admin::AdminAuth;
use leadflow_core::model::{EnrollmentState, SalesStatus};
use leadflow_core::ports::{Adapters, ConfigHandle, LeadStore};
use leadflow_infra::cli::{
    ApiCall, CallError, CampaignCommand, ExportFormat, FilterArgs, FunnelBy, LeadCommand, MarkStatus, Output,
    RepCommand, ReportCommand, error_line, execute,
};
use leadflow_infra::client::{AdminClient, ClientError};
use leadflow_memory::fixtures;
use leadflow_memory::{MemoryQueue, MemoryStore, RecordingBus, RecordingMailer, SettableClock};
use serde_json::Value;

type MemPorts = Adapters<MemoryStore, MemoryQueue, RecordingMailer, RecordingBus, SettableClock>;

const TOKEN: &str = "cli-test-token";

async fn serve() -> (Arc<MemPorts>, SocketAddr) {
    let ports = Arc::new(Adapters {
        store: MemoryStore::new(),
        queue: MemoryQueue::new(),
        mailer: RecordingMailer::new(),
        bus: RecordingBus::new(),
        clock: SettableClock::at(Utc.with_ymd_and_hms(2026, 3, 2, 10, 0, 0).single().unwrap_or_default()),
        config: ConfigHandle::new(leadflow_tests::test_config()),
    });
    let app = leadflow_admin::router(Arc::clone(&ports), AdminAuth::Bearer(TOKEN.into()));
    let listener = match tokio::net::TcpListener::bind("127.0.0.1:0").await {
        Ok(l) => l,
        Err(e) => panic!("cannot bind a loopback port: {e}"),
    };
    let addr = listener.local_addr().unwrap_or_else(|e| panic!("no local address: {e}"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (ports, addr)
}

fn client(addr: SocketAddr, token: &str) -> AdminClient {
    match AdminClient::new(&format!("http://{addr}"), Some(token.to_string())) {
        Ok(c) => c,
        Err(e) => panic!("no client: {e}"),
    }
}

async fn run(client: &AdminClient, call: ApiCall) -> Value {
    match execute(client, call).await {
        Ok(Output::Json(v)) => v,
        Ok(other) => panic!("expected JSON, got {other:?}"),
        Err(e) => panic!("{}", error_line(&e)),
    }
}

#[tokio::test]
async fn the_cli_drives_leads_reps_reports_and_campaigns_over_http() {
    let (ports, addr) = serve().await;
    let admin = client(addr, TOKEN);
    let mut lead = fixtures::lead(1, "ada@example.com");
    lead.contact.company = Some("=HYPERLINK(\"http://evil\")".into());
    lead.attribution.first_touch.utm.source = Some("google".into());
    assert!(ports.store.create_lead(&lead, &[]).await.is_ok());
    let e = fixtures::enrollment(1, "welcome", Some(fixtures::t(86_400)), EnrollmentState::Active);
    assert!(ports.store.enroll(&e, &[]).await.is_ok());
    let id = lead.id.to_string();

    let shown = run(&admin, ApiCall::Lead(LeadCommand::Show { id: id.clone() })).await;
    assert_eq!(shown["contact"]["email"], "ada@example.com");

    let marked = run(
        &admin,
        ApiCall::Lead(LeadCommand::Mark {
            id: id.clone(),
            status: MarkStatus::Won,
            by: Some("anna".into()),
            note: None,
        }),
    )
    .await;
    assert_eq!(marked["status"], "won");
    assert_eq!(marked["enrollments_stopped"], 1);
    assert_eq!(ports.store.get_lead(lead.id).await.ok().flatten().map(|l| l.status), Some(SalesStatus::Won));

    let export = execute(
        &admin,
        ApiCall::Lead(LeadCommand::Export { format: ExportFormat::Csv, filters: FilterArgs::default(), output: None }),
    )
    .await;
    match export {
        Ok(Output::Text(csv)) => {
            assert!(csv.starts_with("id,"), "{csv}");
            assert!(csv.contains("\"'=HYPERLINK(\"\"http://evil\"\")\""), "{csv}");
        }
        other => panic!("expected the CSV text: {other:?}"),
    }

    let funnel =
        run(&admin, ApiCall::Report(ReportCommand::Funnel { by: FunnelBy::Source, since: None, until: None })).await;
    assert_eq!(funnel["overall"]["captured"], 1);
    assert_eq!(funnel["groups"][0]["key"], "google");

    let rep = run(
        &admin,
        ApiCall::Rep(RepCommand::Set {
            id: "zoe".into(),
            name: Some("Zoe Martin".into()),
            email: Some("zoe@acme.example".into()),
            time_zone: Some("Europe/Paris".into()),
            capacity: Some(10),
            no_capacity: false,
            active: None,
            days: Some(vec!["mon".into(), "fri".into()]),
            start: Some("09:00".into()),
            end: Some("17:00".into()),
            any_time: false,
        }),
    )
    .await;
    assert_eq!(rep["version"], 1);
    let ooo = run(
        &admin,
        ApiCall::Rep(RepCommand::Ooo {
            id: "zoe".into(),
            from: Some("2026-03-09".into()),
            until: Some("2026-03-13T18:00:00Z".into()),
            clear: false,
        }),
    )
    .await;
    assert_eq!(ooo["rep"]["out_of_office"]["from"], "2026-03-09T00:00:00Z");

    // A campaign file, applied, paused and previewed.
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("no temp dir: {e}"));
    let file = dir.path().join("spring.yaml");
    let yaml = "id: spring\nname: Spring\nsteps:\n  - id: hello\n    subject: Hi {{ lead.first_name }}\n    text: Hi\n    html: <p>Hi</p>\n";
    std::fs::write(&file, yaml).unwrap_or_else(|e| panic!("cannot write {}: {e}", file.display()));
    let applied = run(&admin, ApiCall::Campaign(CampaignCommand::Apply { file: file.clone() })).await;
    assert_eq!(applied["version"], 1);
    let paused = run(&admin, ApiCall::Campaign(CampaignCommand::Pause { id: "spring".into() })).await;
    assert_eq!(paused["status"], "paused");
    let preview = run(
        &admin,
        ApiCall::Campaign(CampaignCommand::Preview {
            id: "spring".into(),
            lead: id.clone(),
            step: "hello".into(),
            version: None,
        }),
    )
    .await;
    assert_eq!(preview["subject"], "Hi Ada");

    let erased = run(&admin, ApiCall::Lead(LeadCommand::Erase { id: id.clone(), yes: true })).await;
    assert_eq!(erased["erased"], true);
    let after = run(&admin, ApiCall::Lead(LeadCommand::Show { id: id.clone() })).await;
    assert_eq!(after["erased"], true);
    assert!(!after.to_string().contains("ada@example.com"));
}

#[tokio::test]
async fn api_errors_come_back_as_code_and_message() {
    let (_ports, addr) = serve().await;
    let intruder = client(addr, "not-the-token");
    let err = execute(&intruder, ApiCall::Lead(LeadCommand::Show { id: fixtures::id(1).to_string() })).await;
    match &err {
        Err(CallError::Api(ClientError::Api { status: 401, code, .. })) => assert_eq!(code, "unauthorized"),
        other => panic!("expected a 401: {other:?}"),
    }
    let line = err.err().map(|e| error_line(&e)).unwrap_or_default();
    assert!(line.starts_with("error: unauthorized: "), "{line}");

    let admin = client(addr, TOKEN);
    let bad_zone = execute(
        &admin,
        ApiCall::Rep(RepCommand::Set {
            id: "zoe".into(),
            name: Some("Zoe".into()),
            email: Some("zoe@acme.example".into()),
            time_zone: Some("Nowhere/Special".into()),
            capacity: None,
            no_capacity: false,
            active: None,
            days: None,
            start: None,
            end: None,
            any_time: false,
        }),
    )
    .await;
    let line = bad_zone.err().map(|e| error_line(&e)).unwrap_or_default();
    assert!(line.starts_with("error: invalid_field: ") && line.ends_with("field: time_zone"), "{line}");

    let missing = execute(&admin, ApiCall::Lead(LeadCommand::Show { id: fixtures::id(5).to_string() })).await;
    let line = missing.err().map(|e| error_line(&e)).unwrap_or_default();
    assert!(line.starts_with("error: lead_not_found: "), "{line}");

    let https = AdminClient::new("https://admin.example.com", None).err();
    assert_eq!(https.as_ref().map(ClientError::code), Some("bad_url"));
}
