//! The ses-events function on Lambda, the target of the EventBridge rule that matches the SES
//! events of Leadflow's configuration set (`source: aws.ses`).
//!
//! EventBridge invokes it asynchronously, one event per invocation. A retryable failure (the
//! store or the queue unavailable) fails the invocation, so that Lambda retries it and, after its
//! retries, sends it to the function's on-failure destination / DLQ. An event no retry can fix
//! (malformed) succeeds after logging why, so it does not take up retries.

use lambda_runtime::{LambdaEvent, service_fn};
use leadflow_app::StageError;
use leadflow_aws::lambda::{FunctionPorts, init_tracing, ports_from_env};
use leadflow_aws::metrics::Emf;
use leadflow_aws::queue::SqsQueue;
use leadflow_aws::unwired::Unwired;
use leadflow_core::ports::Stage;
use leadflow_ses_events::{Outcome, handle_event};
use serde_json::{Value, json};
use tracing::{Instrument, error, info, info_span, warn};

/// The queue for rescoring; no mailer, no bus.
type Ports = FunctionPorts<SqsQueue, Unwired, Unwired>;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    init_tracing();
    // Opens and clicks ask the score stage to score the lead again.
    // No email, no event.
    let ports: Ports = ports_from_env(&[Stage::Score], leadflow_app::config_files::sample_json_settings_alone).await?;
    let emf = Emf::from_env();
    // Boxed: nested in the runtime's futures, the handler's future (SDK calls inside domain
    // steps) goes past the compiler's type layout depth limit.
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| Box::pin(emf.metered(handle(&ports, event))))).await
}

async fn handle(ports: &Ports, event: LambdaEvent<Value>) -> Result<Value, lambda_runtime::Error> {
    // EventBridge's event id and the detail type: no personal data.
    let event_id = event.payload.get("id").and_then(Value::as_str).unwrap_or_default().to_string();
    let detail_type = event.payload.get("detail-type").and_then(Value::as_str).unwrap_or_default().to_string();
    let span = info_span!("ses_event", event_id = %event_id, detail_type = %detail_type);
    match handle_event(ports, &event.payload).instrument(span.clone()).await {
        Ok(Outcome::Handled(report)) => Ok(json!({
            "handled": report.event,
            "leads": report.leads,
            "newly_suppressed": report.newly_suppressed,
            "rescored": report.rescored,
        })),
        Ok(Outcome::Ignored(reason)) => {
            span.in_scope(|| info!(%reason, "SES event ignored"));
            Ok(json!({ "ignored": reason }))
        }
        Err(StageError::Permanent(reason)) => {
            span.in_scope(|| warn!(%reason, "SES event dropped: no retry can fix it"));
            Ok(json!({ "dropped": reason }))
        }
        Err(e @ StageError::Retryable(_)) => {
            span.in_scope(|| error!(error = %e, "SES event failed; Lambda will retry it"));
            Err(e.into())
        }
    }
}
