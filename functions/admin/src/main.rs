//! The admin function on Lambda. API Gateway authorizes every request with IAM before it gets
//! here, so the router does no authorization of its own.

use std::sync::Arc;

use leadflow_admin::AdminAuth;
use leadflow_aws::lambda::{init_tracing, ports_from_env_with_secret};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    init_tracing();
    let ports = Arc::new(ports_from_env_with_secret(&[]).await?);
    lambda_http::run(leadflow_admin::router(ports, AdminAuth::Upstream)).await
}
