//! The route function on Lambda: batches from the route queue; sends no further.

use leadflow_aws::dead_letters::ReasonLog;
use leadflow_aws::lambda::{init_tracing, ports_from_env_with_secret, run_sqs_stage};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    init_tracing();
    // The assignment email's one-click actions are signed: no secret, no start.
    let ports = ports_from_env_with_secret(&[]).await?;
    run_sqs_stage(ReasonLog::of_store(&ports.store), |items| leadflow_route::handle_batch(&ports, items)).await
}
