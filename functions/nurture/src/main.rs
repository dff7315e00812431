//! The nurture function on Lambda, invoked by the EventBridge schedule every minute.
//!
//! The event is taken as any JSON: nothing in it is used, and an EventBridge Scheduler target
//! or a hand-made test invocation sends something other than a rule's "Scheduled Event".

use std::time::{Duration, Instant, SystemTime};

use lambda_runtime::{LambdaEvent, service_fn};
use leadflow_aws::lambda::{AwsPorts, Budget, init_tracing, ports_from_env_with_secret};
use leadflow_nurture::{TICK_LIMIT, TickReport};
use serde_json::{Value, json};
use tracing::info;

/// Kept free before the invocation's deadline to answer and flush the logs.
const SAFETY_MARGIN: Duration = Duration::from_secs(5);

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    init_tracing();
    // Drip emails carry signed unsubscribe links: no secret, no start.
    let ports = ports_from_env_with_secret(&[]).await?;
    // Boxed: inside the runtime's futures, the tick's future is nested past the compiler's type
    // layout depth limit.
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| Box::pin(run_ticks(&ports, event)))).await
}

/// Ticks while a tick fills its limit (a backlog) and another tick fits in the time left. A tick
/// error fails the invocation, so that Lambda retries it as it retries any asynchronous one.
async fn run_ticks(ports: &AwsPorts, event: LambdaEvent<Value>) -> Result<Value, lambda_runtime::Error> {
    let budget = Budget::new(event.context.deadline(), SAFETY_MARGIN);
    let mut total = TickReport::default();
    let mut ticks = 0u32;
    loop {
        let started = Instant::now();
        let report = leadflow_nurture::tick(ports, TICK_LIMIT).await?;
        ticks += 1;
        total.add(&report);
        // A full tick that moved nothing (everything throttled, say) would only repeat itself.
        let backlog = report.due >= TICK_LIMIT && report.sent + report.stopped > 0;
        if !backlog || !budget.fits(SystemTime::now(), started.elapsed()) {
            break;
        }
    }
    let summary = json!({ "ticks": ticks, "total": total });
    info!(%summary, "nurture run done");
    Ok(summary)
}
