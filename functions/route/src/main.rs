//! The route function on Lambda: batches from the route queue; sends no further.

use leadflow_aws::lambda::{init_tracing, ports_from_env, run_sqs_stage};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    init_tracing();
    let ports = ports_from_env(&[]).await?;
    run_sqs_stage(|items| leadflow_route::handle_batch(&ports, items)).await
}
