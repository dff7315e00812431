//! The admin function on Lambda. API Gateway authorizes every `/admin` request with IAM before it
//! gets here, so that router does no authorization of its own. The console's pages are public at
//! the gateway and check their own session, signed in through the deployment's Cognito user pool;
//! its one-click actions carry their signed link as the credential.

use std::sync::Arc;

use leadflow_admin::AdminAuth;
use leadflow_admin::console::SignIn;
use leadflow_admin::console::cognito::{Cognito, CognitoSettings};
use leadflow_aws::bus::EventBridgeBus;
use leadflow_aws::cognito::PoolKeys;
use leadflow_aws::dead_letters::SqsDeadLetters;
use leadflow_aws::lambda::{init_tracing, ports_from_env_with_secret};
use leadflow_aws::metrics::{Emf, Metered};
use leadflow_aws::unwired::Unwired;
use leadflow_core::ports::Ports;
use tracing::{error, warn};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    init_tracing();
    // Publishes the erasure event; sends no email (an erasure finds no copy kept with SES) and
    // nothing to a stage queue (the dead letters below have their own SQS client).
    let ports = Arc::new(
        ports_from_env_with_secret::<Unwired, Unwired, EventBridgeBus>(&[], leadflow_app::config_files::sample).await?,
    );
    let public_url = ports.config().settings.public_url.clone();
    let sign_in = match CognitoSettings::from_env(|name| std::env::var(name).ok(), &public_url) {
        Some(settings) => {
            let keys = Arc::new(PoolKeys::new(&settings));
            SignIn::Cognito(Arc::new(Cognito::new(settings, keys)))
        }
        None => {
            warn!("no LEADFLOW_COGNITO_* settings: the console cannot sign anybody in");
            SignIn::NotSetUp
        }
    };
    // The dead letters: the three stage DLQs, and the failure reasons the stages record in the table.
    let dead_letters = Arc::new(SqsDeadLetters::from_env().await.inspect_err(|e| {
        error!(error = %e, "the function cannot start");
    })?);
    let app = leadflow_admin::router(Arc::clone(&ports), AdminAuth::Upstream)
        .merge(leadflow_admin::dead_letters::router(dead_letters, AdminAuth::Upstream))
        .merge(leadflow_admin::console::router(ports, sign_in));
    // Metered like every function, so a count added to shared code reached from here is kept.
    lambda_http::run(Metered::new(app, Emf::from_env())).await
}
