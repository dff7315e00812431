//! Reps and teams for a person.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::render::{Shown, arr, cell, condition, days, hhmm, parse_time, str_of, when, when_short};
use super::table::{Fields, Table, clean};

/// An absence still to come or going on, in words; nothing for one that is over.
fn absence(rep: &Value, now: DateTime<Utc>) -> Option<String> {
    let ooo = rep.get("out_of_office").filter(|o| !o.is_null())?;
    let (from, until) = (str_of(ooo, "from")?, str_of(ooo, "until")?);
    match (parse_time(from), parse_time(until)) {
        (_, Some(u)) if u <= now => None,
        (Some(f), _) if f <= now => Some(format!("until {}", when_short(until))),
        _ => Some(format!("{} → {}", when_short(from), when_short(until))),
    }
}

fn capacity(rep: &Value) -> String {
    match rep.get("capacity") {
        Some(Value::Number(n)) => n.to_string(),
        _ => "no limit".to_string(),
    }
}

/// `GET /admin/reps`: one row per rep, and who gets the leads nobody else can take.
pub fn list(answer: &Value, now: DateTime<Utc>) -> Option<Shown> {
    let reps = arr(answer, "reps")?;
    let mut text = if reps.is_empty() {
        "No reps.\n".to_string()
    } else {
        let mut t = Table::new()
            .whole("ID")
            .text("NAME", 28)
            .text("EMAIL", 36)
            .text("TIME ZONE", 24)
            .whole("ACTIVE")
            .whole("OUT OF OFFICE (UTC)")
            .number("CAPACITY")
            .number("OPEN LEADS")
            .text("TEAMS", 30);
        for r in reps {
            let teams: Vec<String> =
                arr(r, "teams").map(|t| t.iter().map(|x| cell(Some(x))).collect()).unwrap_or_default();
            t.row(vec![
                cell(r.get("id")),
                cell(r.get("name")),
                cell(r.get("email")),
                cell(r.get("time_zone")),
                cell(r.get("active")),
                absence(r, now).unwrap_or_else(|| "—".to_string()),
                capacity(r),
                cell(r.get("open_leads")),
                if teams.is_empty() { "—".to_string() } else { teams.join(", ") },
            ]);
        }
        t.render()
    };
    if let Some(fallback) = str_of(answer, "fallback_owner") {
        text.push_str(&format!("\n{}\n", clean(&format!("Fallback owner: {fallback}. {}", routing_version(answer)))));
    }
    Some(Shown::text(text))
}

/// Which routing the answer comes from.
fn routing_version(answer: &Value) -> String {
    match (answer.get("version").and_then(Value::as_u64), str_of(answer, "saved_at")) {
        (Some(v), Some(at)) => format!("Routing version {v}, saved {}.", when(at)),
        (Some(v), None) => format!("Routing version {v}."),
        (None, _) => "Routing as deployed (no change through the API yet).".to_string(),
    }
}

fn working_hours(rep: &Value) -> String {
    match rep.get("working_hours").filter(|h| !h.is_null()) {
        Some(h) => format!("{} {}–{}", days(h.get("days")), hhmm(h.get("start")), hhmm(h.get("end"))),
        None => "any time".to_string(),
    }
}

/// `GET /admin/reps/{id}`.
pub fn show(answer: &Value, now: DateTime<Utc>) -> Option<Shown> {
    let rep = answer.get("rep").filter(|r| r.is_object())?;
    let mut f = Fields::new();
    f.add("Rep", cell(rep.get("id")));
    f.add("Name", cell(rep.get("name")));
    f.add("Email", cell(rep.get("email")));
    f.add("Time zone", cell(rep.get("time_zone")));
    f.add("Working hours", working_hours(rep));
    f.add("Active", cell(rep.get("active")));
    f.add("Out of office", absence(rep, now).map(|a| format!("{a} (UTC)")).unwrap_or_else(|| "no".into()));
    f.add("Capacity", capacity(rep));
    f.add("Open leads", cell(rep.get("open_leads")));
    let teams: Vec<String> = arr(rep, "teams").map(|t| t.iter().map(|x| cell(Some(x))).collect()).unwrap_or_default();
    f.add("Teams", if teams.is_empty() { "none".to_string() } else { teams.join(", ") });
    Some(Shown::text(f.render()))
}

/// The answer of a rep change: `Rep zoe (Zoe Martin) is saved (routing version 2).`
pub fn saved(answer: &Value, absence_change: bool) -> Option<Shown> {
    let rep = answer.get("rep").filter(|r| r.is_object())?;
    let id = str_of(rep, "id")?;
    let version = answer.get("version")?.as_u64()?;
    let unchanged = answer.get("unchanged").and_then(Value::as_bool).unwrap_or(false);
    let who = match str_of(rep, "name") {
        Some(name) => format!("Rep {id} ({name})"),
        None => format!("Rep {id}"),
    };
    let ooo = rep.get("out_of_office").filter(|o| !o.is_null());
    let what = match (absence_change, ooo) {
        (true, Some(o)) => format!(
            "is out of office from {} until {}",
            when(str_of(o, "from").unwrap_or("?")),
            when(str_of(o, "until").unwrap_or("?"))
        ),
        (true, None) => "is back: no time out of office".to_string(),
        (false, _) if unchanged => "is unchanged".to_string(),
        (false, _) => "is saved".to_string(),
    };
    let line = if unchanged && absence_change {
        format!("{who} {what} (unchanged, routing version {version}).")
    } else {
        format!("{who} {what} (routing version {version}).")
    };
    Some(Shown::line(clean(&line)))
}

fn members(team: &Value) -> String {
    let members: Vec<String> = arr(team, "members")
        .map(|m| {
            m.iter()
                .map(|m| match m.get("weight").and_then(Value::as_u64) {
                    Some(w) if w != 1 => format!("{}×{w}", cell(m.get("rep"))),
                    _ => cell(m.get("rep")),
                })
                .collect()
        })
        .unwrap_or_default();
    if members.is_empty() { "none".to_string() } else { members.join(", ") }
}

fn rules(team: &Value) -> String {
    let when: Vec<String> = arr(team, "when").map(|w| w.iter().map(condition).collect()).unwrap_or_default();
    if when.is_empty() { "every lead".to_string() } else { when.join("; ") }
}

/// `GET /admin/teams`: in matching order, the first whose rules hold takes the lead.
pub fn teams(answer: &Value) -> Option<Shown> {
    let teams = arr(answer, "teams")?;
    if teams.is_empty() {
        return Some(Shown::line("No teams: every lead goes to the fallback owner."));
    }
    let mut t = Table::new().whole("ID").text("NAME", 28).text("MEMBERS", 40).text("TAKES LEADS WHERE", 60);
    for team in teams {
        t.row(vec![cell(team.get("id")), cell(team.get("name")), members(team), rules(team)]);
    }
    Some(Shown::text(t.render()))
}

/// `GET /admin/teams/{id}`.
pub fn team(answer: &Value) -> Option<Shown> {
    let team = answer.get("team").filter(|t| t.is_object())?;
    let mut f = Fields::new();
    f.add("Team", cell(team.get("id")));
    f.add("Name", cell(team.get("name")));
    f.add("Members", members(team));
    f.add("Takes leads where", rules(team));
    Some(Shown::text(f.render()))
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use serde_json::json;

    use super::*;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 2, 10, 0, 0).single().unwrap_or_default()
    }

    #[test]
    fn absences_over_are_not_shown() {
        let rep = |from: &str, until: &str| json!({ "out_of_office": { "from": from, "until": until } });
        assert_eq!(absence(&rep("2026-02-01T00:00:00Z", "2026-02-02T00:00:00Z"), now()), None);
        assert_eq!(
            absence(&rep("2026-03-01T00:00:00Z", "2026-03-05T00:00:00Z"), now()).as_deref(),
            Some("until 2026-03-05 00:00")
        );
        assert_eq!(
            absence(&rep("2026-03-09T00:00:00Z", "2026-03-13T18:00:00Z"), now()).as_deref(),
            Some("2026-03-09 00:00 → 2026-03-13 18:00")
        );
    }
}
