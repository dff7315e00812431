//! The rep form's fields: what the page shows for a rep, what a post asks for, every problem
//! at its field (`config_docs::rep_problems` and `team_problems` give the rules, as the JSON API
//! applies them), and where an API error's path lands on the form.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, NaiveTime, Utc, Weekday};
use leadflow_core::local_time::at_local;
use leadflow_core::routing::{Absence, Member, Rep, RoutingConfig, Team, WorkingHours};
use leadflow_core::zone::Zone;
use serde::Serialize;

use super::{Errors, Fields, field, parse_weight, sent, weight_field};
use crate::config_docs::{MAX_CAPACITY, rep_problems, team_problems};

/// The days of a shift: the weekday, the form's field suffix, the label.
pub const DAYS: [(Weekday, &str, &str); 7] = [
    (Weekday::Mon, "mon", "Mon"),
    (Weekday::Tue, "tue", "Tue"),
    (Weekday::Wed, "wed", "Wed"),
    (Weekday::Thu, "thu", "Thu"),
    (Weekday::Fri, "fri", "Fri"),
    (Weekday::Sat, "sat", "Sat"),
    (Weekday::Sun, "sun", "Sun"),
];

/// How far from now an absence may start or end; further is a typo of the year.
const AWAY_YEARS: i64 = 5;

pub(super) fn hours_words(hours: Option<&WorkingHours>) -> String {
    match hours {
        None => "Any time".to_string(),
        Some(h) => {
            let night = if h.end < h.start { " (past midnight)" } else { "" };
            format!("{} {}–{}{night}", days_words(&h.days), h.start.format("%H:%M"), h.end.format("%H:%M"))
        }
    }
}

/// Days as a person writes them: `Mon–Fri`, `Mon, Wed, Sat–Sun`.
pub fn days_words(days: &[Weekday]) -> String {
    let mut n: Vec<u32> = days.iter().map(|d| d.num_days_from_monday()).collect();
    n.sort_unstable();
    n.dedup();
    let label = |i: u32| DAYS.get(i as usize).map_or("?", |d| d.2);
    let mut parts = Vec::new();
    let mut i = 0;
    while i < n.len() {
        let (first, mut last) = (n[i], n[i]);
        while i + 1 < n.len() && n[i + 1] == last + 1 {
            i += 1;
            last = n[i];
        }
        parts.push(match last - first {
            0 => label(first).to_string(),
            1 => format!("{}, {}", label(first), label(last)),
            _ => format!("{}–{}", label(first), label(last)),
        });
        i += 1;
    }
    parts.join(", ")
}

/// The form as typed (or as the rep stands), every field as text so that it comes back as it was.
#[derive(Debug, Default, Clone, Serialize)]
pub(crate) struct RepForm {
    pub(super) id: String,
    pub(super) name: String,
    pub(super) email: String,
    pub(super) active: bool,
    pub(super) capacity: String,
    pub(super) time_zone: String,
    pub(super) days: Vec<String>,
    pub(super) start: String,
    pub(super) end: String,
    pub(super) ooo_from: String,
    pub(super) ooo_until: String,
    /// By team id: the teams whose weight field the form carried.
    pub(super) weights: BTreeMap<String, String>,
}

const LOCAL_FORMAT: &str = "%Y-%m-%dT%H:%M";

/// `at` on the rep's wall clock, as the form's date-time field takes it.
fn shown_in(tz: &Zone, at: DateTime<Utc>) -> String {
    tz.wall_clock_or_utc(at).format(LOCAL_FORMAT).to_string()
}

impl RepForm {
    pub(super) fn of(rep: &Rep, routing: &RoutingConfig, now: DateTime<Utc>) -> RepForm {
        let tz = Zone::named(&rep.time_zone).unwrap_or(Zone::UTC);
        let local = |at: DateTime<Utc>| shown_in(&tz, at);
        // An absence that has ended is not shown, so saving the form drops it.
        let away = rep.out_of_office.as_ref().filter(|a| a.until > now);
        let hours = rep.working_hours.as_ref();
        RepForm {
            id: rep.id.clone(),
            name: rep.name.clone(),
            email: rep.email.clone(),
            active: rep.active,
            capacity: rep.capacity.map(|c| c.to_string()).unwrap_or_default(),
            time_zone: rep.time_zone.clone(),
            days: hours
                .map(|h| DAYS.iter().filter(|d| h.days.contains(&d.0)).map(|d| d.1.to_string()).collect())
                .unwrap_or_default(),
            start: hours.map(|h| h.start.format("%H:%M").to_string()).unwrap_or_default(),
            end: hours.map(|h| h.end.format("%H:%M").to_string()).unwrap_or_default(),
            ooo_from: away.map(|a| local(a.from)).unwrap_or_default(),
            ooo_until: away.map(|a| local(a.until)).unwrap_or_default(),
            weights: routing
                .teams
                .iter()
                .map(|t| {
                    let w = t.members.iter().find(|m| m.rep == rep.id).map(|m| m.weight.to_string());
                    (t.id.clone(), w.unwrap_or_default())
                })
                .collect(),
        }
    }

    pub(super) fn blank(routing: &RoutingConfig) -> RepForm {
        RepForm {
            active: true,
            time_zone: "UTC".into(),
            weights: routing.teams.iter().map(|t| (t.id.clone(), String::new())).collect(),
            ..RepForm::default()
        }
    }

    pub(super) fn posted(form: &Fields, routing: &RoutingConfig) -> RepForm {
        let text = |name: &str| field(form, name).to_string();
        RepForm {
            id: text("id"),
            name: text("name"),
            email: text("email"),
            active: sent(form, "active"),
            capacity: text("capacity"),
            time_zone: text("time_zone"),
            days: DAYS.iter().filter(|d| sent(form, &format!("day_{}", d.1))).map(|d| d.1.to_string()).collect(),
            start: text("start"),
            end: text("end"),
            ooo_from: text("ooo_from"),
            ooo_until: text("ooo_until"),
            weights: routing
                .teams
                .iter()
                .filter(|t| sent(form, &weight_field(&t.id)))
                .map(|t| (t.id.clone(), text(&weight_field(&t.id))))
                .collect(),
        }
    }
}

/// A membership change: by team id, the weight (`None`: not a member).
pub(crate) type Memberships = BTreeMap<String, Option<u32>>;

/// The rep and memberships the form asks for; every problem goes into `errors` at its field.
pub(super) fn parse(form: &RepForm, id: &str, stored: Option<&Rep>, now: DateTime<Utc>, errors: &mut Errors) -> Rep {
    let capacity = if form.capacity.is_empty() {
        None
    } else {
        form.capacity.parse::<u32>().map_err(|_| errors.add("capacity", capacity_hint())).ok()
    };
    let tz = Zone::named(&form.time_zone).unwrap_or(Zone::UTC);
    let rep = Rep {
        id: id.to_string(),
        name: form.name.clone(),
        email: form.email.clone(),
        time_zone: form.time_zone.clone(),
        working_hours: hours(form, errors),
        capacity,
        active: form.active,
        out_of_office: absence(form, &tz, now, stored.and_then(|r| r.out_of_office.as_ref()), errors),
    };
    for e in rep_problems("", &rep) {
        errors.add_api(&e, |p| rep_field(p, None, id));
    }
    rep
}

fn capacity_hint() -> String {
    format!("a whole number of open leads from 0 to {MAX_CAPACITY}, or empty for no limit")
}

fn hours(form: &RepForm, errors: &mut Errors) -> Option<WorkingHours> {
    if form.days.is_empty() && form.start.is_empty() && form.end.is_empty() {
        return None;
    }
    let time = |name: &str, raw: &str, errors: &mut Errors| {
        if raw.is_empty() {
            errors.add(name, "give a time such as 09:00, or untick every day and clear both times for any time");
            return None;
        }
        let parsed = NaiveTime::parse_from_str(raw, "%H:%M").or_else(|_| NaiveTime::parse_from_str(raw, "%H:%M:%S"));
        parsed.map_err(|_| errors.add(name, "a time from 00:00 to 23:59, such as 09:00")).ok()
    };
    let start = time("start", &form.start, errors);
    let end = time("end", &form.end, errors);
    let days = DAYS.iter().filter(|d| form.days.iter().any(|k| k == d.1)).map(|d| d.0).collect();
    Some(WorkingHours { days, start: start?, end: end? })
}

fn local_time(raw: &str, tz: &Zone) -> Option<DateTime<Utc>> {
    for format in [LOCAL_FORMAT, "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(raw, format) {
            return Some(at_local(tz, t.date(), t.time()));
        }
    }
    NaiveDate::parse_from_str(raw, "%Y-%m-%d").ok().map(|d| at_local(tz, d, NaiveTime::MIN))
}

/// The absence the form asks for. A time shown to the minute and sent back unchanged keeps the
/// stored instant, so that saving an unchanged form changes nothing.
fn absence(
    form: &RepForm,
    tz: &Zone,
    now: DateTime<Utc>,
    stored: Option<&Absence>,
    errors: &mut Errors,
) -> Option<Absence> {
    if form.ooo_from.is_empty() && form.ooo_until.is_empty() {
        return None;
    }
    let shown = |at: DateTime<Utc>| shown_in(tz, at);
    let local_time = |raw: &str, stored: Option<DateTime<Utc>>| match stored {
        Some(at) if shown(at) == raw => Some(at),
        _ => local_time(raw, tz),
    };
    const SHAPE: &str = "a date and time such as 2026-03-02T09:00, in the rep's time zone";
    let span = Duration::days(AWAY_YEARS * 366);
    let from = match local_time(&form.ooo_from, stored.map(|a| a.from)) {
        _ if form.ooo_from.is_empty() => Some(now),
        Some(t) if t >= now - span => Some(t),
        Some(_) => {
            errors.add("ooo_from", format!("at most {AWAY_YEARS} years ago"));
            None
        }
        None => {
            errors.add("ooo_from", SHAPE);
            None
        }
    };
    let until = match local_time(&form.ooo_until, stored.map(|a| a.until)) {
        _ if form.ooo_until.is_empty() => {
            errors.add("ooo_until", "say when they are back, or clear both dates if they are not away");
            None
        }
        Some(t) if t <= now => {
            errors.add("ooo_until", "is already past: clear both dates if they are not away");
            None
        }
        Some(t) if t > now + span => {
            errors.add("ooo_until", format!("at most {AWAY_YEARS} years ahead"));
            None
        }
        Some(t) => Some(t),
        None => {
            errors.add("ooo_until", SHAPE);
            None
        }
    };
    Some(Absence { from: from?, until: until? })
}

/// The form field of an API error's path: a field of this rep (`capacity`, `reps[2].capacity`
/// when it is rep 2, `working_hours.end`), or `None` for the top of the form.
pub(super) fn rep_field(path: &str, index: Option<usize>, id: &str) -> Option<String> {
    let own = if let Some(rest) = path.strip_prefix("reps[") {
        let (n, tail) = rest.split_once("].")?;
        (n.parse::<usize>().ok() == index && index.is_some()).then_some(tail)?
    } else if let Some(other) = path.strip_prefix("reps.") {
        // The compiler names a rep by id: `reps.anna` (its id used twice).
        return (other == id).then(|| "id".to_string());
    } else {
        path
    };
    let field = match own {
        "id" | "name" | "email" | "time_zone" | "capacity" | "active" => own,
        "working_hours" | "working_hours.days" => "days",
        "working_hours.start" => "start",
        "working_hours.end" => "end",
        "out_of_office.from" => "ooo_from",
        "out_of_office" | "out_of_office.until" => "ooo_until",
        _ => return None,
    };
    Some(field.to_string())
}

/// The memberships the form asks for, each weight checked by the team rules at its field.
pub(super) fn memberships(form: &RepForm, rep: &Rep, routing: &RoutingConfig, errors: &mut Errors) -> Memberships {
    let mut out = Memberships::new();
    for team in &routing.teams {
        let Some(raw) = form.weights.get(&team.id) else { continue };
        let name = weight_field(&team.id);
        match parse_weight(raw) {
            Err(message) => errors.add(&name, message),
            Ok(w) => {
                let mut changed = team.clone();
                set_member(&mut changed, &rep.id, w);
                let at = changed.members.iter().position(|m| m.rep == rep.id).map(|k| format!("members[{k}].weight"));
                for e in team_problems("", &changed, routing) {
                    if e.field.is_some() && e.field == at {
                        errors.add(&name, e.message);
                    }
                }
                out.insert(team.id.clone(), w);
            }
        }
    }
    out
}

pub(super) fn set_member(team: &mut Team, rep: &str, weight: Option<u32>) {
    match (team.members.iter().position(|m| m.rep == rep), weight) {
        (Some(k), Some(w)) => team.members[k].weight = w,
        (Some(k), None) => {
            team.members.remove(k);
        }
        (None, Some(w)) => team.members.push(Member { rep: rep.to_string(), weight: w }),
        (None, None) => {}
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 2, 8, 0, 0).single().unwrap_or_default()
    }

    fn form() -> RepForm {
        RepForm {
            id: "zoe".into(),
            name: "Zoe".into(),
            email: "zoe@acme.example".into(),
            active: true,
            time_zone: "Europe/Berlin".into(),
            ..RepForm::default()
        }
    }

    fn routing() -> RoutingConfig {
        toml::from_str(
            r#"fallback_owner = "anna"
            [[reps]]
            id = "anna"
            name = "Anna"
            email = "anna@acme.example"
            [[teams]]
            id = "emea"
            name = "EMEA"
            members = [{ rep = "anna", weight = 1 }]"#,
        )
        .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn api_paths_land_on_the_form_field_of_this_rep_only() {
        assert_eq!(rep_field("capacity", None, "zoe").as_deref(), Some("capacity"));
        assert_eq!(rep_field("reps[2].capacity", Some(2), "zoe").as_deref(), Some("capacity"));
        assert_eq!(rep_field("reps[2].working_hours.end", Some(2), "zoe").as_deref(), Some("end"));
        assert_eq!(rep_field("reps[2].out_of_office.until", Some(2), "zoe").as_deref(), Some("ooo_until"));
        assert_eq!(rep_field("reps[1].capacity", Some(2), "zoe"), None, "another rep's problem goes to the top");
        assert_eq!(rep_field("reps[1].capacity", None, "zoe"), None);
        assert_eq!(rep_field("reps.zoe", None, "zoe").as_deref(), Some("id"));
        assert_eq!(rep_field("reps.anna", None, "zoe"), None);
        assert_eq!(rep_field("fallback_owner", None, "zoe"), None);
        assert_eq!(rep_field("teams[0].members[1].weight", None, "zoe"), None);
    }

    #[test]
    fn every_bad_field_is_told_at_once() {
        let mut f = form();
        f.capacity = "20000".into();
        f.time_zone = "Mars/Olympus".into();
        f.days = vec!["mon".into()];
        f.start = "09:00".into();
        f.end = "25:00".into();
        f.ooo_until = "soon".into();
        f.weights.insert("emea".into(), "500".into());
        let mut errors = Errors::default();
        let rep = parse(&f, "zoe", None, now(), &mut errors);
        memberships(&f, &rep, &routing(), &mut errors);
        assert!(errors.get("capacity").is_some_and(|m| m.contains("10000")), "{errors:?}");
        assert!(errors.get("time_zone").is_some_and(|m| m.contains("Mars/Olympus")), "{errors:?}");
        assert!(errors.get("end").is_some_and(|m| m.contains("23:59")), "{errors:?}");
        assert!(errors.get("ooo_until").is_some(), "{errors:?}");
        assert!(errors.get("weight_emea").is_some_and(|m| m.contains("100")), "{errors:?}");
        assert_eq!(errors.get("form"), None);
    }

    #[test]
    fn a_good_form_makes_the_rep_in_its_own_zone() {
        let mut f = form();
        f.capacity = "12".into();
        f.days = vec!["mon".into(), "tue".into(), "wed".into(), "thu".into(), "fri".into()];
        f.start = "09:00".into();
        f.end = "17:30".into();
        f.ooo_until = "2026-03-09T09:00".into();
        f.weights.insert("emea".into(), "3".into());
        let mut errors = Errors::default();
        let rep = parse(&f, "zoe", None, now(), &mut errors);
        let m = memberships(&f, &rep, &routing(), &mut errors);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(rep.capacity, Some(12));
        let away = rep.out_of_office.unwrap_or_else(|| panic!("away"));
        assert_eq!(away.from, now(), "no start: from now");
        // 09:00 in Berlin in March is 08:00 UTC.
        assert_eq!(away.until, Utc.with_ymd_and_hms(2026, 3, 9, 8, 0, 0).single().unwrap_or_default());
        assert_eq!(hours_words(rep.working_hours.as_ref()), "Mon–Fri 09:00–17:30");
        assert_eq!(m.get("emea"), Some(&Some(3)));
    }

    #[test]
    fn an_absence_must_end_after_it_starts_and_not_in_the_past() {
        for (from, until, field) in [
            ("2026-03-05T09:00", "2026-03-04T09:00", "ooo_until"),
            ("", "2026-03-01", "ooo_until"),
            ("2026-03-05", "", "ooo_until"),
            ("yesterday", "2026-03-09", "ooo_from"),
            ("", "2099-01-01", "ooo_until"),
        ] {
            let mut f = form();
            f.ooo_from = from.into();
            f.ooo_until = until.into();
            let mut errors = Errors::default();
            parse(&f, "zoe", None, now(), &mut errors);
            assert!(errors.get(field).is_some(), "{from} – {until}: {errors:?}");
        }
    }

    #[test]
    fn days_read_as_runs() {
        use Weekday::*;
        assert_eq!(days_words(&[Mon, Tue, Wed, Thu, Fri]), "Mon–Fri");
        assert_eq!(days_words(&[Sat, Mon, Wed, Sun]), "Mon, Wed, Sat, Sun");
        assert_eq!(days_words(&[Mon, Tue, Thu, Fri, Sat]), "Mon, Tue, Thu–Sat");
        assert_eq!(days_words(&[]), "");
    }

    #[test]
    fn leaving_a_team_and_changing_a_weight() {
        let mut t = routing().teams.remove(0);
        set_member(&mut t, "zoe", Some(2));
        set_member(&mut t, "anna", Some(5));
        assert_eq!(t.members.iter().map(|m| (m.rep.as_str(), m.weight)).collect::<Vec<_>>(), [("anna", 5), ("zoe", 2)]);
        set_member(&mut t, "anna", None);
        assert_eq!(t.members.len(), 1);
    }
}
