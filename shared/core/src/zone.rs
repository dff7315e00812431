//! Time zones by their IANA names. The rules are the tz database compiled into every binary
//! (jiff's bundled copy, never the machine's `/usr/share/zoneinfo`), so that a Lambda function,
//! the local stack and the tests read the same rules and no file at run time. Instants stay
//! chrono's `DateTime<Utc>` everywhere else; only the offsets come from here.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;
use std::sync::LazyLock;

use chrono::{DateTime, Datelike, NaiveDateTime, TimeDelta, Timelike, Utc};
use jiff::Timestamp;
use jiff::tz::{AmbiguousOffset, TimeZone};

/// A time zone of the tz database, such as `Europe/Berlin`.
#[derive(Clone, PartialEq, Eq)]
pub struct Zone(TimeZone);

/// What a wall-clock time names in a zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WallClock {
    Single(DateTime<Utc>),
    /// The night clocks go back: the earlier instant, then the later.
    Repeated(DateTime<Utc>, DateTime<Utc>),
    /// The night clocks go forward: no instant shows this time.
    Skipped,
}

/// The name is not one the tz database knows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown time zone `{0}`: use an IANA name such as Europe/Berlin")]
pub struct UnknownZone(pub String);

impl Zone {
    pub const UTC: Zone = Zone(TimeZone::UTC);

    /// The zone of an IANA name, in any letter case (`europe/berlin` too), aliases included.
    pub fn named(name: &str) -> Option<Zone> {
        let tz = TimeZone::get(name).ok()?;
        // jiff answers `Etc/Unknown` with its placeholder for "no zone", which no one lives in.
        (!tz.is_unknown()).then_some(Zone(tz))
    }

    /// Every name the database knows, aliases (`US/Eastern`, `Etc/GMT+5`) included.
    pub fn names() -> Vec<String> {
        jiff::tz::db().available().map(|n| n.as_str().to_string()).collect()
    }

    /// The database's spelling of a zone name given in any case (`europe/berlin` →
    /// `Europe/Berlin`), found among the names alone: a caller that only checks names (validate)
    /// links no zone's rules.
    pub fn canonical_name(name: &str) -> Option<&'static str> {
        let names = &*NAMES_IN_ANY_CASE;
        let found = names.binary_search_by(|known| cmp_ignoring_case(known, name)).ok()?;
        names.get(found).map(String::as_str)
    }

    /// The name as the database spells it (`Europe/Berlin` for `europe/berlin`).
    pub fn name(&self) -> &str {
        self.0.iana_name().unwrap_or("UTC")
    }

    /// The zone's offset from UTC at `t`. Beyond the years the database can name (±9999) the
    /// offset at its last instant stands in.
    pub fn offset_at(&self, t: DateTime<Utc>) -> TimeDelta {
        let offset = self.0.to_offset(timestamp(t));
        TimeDelta::seconds(i64::from(offset.seconds()))
    }

    /// The wall clock at `t`; `None` at the very ends of chrono's time, where it cannot be written.
    pub fn wall_clock(&self, t: DateTime<Utc>) -> Option<NaiveDateTime> {
        t.naive_utc().checked_add_signed(self.offset_at(t))
    }

    /// The wall clock at `t`, or UTC's where [`Zone::wall_clock`] has none: for showing a time
    /// and for finding its day, where the ends of time need no more care.
    pub fn wall_clock_or_utc(&self, t: DateTime<Utc>) -> NaiveDateTime {
        self.wall_clock(t).unwrap_or_else(|| t.naive_utc())
    }

    /// The abbreviation the zone's clocks show at `t`: `CET`, `CEST`, `EST`, or an offset such as
    /// `-03` where the zone has no letters for it.
    pub fn abbreviation(&self, t: DateTime<Utc>) -> String {
        self.0.to_offset_info(timestamp(t)).abbreviation().to_string()
    }

    /// The instants a wall-clock time names here. A time outside the years the database can
    /// name is read with the offset of its nearest instant.
    pub fn instants_of(&self, local: NaiveDateTime) -> WallClock {
        let at = |offset: TimeDelta| local.checked_sub_signed(offset).map(|t| t.and_utc());
        let Some(civil) = civil(local) else {
            return at(self.offset_at(local.and_utc())).map_or(WallClock::Skipped, WallClock::Single);
        };
        let seconds = |o: jiff::tz::Offset| TimeDelta::seconds(i64::from(o.seconds()));
        let found = match self.0.to_ambiguous_timestamp(civil).offset() {
            AmbiguousOffset::Unambiguous { offset } => at(seconds(offset)).map(WallClock::Single),
            AmbiguousOffset::Gap { .. } => Some(WallClock::Skipped),
            AmbiguousOffset::Fold { before, after } => {
                at(seconds(before)).zip(at(seconds(after))).map(|(early, late)| WallClock::Repeated(early, late))
            }
        };
        found.unwrap_or(WallClock::Skipped)
    }
}

impl FromStr for Zone {
    type Err = UnknownZone;

    fn from_str(name: &str) -> Result<Zone, UnknownZone> {
        Zone::named(name).ok_or_else(|| UnknownZone(name.to_string()))
    }
}

impl fmt::Debug for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Zone({})", self.name())
    }
}

impl fmt::Display for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Every name, in the order `cmp_ignoring_case` gives, for [`Zone::canonical_name`].
static NAMES_IN_ANY_CASE: LazyLock<Vec<String>> = LazyLock::new(|| {
    let mut names = Zone::names();
    // The database keeps UTC apart from its files.
    names.push("UTC".to_string());
    names.sort_unstable_by(|a, b| cmp_ignoring_case(a, b));
    names.dedup_by(|a, b| cmp_ignoring_case(a, b) == Ordering::Equal);
    names
});

fn cmp_ignoring_case(a: &str, b: &str) -> Ordering {
    a.bytes().map(|c| c.to_ascii_lowercase()).cmp(b.bytes().map(|c| c.to_ascii_lowercase()))
}

/// `t` as jiff's instant, clamped to the years it can name; offsets need no fraction of a second.
fn timestamp(t: DateTime<Utc>) -> Timestamp {
    let second = t.timestamp().clamp(Timestamp::MIN.as_second(), Timestamp::MAX.as_second());
    Timestamp::from_second(second).unwrap_or(Timestamp::UNIX_EPOCH)
}

/// `local` as jiff's civil time, or `None` outside its years.
fn civil(local: NaiveDateTime) -> Option<jiff::civil::DateTime> {
    let year = i16::try_from(local.year()).ok()?;
    // chrono's months, days and clock fields always fit.
    let small = |v: u32| i8::try_from(v).unwrap_or(i8::MAX);
    let nano = i32::try_from(local.nanosecond().min(999_999_999)).unwrap_or(0);
    jiff::civil::DateTime::new(
        year,
        small(local.month()),
        small(local.day()),
        small(local.hour()),
        small(local.minute()),
        small(local.second()),
        nano,
    )
    .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{NaiveDate, TimeZone as _};

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).single().unwrap_or_default()
    }

    fn local(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(y, mo, d).and_then(|d| d.and_hms_opt(h, mi, 0)).unwrap_or_default()
    }

    #[test]
    fn names_are_read_in_any_case_and_spelt_as_the_database_does() {
        assert_eq!(Zone::named("europe/berlin").map(|z| z.name().to_string()), Some("Europe/Berlin".into()));
        assert_eq!(Zone::named("UTC"), Some(Zone::UTC));
        assert_eq!(Zone::named("US/Eastern").map(|z| z.name().to_string()), Some("US/Eastern".into()));
        for bad in ["", "Mars/Olympus_Mons", "Etc/Unknown", "Europe/Berlin/", "+01:00"] {
            assert!(Zone::named(bad).is_none(), "{bad}");
        }
        assert!("Nowhere".parse::<Zone>().is_err_and(|e| e.to_string().contains("Nowhere")));
        let names = Zone::names();
        assert!(names.len() > 500, "{}", names.len());
        assert!(names.iter().all(|n| Zone::named(n).is_some()));
        for name in names.iter().map(String::as_str).chain(["UTC"]) {
            assert_eq!(Zone::canonical_name(&name.to_ascii_uppercase()), Some(name));
            assert_eq!(Zone::named(name).map(|z| z.name().to_string()).as_deref(), Some(name));
        }
        for bad in ["", "Mars/Olympus_Mons", "Etc/Unknown", "Europe/Berlin/", "Europe/Berli"] {
            assert_eq!(Zone::canonical_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn offsets_follow_daylight_saving_time() {
        let berlin = Zone::named("Europe/Berlin").unwrap_or(Zone::UTC);
        assert_eq!(berlin.offset_at(utc(2026, 1, 15, 12, 0)), TimeDelta::hours(1));
        assert_eq!(berlin.offset_at(utc(2026, 7, 15, 12, 0)), TimeDelta::hours(2));
        assert_eq!(berlin.abbreviation(utc(2026, 1, 15, 12, 0)), "CET");
        assert_eq!(berlin.abbreviation(utc(2026, 7, 15, 12, 0)), "CEST");
        // Clocks go forward at 01:00 UTC on the last Sunday of March: 02:00 becomes 03:00.
        assert_eq!(berlin.wall_clock(utc(2026, 3, 29, 0, 59)), Some(local(2026, 3, 29, 1, 59)));
        assert_eq!(berlin.wall_clock(utc(2026, 3, 29, 1, 0)), Some(local(2026, 3, 29, 3, 0)));
        let kolkata = Zone::named("Asia/Kolkata").unwrap_or(Zone::UTC);
        assert_eq!(kolkata.offset_at(utc(2026, 1, 15, 12, 0)), TimeDelta::minutes(330));
        // Far in the future the zone's rule still applies, summer and winter.
        assert_eq!(berlin.offset_at(utc(2090, 7, 1, 0, 0)), TimeDelta::hours(2));
        assert_eq!(berlin.offset_at(utc(2090, 12, 1, 0, 0)), TimeDelta::hours(1));
    }

    #[test]
    fn a_wall_clock_time_names_one_instant_none_or_two() {
        let berlin = Zone::named("Europe/Berlin").unwrap_or(Zone::UTC);
        assert_eq!(berlin.instants_of(local(2026, 6, 1, 9, 0)), WallClock::Single(utc(2026, 6, 1, 7, 0)));
        assert_eq!(berlin.instants_of(local(2026, 3, 29, 2, 30)), WallClock::Skipped);
        assert_eq!(
            berlin.instants_of(local(2026, 10, 25, 2, 30)),
            WallClock::Repeated(utc(2026, 10, 25, 0, 30), utc(2026, 10, 25, 1, 30))
        );
    }

    #[test]
    fn the_ends_of_time_answer_rather_than_fail() {
        let berlin = Zone::named("Europe/Berlin").unwrap_or(Zone::UTC);
        assert!(berlin.wall_clock(DateTime::<Utc>::MAX_UTC).is_none());
        assert!(berlin.wall_clock(DateTime::<Utc>::MIN_UTC).is_some());
        let far = local(100_000, 6, 1, 12, 0);
        assert!(matches!(berlin.instants_of(far), WallClock::Single(_)));
        // Berlin's first offset is ahead of UTC: the first wall-clock time has no instant.
        assert_eq!(berlin.instants_of(NaiveDateTime::MIN), WallClock::Skipped);
        let _ = berlin.abbreviation(DateTime::<Utc>::MAX_UTC);
    }
}
