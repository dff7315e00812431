use std::time::Instant;

use chrono::{DateTime, TimeDelta, Utc};
use leadflow_core::ports::Clock;

/// System time, or for demos system time running `factor` times faster from the moment the
/// clock was made, so that a week of drip steps plays out in minutes.
#[derive(Debug, Clone)]
pub struct SystemClock {
    accelerated: Option<Accelerated>,
}

#[derive(Debug, Clone)]
struct Accelerated {
    started_at: DateTime<Utc>,
    // Elapsed time comes from the monotonic clock: a wall-clock step (NTP) is not multiplied.
    started: Instant,
    factor: f64,
}

impl SystemClock {
    pub fn new() -> Self {
        Self { accelerated: None }
    }

    /// Time runs `factor`× faster from now on. A factor that is not a positive finite number
    /// means real time.
    pub fn accelerated(factor: f64) -> Self {
        if !(factor.is_finite() && factor > 0.0) || factor == 1.0 {
            return Self::new();
        }
        Self { accelerated: Some(Accelerated { started_at: Utc::now(), started: Instant::now(), factor }) }
    }

    pub fn factor(&self) -> f64 {
        self.accelerated.as_ref().map_or(1.0, |a| a.factor)
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        let Some(a) = &self.accelerated else {
            return Utc::now();
        };
        // `as` from f64 saturates, and the sum is checked: a silly factor reaches the end of
        // time rather than panicking.
        let scaled = (a.started.elapsed().as_nanos() as f64 * a.factor) as i64;
        a.started_at.checked_add_signed(TimeDelta::nanoseconds(scaled)).unwrap_or(DateTime::<Utc>::MAX_UTC)
    }
}
