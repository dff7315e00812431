//! The validate function on Lambda: batches from the validate queue; sends to the score queue.

use leadflow_aws::dead_letters::ReasonLog;
use leadflow_aws::lambda::{init_tracing, ports_from_env, run_sqs_stage};
use leadflow_aws::queue::SqsQueue;
use leadflow_aws::unwired::Unwired;
use leadflow_core::ports::Stage;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    init_tracing();
    // No email, no event.
    let ports = ports_from_env::<SqsQueue, Unwired, Unwired>(
        &[Stage::Score],
        leadflow_app::config_files::sample_json_settings_alone,
    )
    .await?;
    run_sqs_stage(ReasonLog::of_store(&ports.store), |items| leadflow_validate::handle_batch(&ports, items)).await
}
