//! Working through a backlog: ticks one after another while each finds more due than it could
//! take, on Lambda (one invocation's deadline for all of them) and in the local stack (a budget
//! per tick) alike.

use std::time::Duration;

use leadflow_app::{Deadline, StageError, within};
use leadflow_core::ports::Ports;
use serde::Serialize;

use crate::{Pacer, TICK_LIMIT, TickReport, tick_paced};

/// How long the ticks of a run may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TickBudget {
    /// Every tick keeps to the deadline the caller runs under (a Lambda invocation's, see
    /// [`leadflow_app::within`]): a tick cut short by it ends the run.
    Shared,
    /// Each tick has this long of its own: a tick cut short by it is followed by another.
    Each(Duration),
}

/// What a run of ticks did: how many ran and their figures summed.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct Drained {
    pub ticks: u32,
    pub total: TickReport,
}

/// Whether the tick leaves work due now for another at once: it filled its limit and moved
/// something (a full tick that moved nothing, everything throttled say, would only repeat
/// itself), or, with a budget of its own, it was cut short.
fn more_due(report: &TickReport, budget: TickBudget) -> bool {
    let backlog = report.due >= TICK_LIMIT && report.sent + report.stopped + report.rejected > 0;
    match budget {
        TickBudget::Shared => backlog && report.unstarted == 0,
        TickBudget::Each(_) => backlog || report.unstarted > 0,
    }
}

/// Ticks while more is due now and `go_on()` (asked before every tick) says so. A tick's error
/// ends the run: the caller reports it, and the next scheduled run tries again.
pub async fn drain<P: Ports>(
    ports: &P,
    pacer: Option<&Pacer>,
    budget: TickBudget,
    go_on: impl Fn() -> bool,
) -> Result<Drained, StageError> {
    let mut drained = Drained::default();
    while go_on() {
        let tick = tick_paced(ports, TICK_LIMIT, pacer);
        let report = match budget {
            TickBudget::Shared => tick.await?,
            TickBudget::Each(limit) => within(Deadline::budget(limit, Duration::ZERO), tick).await?,
        };
        drained.ticks += 1;
        drained.total.add(&report);
        if !more_due(&report, budget) {
            break;
        }
    }
    Ok(drained)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(due: usize, sent: usize, unstarted: usize) -> TickReport {
        TickReport { due, sent, unstarted, ..TickReport::default() }
    }

    #[test]
    fn a_full_tick_that_moved_something_is_followed_by_another() {
        for budget in [TickBudget::Shared, TickBudget::Each(Duration::from_secs(10))] {
            assert!(more_due(&report(TICK_LIMIT, 1, 0), budget), "{budget:?}");
            assert!(!more_due(&report(TICK_LIMIT, 0, 0), budget), "nothing moved: {budget:?}");
            assert!(!more_due(&report(TICK_LIMIT - 1, 10, 0), budget), "not full: {budget:?}");
        }
    }

    #[test]
    fn a_tick_cut_short_ends_a_shared_deadline_and_not_a_budget_of_its_own() {
        assert!(!more_due(&report(TICK_LIMIT, 5, 3), TickBudget::Shared));
        assert!(more_due(&report(20, 5, 3), TickBudget::Each(Duration::from_secs(10))));
    }
}
