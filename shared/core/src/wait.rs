//! Waits and frequency caps: how long a campaign step waits, local to the lead, and how many
//! marketing emails a lead may get in a while. Values the settings and the campaigns both use.

use chrono::{DateTime, Datelike, Duration, NaiveTime, Utc, Weekday};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::local_time::{add_days, at_local};
use crate::zone::Zone;

/// A wait: a duration (`0s`, `90m`, `36h`, `2d`, `1w`), or `next weekday at HH:MM`, local to
/// the lead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    For(Duration),
    NextWeekdayAt(NaiveTime),
}

impl Wait {
    pub fn parse(s: &str) -> Result<Wait, String> {
        let s = s.trim();
        if let Some(rest) = s.strip_prefix("next weekday at ") {
            return NaiveTime::parse_from_str(rest.trim(), "%H:%M")
                .map(Wait::NextWeekdayAt)
                .map_err(|_| format!("`{s}`: write the time as HH:MM, e.g. `next weekday at 10:00`"));
        }
        let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (num, unit) = s.split_at(split);
        let n: i64 = num
            .parse()
            .map_err(|_| format!("`{s}` is not a wait like `2d`, `36h`, `90m` or `next weekday at 10:00`"))?;
        let secs = match unit.trim() {
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86_400,
            "w" => 7 * 86_400,
            other => return Err(format!("unknown unit `{other}` in `{s}`: use s, m, h, d or w")),
        };
        n.checked_mul(secs)
            .filter(|v| *v <= 366 * 86_400)
            .map(|v| Wait::For(Duration::seconds(v)))
            .ok_or_else(|| format!("`{s}` is longer than a year"))
    }

    /// When a wait that starts at `from` ends, for a lead in `tz`.
    pub fn after(&self, from: DateTime<Utc>, tz: &Zone) -> DateTime<Utc> {
        match *self {
            Wait::For(d) => from + d,
            Wait::NextWeekdayAt(time) => {
                let today = tz.wall_clock_or_utc(from).date();
                (1..=7)
                    .map(|n| add_days(today, n))
                    .find(|d| !matches!(d.weekday(), Weekday::Sat | Weekday::Sun))
                    .map_or(from, |d| at_local(tz, d, time))
            }
        }
    }
}

impl Serialize for Wait {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Wait::For(d) => s.serialize_str(&format!("{}s", d.num_seconds())),
            Wait::NextWeekdayAt(t) => s.serialize_str(&format!("next weekday at {}", t.format("%H:%M"))),
        }
    }
}

impl<'de> Deserialize<'de> for Wait {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Wait::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// At most `max` marketing emails per lead in any `per`, across campaigns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FrequencyCap {
    pub max: u32,
    pub per: Wait,
}
