//! Counting what the pipeline does, for dashboards and alarms: leads through the funnel, emails,
//! opt-outs, dead letters. Handlers call [`count`] where the thing has become true (after the
//! store write, after the provider took the email); the Lambda glue runs each invocation under
//! [`counted`] and writes the counts out in CloudWatch's format (`leadflow_aws::metrics`).
//!
//! Outside [`counted`] a count goes nowhere: the local stack and tests that do not look at
//! counts need nothing. The counts live in a task-local, so work moved to another task with
//! `tokio::spawn` is not counted; the handlers do not spawn.
//!
//! Counts carry no lead, address or rep: a metric is a number, and its identity is its name.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Every metric Leadflow publishes. The names are CloudWatch metric names: the template's
/// alarms and dashboard refer to them, and a test holds the two together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Metric {
    /// Submissions capture accepted and queued for validation.
    LeadsCaptured,
    /// New valid leads validation stored (repeats merged into a known lead are not new).
    LeadsValidated,
    /// Leads route gave an owner for the first time.
    LeadsAssigned,
    /// Emails the mail provider accepted: assignment, drip and confirmation emails.
    EmailsSent,
    /// Emails that will never go out: refused for good by the provider, or a drip step that
    /// cannot be rendered.
    EmailsRejected,
    /// Sends refused for now (throttling, an account-level refusal, the provider unreachable):
    /// the email is tried again later.
    EmailsRetried,
    /// Drip steps sent.
    DripsSent,
    /// Addresses newly put on the suppression list by their owner's unsubscribe.
    OptOuts,
    /// Queue messages that failed on their last allowed receive: the queue moves them to its
    /// dead-letter queue.
    DeadLettered,
    /// Queue messages dropped because no retry can fix them: a malformed body, a campaign
    /// version that cannot be used. Each is logged with its reason and message id.
    MessagesDropped,
}

impl Metric {
    pub const ALL: [Metric; 10] = [
        Metric::LeadsCaptured,
        Metric::LeadsValidated,
        Metric::LeadsAssigned,
        Metric::EmailsSent,
        Metric::EmailsRejected,
        Metric::EmailsRetried,
        Metric::DripsSent,
        Metric::OptOuts,
        Metric::DeadLettered,
        Metric::MessagesDropped,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Metric::LeadsCaptured => "LeadsCaptured",
            Metric::LeadsValidated => "LeadsValidated",
            Metric::LeadsAssigned => "LeadsAssigned",
            Metric::EmailsSent => "EmailsSent",
            Metric::EmailsRejected => "EmailsRejected",
            Metric::EmailsRetried => "EmailsRetried",
            Metric::DripsSent => "DripsSent",
            Metric::OptOuts => "OptOuts",
            Metric::DeadLettered => "DeadLettered",
            Metric::MessagesDropped => "MessagesDropped",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// What one scope counted.
#[derive(Debug, Default)]
pub struct Counts([AtomicU64; Metric::ALL.len()]);

impl Counts {
    pub fn get(&self, metric: Metric) -> u64 {
        self.0[metric.index()].load(Ordering::Relaxed)
    }

    /// The metrics counted at least once, with their counts, in [`Metric::ALL`]'s order.
    pub fn nonzero(&self) -> Vec<(Metric, u64)> {
        Metric::ALL.iter().map(|&m| (m, self.get(m))).filter(|&(_, n)| n > 0).collect()
    }

    fn add(&self, metric: Metric, n: u64) {
        self.0[metric.index()].fetch_add(n, Ordering::Relaxed);
    }
}

tokio::task_local! {
    static COUNTS: Arc<Counts>;
}

/// Runs `work`, collecting what it [`count`]s; answers its output and the counts. A scope
/// inside another adds its counts to the outer one's when it ends, so a test can read what a
/// whole metered invocation counted.
pub async fn counted<F: Future>(work: F) -> (F::Output, Arc<Counts>) {
    let counts = Arc::new(Counts::default());
    let output = COUNTS.scope(Arc::clone(&counts), work).await;
    for (metric, n) in counts.nonzero() {
        count(metric, n);
    }
    (output, counts)
}

/// Adds `n` to `metric` in the current [`counted`] scope; nothing outside one.
pub fn count(metric: Metric, n: u64) {
    if n > 0 {
        // Err only outside a scope, where counts are not wanted.
        let _ = COUNTS.try_with(|c| c.add(metric, n));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_is_listed_once_under_its_own_name() {
        let mut names: Vec<&str> = Metric::ALL.iter().map(|m| m.name()).collect();
        for (i, m) in Metric::ALL.iter().enumerate() {
            assert_eq!(m.index(), i, "{m:?} sits at its own index");
            assert_eq!(format!("{m:?}"), m.name());
        }
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Metric::ALL.len());
    }

    #[tokio::test]
    async fn counts_reach_their_scope_and_the_enclosing_ones() {
        count(Metric::OptOuts, 1);
        let ((), outer) = counted(async {
            count(Metric::LeadsCaptured, 2);
            count(Metric::EmailsSent, 0);
            let ((), inner) = counted(async { count(Metric::DripsSent, 1) }).await;
            assert_eq!(inner.nonzero(), [(Metric::DripsSent, 1)]);
            count(Metric::LeadsCaptured, 1);
        })
        .await;
        assert_eq!(outer.nonzero(), [(Metric::LeadsCaptured, 3), (Metric::DripsSent, 1)], "the inner scope's too");
        let ((), fresh) = counted(async {}).await;
        assert!(fresh.nonzero().is_empty(), "nothing counted outside a scope is kept");
    }
}
