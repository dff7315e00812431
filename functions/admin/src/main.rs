//! The admin function on Lambda. API Gateway authorizes every `/admin` request with IAM before it
//! gets here, so that router does no authorization of its own; the console's one-click actions
//! are public routes whose signed link is the credential.

use std::sync::Arc;

use leadflow_admin::AdminAuth;
use leadflow_aws::lambda::{init_tracing, ports_from_env_with_secret};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    init_tracing();
    let ports = Arc::new(ports_from_env_with_secret(&[]).await?);
    let app = leadflow_admin::router(Arc::clone(&ports), AdminAuth::Upstream)
        .merge(leadflow_admin::console::public_router(ports));
    lambda_http::run(app).await
}
