//! The nurture function on Lambda, invoked by the EventBridge schedule every minute.
//!
//! The event is taken as any JSON: nothing in it is used, and an EventBridge Scheduler target
//! or a hand-made test invocation sends something other than a rule's "Scheduled Event".

use std::time::Duration;

use lambda_runtime::{LambdaEvent, service_fn};
use leadflow_app::{Deadline, within};
use leadflow_aws::lambda::{FunctionPorts, init_tracing, ports_from_env_with_secret};
use leadflow_aws::mailer::SesMailer;
use leadflow_aws::metrics::Emf;
use leadflow_aws::queue::SqsQueue;
use leadflow_aws::unwired::Unwired;
use leadflow_core::ports::Stage;
use leadflow_nurture::drain::{TickBudget, drain};
use leadflow_nurture::pace::{Pacer, drip_rate};
use serde_json::{Value, json};
use tracing::{info, warn};

/// Kept free before the invocation's deadline to answer and flush the logs. A tick also keeps
/// the longest step it has seen free, so a step started is a step finished.
const SAFETY_MARGIN: Duration = Duration::from_secs(3);

/// Drips by email and hands expired SLAs to the route queue; publishes no event.
type Ports = FunctionPorts<SqsQueue, SesMailer, Unwired>;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    init_tracing();
    // Drip emails carry signed unsubscribe links: no secret, no start. Leads whose SLA ran out
    // go to the route queue, whose URL must then be given.
    let ports: Ports = ports_from_env_with_secret(&[Stage::Route], leadflow_app::config_files::sample_json).await?;
    let pacer = pacer(&ports).await;
    let emf = Emf::from_env();
    // Boxed: inside the runtime's futures, the tick's future is nested past the compiler's type
    // layout depth limit.
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| Box::pin(emf.metered(run_ticks(&ports, &pacer, event)))))
        .await
}

/// The drips' pace, from the account's SES send rate, read once per cold start.
async fn pacer(ports: &Ports) -> Pacer {
    let account = match ports.mailer.max_send_rate().await {
        Ok(rate) => Some(rate),
        Err(e) => {
            warn!(error = %e, rate = drip_rate(None), "the SES send rate is unknown; drips go at a safe pace");
            None
        }
    };
    info!(account_rate = account, rate = drip_rate(account), "drips paced");
    Pacer::for_drips(account)
}

/// Ticks while a tick fills its limit (a backlog) and time is left; every tick keeps to the
/// invocation's deadline. A tick error fails the invocation: it shows in the Errors alarm and
/// the function's failure destination, and the next minute's tick tries again.
async fn run_ticks(ports: &Ports, pacer: &Pacer, event: LambdaEvent<Value>) -> Result<Value, lambda_runtime::Error> {
    let deadline = Deadline::invocation(event.context.deadline(), SAFETY_MARGIN);
    let run = drain(ports, Some(pacer), TickBudget::Shared, || deadline.allows(Duration::ZERO));
    let drained = within(deadline, run).await?;
    let summary = json!(drained);
    info!(%summary, "nurture run done");
    Ok(summary)
}
