//! The score function on Lambda: batches from the score queue; sends MQLs to the route queue.

use leadflow_aws::dead_letters::ReasonLog;
use leadflow_aws::lambda::{init_tracing, ports_from_env, run_sqs_stage};
use leadflow_core::ports::Stage;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    init_tracing();
    let ports = ports_from_env(&[Stage::Route]).await?;
    run_sqs_stage(ReasonLog::of_store(&ports.store), |items| leadflow_score::handle_batch(&ports, items)).await
}
