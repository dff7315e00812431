//! The nurture function on Lambda, invoked by the EventBridge schedule every minute.
//!
//! The event is taken as any JSON: nothing in it is used, and an EventBridge Scheduler target
//! or a hand-made test invocation sends something other than a rule's "Scheduled Event".

use std::time::Duration;

use lambda_runtime::{LambdaEvent, service_fn};
use leadflow_aws::lambda::{AwsPorts, init_tracing, ports_from_env_with_secret};
use leadflow_aws::metrics::Emf;
use leadflow_core::ports::Stage;
use leadflow_nurture::pace::{Pacer, drip_rate};
use leadflow_nurture::{TICK_LIMIT, TickReport};
use leadflow_stage::{Deadline, within};
use serde_json::{Value, json};
use tracing::{info, warn};

/// Kept free before the invocation's deadline to answer and flush the logs. A tick also keeps
/// the longest step it has seen free, so a step started is a step finished.
const SAFETY_MARGIN: Duration = Duration::from_secs(3);

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    init_tracing();
    // Drip emails carry signed unsubscribe links: no secret, no start. Leads whose SLA ran out
    // go to the route queue, whose URL must then be given.
    let ports = ports_from_env_with_secret(&[Stage::Route]).await?;
    let pacer = pacer(&ports).await;
    let emf = Emf::from_env();
    // Boxed: inside the runtime's futures, the tick's future is nested past the compiler's type
    // layout depth limit.
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| Box::pin(emf.metered(run_ticks(&ports, &pacer, event)))))
        .await
}

/// The drips' pace, from the account's SES send rate, read once per cold start.
async fn pacer(ports: &AwsPorts) -> Pacer {
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
async fn run_ticks(ports: &AwsPorts, pacer: &Pacer, event: LambdaEvent<Value>) -> Result<Value, lambda_runtime::Error> {
    let deadline = Deadline::invocation(event.context.deadline(), SAFETY_MARGIN);
    within(deadline, async {
        let mut total = TickReport::default();
        let mut ticks = 0u32;
        loop {
            let report = leadflow_nurture::tick_paced(ports, TICK_LIMIT, Some(pacer)).await?;
            ticks += 1;
            total.add(&report);
            // A full tick that moved nothing (everything throttled, say) would only repeat itself.
            let backlog = report.due >= TICK_LIMIT && report.sent + report.stopped + report.rejected > 0;
            if !backlog || report.unstarted > 0 || !deadline.allows(Duration::ZERO) {
                break;
            }
        }
        let summary = json!({ "ticks": ticks, "total": total });
        info!(%summary, "nurture run done");
        Ok(summary)
    })
    .await
}
