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
        // Console sign-in on AWS (the Cognito user pool) is not built yet: its pages say so, and
        // the one-click actions work, their signed link being the credential.
        .merge(leadflow_admin::console::router(ports, leadflow_admin::console::SignIn::NotSetUp));
    lambda_http::run(app).await
}
