//! Time zones at the edges: which zone a lead lives in, and instants given as local times.
//! Storage is UTC everywhere; these functions turn "Monday 09:00 in the lead's zone" into an
//! instant, across daylight-saving changes.

use chrono::{DateTime, Days, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

use crate::model::Lead;

/// The zone most of a country's people live in. Countries spanning several zones get their most
/// populous one: a guess, used only when the lead gave no time zone; the lead's own `time_zone`
/// field always wins.
const COUNTRY_ZONES: &[(&str, &str)] = &[
    ("AE", "Asia/Dubai"),
    ("AR", "America/Argentina/Buenos_Aires"),
    ("AT", "Europe/Vienna"),
    ("AU", "Australia/Sydney"),
    ("BD", "Asia/Dhaka"),
    ("BE", "Europe/Brussels"),
    ("BG", "Europe/Sofia"),
    ("BR", "America/Sao_Paulo"),
    ("CA", "America/Toronto"),
    ("CH", "Europe/Zurich"),
    ("CL", "America/Santiago"),
    ("CN", "Asia/Shanghai"),
    ("CO", "America/Bogota"),
    ("CZ", "Europe/Prague"),
    ("DE", "Europe/Berlin"),
    ("DK", "Europe/Copenhagen"),
    ("EE", "Europe/Tallinn"),
    ("EG", "Africa/Cairo"),
    ("ES", "Europe/Madrid"),
    ("FI", "Europe/Helsinki"),
    ("FR", "Europe/Paris"),
    ("GB", "Europe/London"),
    ("GR", "Europe/Athens"),
    ("HK", "Asia/Hong_Kong"),
    ("HR", "Europe/Zagreb"),
    ("HU", "Europe/Budapest"),
    ("ID", "Asia/Jakarta"),
    ("IE", "Europe/Dublin"),
    ("IL", "Asia/Jerusalem"),
    ("IN", "Asia/Kolkata"),
    ("IS", "Atlantic/Reykjavik"),
    ("IT", "Europe/Rome"),
    ("JP", "Asia/Tokyo"),
    ("KE", "Africa/Nairobi"),
    ("KR", "Asia/Seoul"),
    ("LT", "Europe/Vilnius"),
    ("LU", "Europe/Luxembourg"),
    ("LV", "Europe/Riga"),
    ("MX", "America/Mexico_City"),
    ("MY", "Asia/Kuala_Lumpur"),
    ("NG", "Africa/Lagos"),
    ("NL", "Europe/Amsterdam"),
    ("NO", "Europe/Oslo"),
    ("NZ", "Pacific/Auckland"),
    ("PE", "America/Lima"),
    ("PH", "Asia/Manila"),
    ("PK", "Asia/Karachi"),
    ("PL", "Europe/Warsaw"),
    ("PT", "Europe/Lisbon"),
    ("RO", "Europe/Bucharest"),
    ("RS", "Europe/Belgrade"),
    ("SA", "Asia/Riyadh"),
    ("SE", "Europe/Stockholm"),
    ("SG", "Asia/Singapore"),
    ("SI", "Europe/Ljubljana"),
    ("SK", "Europe/Bratislava"),
    ("TH", "Asia/Bangkok"),
    ("TR", "Europe/Istanbul"),
    ("TW", "Asia/Taipei"),
    ("UA", "Europe/Kyiv"),
    ("US", "America/New_York"),
    ("VN", "Asia/Ho_Chi_Minh"),
    ("ZA", "Africa/Johannesburg"),
];

/// The zone of an ISO 3166-1 alpha-2 country code, if known.
pub fn country_zone(country: &str) -> Option<Tz> {
    let code = country.trim().to_ascii_uppercase();
    COUNTRY_ZONES.iter().find(|(c, _)| *c == code).and_then(|(_, z)| z.parse().ok())
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
pub fn lead_zone(lead: &Lead, default: Tz) -> (Tz, ZoneSource) {
    let c = &lead.contact;
    if let Some(tz) = c.time_zone.as_deref().and_then(|z| z.parse::<Tz>().ok()) {
        return (tz, ZoneSource::Lead);
    }
    if let Some(tz) = c.country.as_deref().and_then(country_zone) {
        return (tz, ZoneSource::Country);
    }
    let phone_country = c.phone.as_deref().and_then(|p| phonenumber::parse(None, p).ok()).and_then(|n| {
        let id = n.country().id()?;
        Some(id.as_ref().to_string())
    });
    if let Some(tz) = phone_country.as_deref().and_then(country_zone) {
        return (tz, ZoneSource::Phone);
    }
    (default, ZoneSource::Default)
}

/// The instant of a local wall-clock time. A time skipped by a daylight-saving change (02:30 on
/// the night clocks go forward) becomes the first instant after the gap; a repeated one (the
/// night clocks go back) the earlier of the two.
pub fn at_local(tz: Tz, date: NaiveDate, time: NaiveTime) -> DateTime<Utc> {
    let naive = NaiveDateTime::new(date, time);
    let mut probe = naive;
    // A gap is at most a few hours; step forward a minute at a time until the wall clock exists.
    for _ in 0..(24 * 60) {
        match tz.from_local_datetime(&probe) {
            LocalResult::Single(t) => return t.with_timezone(&Utc),
            LocalResult::Ambiguous(early, _) => return early.with_timezone(&Utc),
            LocalResult::None => probe += chrono::Duration::minutes(1),
        }
    }
    // No zone skips a whole day; read it as UTC rather than fail.
    Utc.from_utc_datetime(&naive)
}

/// The local date `days` after `date`, saturating at the end of time.
pub fn add_days(date: NaiveDate, days: u64) -> NaiveDate {
    date.checked_add_days(Days::new(days)).unwrap_or(date)
}

/// A moment as a person reads it in `tz`: "Tuesday 3 March 2026, 14:05 CET". An unknown zone
/// name reads as UTC, and says so.
pub fn in_words(at: DateTime<Utc>, zone: &str) -> String {
    let tz: Tz = zone.parse().unwrap_or(Tz::UTC);
    at.with_timezone(&tz).format("%A %-d %B %Y, %H:%M %Z").to_string()
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
