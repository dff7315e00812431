//! The route function on Lambda: batches from the route queue; sends no further.

use leadflow_aws::bus::EventBridgeBus;
use leadflow_aws::dead_letters::ReasonLog;
use leadflow_aws::lambda::{init_tracing, ports_from_env_with_secret, run_sqs_stage};
use leadflow_aws::mailer::SesMailer;
use leadflow_aws::unwired::Unwired;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    init_tracing();
    // The assignment email's one-click actions are signed: no secret, no start.
    // Mails (assignment, SLA, confirmation) and publishes `lead.assigned`; no queue.
    let ports =
        ports_from_env_with_secret::<Unwired, SesMailer, EventBridgeBus>(&[], leadflow_app::config_files::sample_json)
            .await?;
    run_sqs_stage(ReasonLog::of_store(&ports.store), |items| leadflow_route::handle_batch(&ports, items)).await
}
