//! What the console's lead page asks DynamoDB for: the page a rep opens from the assignment email.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use leadflow_admin::console::SignIn;
use leadflow_admin::console::session::{self, Role};
use leadflow_core::config::CompiledConfig;
use leadflow_core::model::{Activity, ActivityKind, EnrollmentState};
use leadflow_core::ports::{Adapters, ConfigHandle, CreateOutcome, Enrollments, Leads};
use leadflow_memory::{MemoryQueue, RecordingBus, RecordingMailer, SettableClock};
use tower::ServiceExt;

use super::common::{enrollment, id, lead, owned_by, t, table};

#[tokio::test]
async fn the_lead_page_reads_the_lead_its_trail_and_enrollments_in_two_requests_side_by_side() {
    let db = table().await;
    let store = db.store.clone();
    let ada = owned_by(lead(1, "ada@example.com"), "anna");
    let form = Activity {
        id: "form".into(),
        lead_id: ada.id,
        at: t(0),
        kind: ActivityKind::FormSubmission { submission_id: ada.id, form: Some("Pricing".into()) },
    };
    assert_eq!(store.create_lead(&ada, &[form]).await.ok(), Some(CreateOutcome::Created));
    assert!(store.enroll(&enrollment(1, "welcome", Some(t(60)), EnrollmentState::Active), &[]).await.is_ok());
    // A second submission of hers, merged into her lead: its id is an alias.
    assert_eq!(store.record_alias(id(2), ada.id).await.ok(), Some(true));

    let mut config = CompiledConfig::compile(&leadflow_app::config_files::sample()).expect("the sample configuration");
    config.settings.signing_keys = "a-test-secret-of-the-console-reads-0123456789".into();
    let keys = config.settings.signing_keys.clone();
    let ports = Arc::new(Adapters {
        store,
        queue: MemoryQueue::new(),
        mailer: RecordingMailer::new(),
        bus: RecordingBus::new(),
        clock: SettableClock::at(t(120)),
        config: ConfigHandle::new(config),
    });
    let app = leadflow_admin::console::router(ports, SignIn::NotSetUp);
    // Anna, a rep of the sample routing: the console finds her rep by her address.
    let rep = session::start("anna@acme.example", Role::Sales, Some("anna".into()), chrono::Utc::now());
    let cookie = format!("{}={}", session::COOKIE, session::seal(&keys, &rep).expect("a sealed session"));
    let open = async |path: String| {
        let request = Request::get(path).header(header::COOKIE, &cookie).body(Body::empty()).expect("a request");
        let response = app.clone().oneshot(request).await.unwrap_or_else(|e| match e {});
        let status = response.status();
        let body = response.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
        (status, String::from_utf8_lossy(&body).into_owned())
    };

    db.requests.take();
    let (status, html) = open(format!("/console/leads/{}", ada.id)).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("ada@example.com") && html.contains("Pricing") && html.contains("welcome"), "{html}");
    // The lead with its trail (one partition), and its enrollments: before, the alias check, the
    // lead, the trail and the enrollments took four requests one after the other.
    assert_eq!(db.requests.take(), ["Query", "Query"]);

    let (status, html) = open(format!("/console/leads/{}", id(2))).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("ada@example.com") && html.contains("welcome"), "the alias opens her lead: {html}");
    // The alias is no lead: its two reads find nothing, the alias names her lead, then hers.
    assert_eq!(db.requests.take(), ["Query", "Query", "BatchGetItem", "Query", "Query"]);
}
