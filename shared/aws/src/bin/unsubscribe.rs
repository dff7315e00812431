//! The unsubscribe function on Lambda, behind the HTTP API's public `GET/POST /u/{token}` and
//! `/confirm/{token}` routes. Anyone may call it: the token's signature is the authorization. It does not start without
//! `LEADFLOW_UNSUBSCRIBE_SECRET`, since it could verify no link.

use std::sync::Arc;

use leadflow_aws::lambda::{init_tracing, ports_from_env_with_secret};
use leadflow_aws::metrics::{Emf, Metered};
use leadflow_aws::queue::SqsQueue;
use leadflow_aws::unwired::Unwired;
use leadflow_core::ports::Stage;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    init_tracing();
    // A confirmed subscription goes to the score stage, which enrolls the lead.
    // No email, no event.
    let ports = Arc::new(
        ports_from_env_with_secret::<SqsQueue, Unwired, Unwired>(
            &[Stage::Score],
            leadflow_app::config_files::sample_json_settings_alone,
        )
        .await?,
    );
    lambda_http::run(Metered::new(leadflow_unsubscribe::router(ports), Emf::from_env())).await
}
