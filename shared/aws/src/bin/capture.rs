//! The capture function on Lambda: `POST /leads` from API Gateway (HTTP API, payload 2.0).

use std::sync::Arc;

use leadflow_aws::lambda::{init_tracing, ports_from_env};
use leadflow_aws::metrics::{Emf, Metered};
use leadflow_aws::queue::SqsQueue;
use leadflow_aws::unwired::Unwired;
use leadflow_core::ports::Stage;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    init_tracing();
    // Sends to the validate queue; no email, no event.
    let ports = Arc::new(
        ports_from_env::<SqsQueue, Unwired, Unwired>(
            &[Stage::Validate],
            leadflow_app::config_files::sample_settings_alone,
        )
        .await?,
    );
    lambda_http::run(Metered::new(leadflow_capture::router(ports), Emf::from_env())).await
}
