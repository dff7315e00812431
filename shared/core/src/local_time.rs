//! Time zones at the edges: which zone a lead lives in, and instants given as local times.
//! Storage is UTC everywhere; these functions turn "Monday 09:00 in the lead's zone" into an
//! instant, across daylight-saving changes.

use foldhash::{HashMap, HashMapExt};
use std::sync::LazyLock;

use chrono::{DateTime, Days, NaiveDate, NaiveDateTime, NaiveTime, Utc};

use crate::model::Lead;
use crate::zone::{WallClock, Zone};

/// IANA's `zone1970.tab`: for every country, the zones its clocks have followed since 1970.
/// Vendored (see the note at its top) so that the core reads no file at run time.
const ZONE1970: &str = include_str!("../data/zone1970.tab");

/// Countries whose first zone in `zone1970.tab` is not where most of their people live: the
/// table orders a country's zones by geography first (Canada east to west), population second.
const PRINCIPAL: &[(&str, &str)] = &[
    // The first listed: Lord Howe Island.
    ("AU", "Australia/Sydney"),
    // Fernando de Noronha.
    ("BR", "America/Sao_Paulo"),
    // Newfoundland.
    ("CA", "America/Toronto"),
    // The east (Central Africa Time); Kinshasa, the largest city, keeps West Africa Time.
    ("CD", "Africa/Kinshasa"),
    // Sabah and Sarawak; the same clock as the peninsula since 1982, where most people live.
    ("MY", "Asia/Kuala_Lumpur"),
    // Kaliningrad.
    ("RU", "Europe/Moscow"),
];

/// Country code to zone: the first zone `zone1970.tab` lists with the country first (the zone's
/// principal place is in it), else the first that lists it at all (Denmark shares Berlin's
/// row), else nothing; [`PRINCIPAL`] over all.
static COUNTRY_ZONES: LazyLock<HashMap<&'static str, Zone>> = LazyLock::new(|| {
    let mut zones: HashMap<&'static str, (bool, Zone)> = HashMap::new();
    let rows = ZONE1970.lines().filter(|l| !l.starts_with('#')).map(|l| l.split('\t').collect::<Vec<_>>());
    for row in rows {
        let (Some(codes), Some(zone)) = (row.first(), row.get(2)) else { continue };
        // A zone the database does not know is skipped rather than fail; a test keeps the two in step.
        let Some(tz) = Zone::named(zone) else { continue };
        for (i, code) in codes.split(',').enumerate() {
            let principal = i == 0;
            if zones.get(code).is_none_or(|(had_principal, _)| principal && !had_principal) {
                zones.insert(code, (principal, tz.clone()));
            }
        }
    }
    let mut zones: HashMap<&'static str, Zone> = zones.into_iter().map(|(code, (_, tz))| (code, tz)).collect();
    for (code, zone) in PRINCIPAL {
        if let Some(tz) = Zone::named(zone) {
            zones.insert(code, tz);
        }
    }
    zones
});

/// The zone most of a country's people live in, for an ISO 3166-1 alpha-2 code: a guess, used
/// only when the lead gave no time zone (the lead's own `time_zone` field always wins).
pub fn country_zone(country: &str) -> Option<Zone> {
    let code = country.trim().to_ascii_uppercase();
    COUNTRY_ZONES.get(code.as_str()).cloned()
}

/// Where a lead's time zone came from, for explanations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZoneSource {
    Lead,
    Country,
    Phone,
    Default,
}

/// The lead's time zone: its explicit field, else its country's, else its phone number's
/// country's, else `default`.
pub fn lead_zone(lead: &Lead, default: &Zone) -> (Zone, ZoneSource) {
    let c = &lead.contact;
    if let Some(tz) = c.time_zone.as_deref().and_then(Zone::named) {
        return (tz, ZoneSource::Lead);
    }
    if let Some(tz) = c.country.as_deref().and_then(country_zone) {
        return (tz, ZoneSource::Country);
    }
    if let Some(tz) = c.phone_country.as_deref().and_then(country_zone) {
        return (tz, ZoneSource::Phone);
    }
    (default.clone(), ZoneSource::Default)
}

/// The instant of a local wall-clock time. A time skipped by a daylight-saving change (02:30 on
/// the night clocks go forward) becomes the first instant after the gap; a repeated one (the
/// night clocks go back) the earlier of the two.
pub fn at_local(tz: &Zone, date: NaiveDate, time: NaiveTime) -> DateTime<Utc> {
    let naive = NaiveDateTime::new(date, time);
    let mut probe = naive;
    // A gap is at most a few hours; step forward a minute at a time until the wall clock exists.
    for _ in 0..(24 * 60) {
        match tz.instants_of(probe) {
            WallClock::Single(t) | WallClock::Repeated(t, _) => return t,
            WallClock::Skipped => match probe.checked_add_signed(chrono::Duration::minutes(1)) {
                Some(next) => probe = next,
                None => break,
            },
        }
    }
    // No zone skips a whole day; read it as UTC rather than fail.
    naive.and_utc()
}

/// The local date `days` after `date`, saturating at the end of time.
pub fn add_days(date: NaiveDate, days: u64) -> NaiveDate {
    date.checked_add_days(Days::new(days)).unwrap_or(date)
}

/// A moment as a person reads it in `tz`: "Tuesday 3 March 2026, 14:05 CET". An unknown zone
/// name reads as UTC, and says so.
pub fn in_words(at: DateTime<Utc>, zone: &str) -> String {
    let tz = Zone::named(zone).unwrap_or(Zone::UTC);
    let wall = tz.wall_clock_or_utc(at);
    format!("{} {}", wall.format("%A %-d %B %Y, %H:%M"), tz.abbreviation(at))
}

/// How long until `due` from `now`, in the largest units that matter: "3 h 12 min left",
/// "2 days 4 h left", "overdue by 20 min".
pub fn time_left(due: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let span = due - now;
    let overdue = span < chrono::Duration::zero();
    let minutes = span.num_minutes().unsigned_abs();
    let (days, hours, mins) = (minutes / (24 * 60), (minutes / 60) % 24, minutes % 60);
    let amount = if days > 0 {
        let unit = if days == 1 { "day" } else { "days" };
        if hours > 0 { format!("{days} {unit} {hours} h") } else { format!("{days} {unit}") }
    } else if hours > 0 {
        if mins > 0 { format!("{hours} h {mins} min") } else { format!("{hours} h") }
    } else {
        format!("{mins} min")
    };
    if overdue { format!("overdue by {amount}") } else { format!("{amount} left") }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zone(country: &str) -> Option<String> {
        country_zone(country).map(|tz| tz.name().to_string())
    }

    #[test]
    fn every_zone_of_the_table_is_one_the_database_knows() {
        let rows = ZONE1970.lines().filter(|l| !l.starts_with('#'));
        let unknown: Vec<_> = rows.filter_map(|l| l.split('\t').nth(2)).filter(|z| Zone::named(z).is_none()).collect();
        assert!(unknown.is_empty(), "update jiff's database or the table together: {unknown:?}");
        for (code, zone) in PRINCIPAL {
            assert!(Zone::named(zone).is_some(), "{code}: {zone}");
        }
        // ISO 3166-1 has 249 codes; the table covers all but the uninhabited few.
        assert!(COUNTRY_ZONES.len() >= 240, "{}", COUNTRY_ZONES.len());
    }

    #[test]
    fn a_country_gets_its_principal_zone() {
        let expected = [
            ("US", Some("America/New_York")),
            ("gb", Some("Europe/London")),
            (" IN ", Some("Asia/Kolkata")),
            // Listed first with Germany, in its own row, not in Zurich's (Büsingen).
            ("DE", Some("Europe/Berlin")),
            // No row of its own: Berlin's, which it shares.
            ("DK", Some("Europe/Berlin")),
            ("CA", Some("America/Toronto")),
            ("AU", Some("Australia/Sydney")),
            ("BR", Some("America/Sao_Paulo")),
            ("XX", None),
            ("", None),
        ];
        for (country, name) in expected {
            assert_eq!(zone(country).as_deref(), name, "{country:?}");
        }
    }

    #[test]
    fn countries_the_old_hand_written_table_left_out_resolve() {
        let expected = [
            ("RU", "Europe/Moscow"),
            ("MA", "Africa/Casablanca"),
            ("KZ", "Asia/Almaty"),
            ("uy", "America/Montevideo"),
            ("LI", "Europe/Zurich"),
            ("CD", "Africa/Kinshasa"),
        ];
        for (country, name) in expected {
            assert_eq!(zone(country).as_deref(), Some(name), "{country}");
        }
    }

    /// The hand-written table this one replaced (63 countries). Some names changed (Denmark is
    /// now Berlin's zone, the same clock since 1970); no clock may.
    const OLD: &str = "AE Asia/Dubai,AR America/Argentina/Buenos_Aires,AT Europe/Vienna,\
        AU Australia/Sydney,BD Asia/Dhaka,BE Europe/Brussels,BG Europe/Sofia,BR America/Sao_Paulo,\
        CA America/Toronto,CH Europe/Zurich,CL America/Santiago,CN Asia/Shanghai,CO America/Bogota,\
        CZ Europe/Prague,DE Europe/Berlin,DK Europe/Copenhagen,EE Europe/Tallinn,EG Africa/Cairo,\
        ES Europe/Madrid,FI Europe/Helsinki,FR Europe/Paris,GB Europe/London,GR Europe/Athens,\
        HK Asia/Hong_Kong,HR Europe/Zagreb,HU Europe/Budapest,ID Asia/Jakarta,IE Europe/Dublin,\
        IL Asia/Jerusalem,IN Asia/Kolkata,IS Atlantic/Reykjavik,IT Europe/Rome,JP Asia/Tokyo,\
        KE Africa/Nairobi,KR Asia/Seoul,LT Europe/Vilnius,LU Europe/Luxembourg,LV Europe/Riga,\
        MX America/Mexico_City,MY Asia/Kuala_Lumpur,NG Africa/Lagos,NL Europe/Amsterdam,\
        NO Europe/Oslo,NZ Pacific/Auckland,PE America/Lima,PH Asia/Manila,PK Asia/Karachi,\
        PL Europe/Warsaw,PT Europe/Lisbon,RO Europe/Bucharest,RS Europe/Belgrade,SA Asia/Riyadh,\
        SE Europe/Stockholm,SG Asia/Singapore,SI Europe/Ljubljana,SK Europe/Bratislava,\
        TH Asia/Bangkok,TR Europe/Istanbul,TW Asia/Taipei,UA Europe/Kyiv,US America/New_York,\
        VN Asia/Ho_Chi_Minh,ZA Africa/Johannesburg";

    #[test]
    fn every_country_of_the_old_table_keeps_its_clock() {
        use chrono::TimeZone as _;
        let old: Vec<(&str, Zone)> = OLD
            .split(',')
            .filter_map(|pair| pair.trim().split_once(' '))
            .filter_map(|(code, zone)| Some((code, Zone::named(zone)?)))
            .collect();
        assert_eq!(old.len(), 63);
        let start = Utc.with_ymd_and_hms(2000, 1, 1, 12, 0, 0).single().unwrap_or_default();
        for (code, was) in old {
            let now = country_zone(code).unwrap_or(Zone::UTC);
            // Every day at noon UTC for 36 years: a change of clock on another date shows.
            for day in 0..(36 * 366) {
                let t = start + chrono::Duration::days(day);
                let (a, b) = (was.offset_at(t), now.offset_at(t));
                assert_eq!(a, b, "{code}: {was} and {now} differ on {t}");
            }
        }
    }
}
