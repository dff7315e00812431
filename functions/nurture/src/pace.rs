//! Spacing sends out to the mail provider's rate. SES refuses sends beyond the account's maximum
//! send rate (14 a second by default, 1 in the sandbox); a tick that sent a backlog as fast as it
//! could would be throttled, retried by the SDK and then left for a later tick, while route's
//! assignment emails, which share the quota, were throttled with it.
//!
//! On AWS the rate is read once per cold start from SES (`GetAccount`), and nurture takes only
//! [`DRIP_SHARE`] of it ([`drip_rate`]). Nurture runs with a reserved concurrency of 1, so this
//! one process's pacing is all of nurture's. The local stack does not pace.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// The part of the account's send rate the drips take. Route's assignment emails are the ones a
/// person is waiting for, and its two concurrent consumers send one email after another; a drip
/// that goes out a second later costs nothing.
pub const DRIP_SHARE: f64 = 0.5;

/// The rate taken when the account's cannot be read: SES's sandbox rate, which every account has
/// at least.
pub const FALLBACK_RATE: f64 = 1.0;

/// The fastest pace accepted (emails a second); SES's largest quotas are in the hundreds.
pub const MAX_RATE: f64 = 10_000.0;

/// The drips' rate, emails a second, for an account whose maximum send rate is `account` (`None`
/// when it could not be read, or not a positive number: then [`FALLBACK_RATE`]'s): [`DRIP_SHARE`]
/// of it, at most [`MAX_RATE`].
pub fn drip_rate(account: Option<f64>) -> f64 {
    let account = account.filter(|r| r.is_finite() && *r > 0.0).unwrap_or(FALLBACK_RATE);
    (account * DRIP_SHARE).min(MAX_RATE)
}

/// Hands out evenly spaced turns to send: at most `rate` a second, without bursts. Shared by
/// every tick of the process.
#[derive(Debug)]
pub struct Pacer {
    interval: Duration,
    /// The earliest instant the next turn may start.
    next: Mutex<Option<Instant>>,
}

impl Pacer {
    /// A pacer allowing `rate` sends a second; `None` for a rate that is not a positive number.
    pub fn per_second(rate: f64) -> Option<Self> {
        if !rate.is_finite() || rate <= 0.0 {
            return None;
        }
        let interval = Duration::from_secs_f64(1.0 / rate.min(MAX_RATE));
        Some(Self { interval, next: Mutex::new(None) })
    }

    /// The drips' pacer for an account whose maximum send rate is `account` ([`drip_rate`]).
    pub fn for_drips(account: Option<f64>) -> Self {
        // drip_rate answers a positive rate of at most MAX_RATE: 1 / rate is finite.
        Self { interval: Duration::from_secs_f64(1.0 / drip_rate(account)), next: Mutex::new(None) }
    }

    /// The time between two sends.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Waits for this caller's turn. Turns are given out in call order; the first one at once.
    pub async fn wait(&self) {
        let now = Instant::now();
        let turn = {
            // A panic while holding the lock cannot leave a half-written instant.
            let mut next = match self.next.lock() {
                Ok(guard) => guard,
                Err(poisoned) => poisoned.into_inner(),
            };
            let turn = next.map_or(now, |n| n.max(now));
            *next = Some(turn + self.interval);
            turn
        };
        tokio::time::sleep_until(turn).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_drips_take_half_the_account_rate_and_a_safe_one_when_it_is_unknown() {
        assert_eq!(drip_rate(Some(14.0)), 7.0);
        assert_eq!(drip_rate(Some(1.0)), 0.5);
        assert_eq!(drip_rate(None), 0.5);
        for nonsense in [0.0, -3.0, f64::NAN, f64::INFINITY] {
            assert_eq!(drip_rate(Some(nonsense)), 0.5, "{nonsense}");
        }
        assert_eq!(drip_rate(Some(1e9)), MAX_RATE);
    }

    #[test]
    fn only_a_positive_rate_makes_a_pacer() {
        assert!(Pacer::per_second(0.0).is_none());
        assert!(Pacer::per_second(-1.0).is_none());
        assert!(Pacer::per_second(f64::NAN).is_none());
        assert_eq!(Pacer::per_second(4.0).map(|p| p.interval()), Some(Duration::from_millis(250)));
        assert_eq!(Pacer::for_drips(Some(14.0)).interval(), Duration::from_secs_f64(1.0 / 7.0));
        assert_eq!(Pacer::for_drips(None).interval(), Duration::from_secs(2));
        assert_eq!(Pacer::for_drips(Some(f64::NAN)).interval(), Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn turns_are_spaced_by_the_interval_without_a_burst() {
        let pacer = Pacer::per_second(2.0).expect("a pacer");
        let start = Instant::now();
        let mut turns = Vec::new();
        for _ in 0..4 {
            pacer.wait().await;
            turns.push(start.elapsed());
        }
        assert_eq!(turns, [0, 500, 1000, 1500].map(Duration::from_millis));
        // After a pause longer than the interval the next turn is at once, and no burst is owed.
        tokio::time::sleep(Duration::from_secs(10)).await;
        let rested = Instant::now();
        pacer.wait().await;
        pacer.wait().await;
        assert_eq!(rested.elapsed(), Duration::from_millis(500));
    }
}
