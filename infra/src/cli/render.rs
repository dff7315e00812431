//! What the admin commands print for a person: tables, short summaries and one-line
//! confirmations, made from the API's JSON answers. `--json` prints the answers themselves.
//!
//! Every view reads the answer defensively: an answer of a shape it does not know (an older or
//! newer API) is printed as pretty JSON, so nothing is ever hidden.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::table::{Table, clean};
use super::{leads, reps};

/// How the admin commands print their answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// Tables, summaries and one-line confirmations, for people.
    #[default]
    Human,
    /// The API's JSON, pretty-printed, for scripts (`--json`).
    Json,
}

/// Which answer a command got, so that it is shown the right way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    CampaignList,
    CampaignShow,
    /// Apply, pause, resume, schedule: the campaign's version and status now.
    CampaignStored,
    CampaignMigrated,
    CampaignPreview,
    RepList,
    RepShow,
    RepSaved,
    RepAbsence,
    TeamList,
    TeamShow,
    LeadShow,
    LeadSearch,
    LeadMarked,
    LeadErased,
    Funnel,
    SignInLink,
    DeadLetters,
    Redriven,
}

/// What a person sees: `text` on standard output, `hint` (how to go on) on standard error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shown {
    pub text: String,
    pub hint: Option<String>,
}

impl Shown {
    pub fn text(text: impl Into<String>) -> Self {
        Self { text: text.into(), hint: None }
    }

    /// One line, ending in a newline.
    pub fn line(line: impl Into<String>) -> Self {
        let mut text = line.into();
        text.push('\n');
        Self::text(text)
    }
}

/// `answer` shown as `view` says, as of `now`; pretty JSON when its shape is not the expected one.
pub fn show(view: View, answer: &Value, now: DateTime<Utc>) -> Shown {
    let shown = match view {
        View::CampaignList => campaign_list(answer),
        View::CampaignShow => super::campaigns::show(answer),
        View::CampaignStored => campaign_stored(answer),
        View::CampaignMigrated => campaign_migrated(answer),
        View::CampaignPreview => super::campaigns::preview(answer),
        View::RepList => reps::list(answer, now),
        View::RepShow => reps::show(answer, now),
        View::RepSaved => reps::saved(answer, false),
        View::RepAbsence => reps::saved(answer, true),
        View::TeamList => reps::teams(answer),
        View::TeamShow => reps::team(answer),
        View::LeadShow => leads::show(answer),
        View::LeadSearch => leads::search(answer),
        View::LeadMarked => leads::marked(answer),
        View::LeadErased => leads::erased(answer),
        View::Funnel => funnel(answer),
        View::SignInLink => sign_in_link(answer, now),
        View::DeadLetters => super::dead_letters::list(answer),
        View::Redriven => super::dead_letters::redriven(answer),
    };
    shown.unwrap_or_else(|| Shown::text(pretty(answer)))
}

/// The answer as `--json` prints it.
pub fn pretty(answer: &Value) -> String {
    let mut text = serde_json::to_string_pretty(answer).unwrap_or_else(|_| answer.to_string());
    text.push('\n');
    text
}

// --- reading answers ------------------------------------------------------------------------

pub(super) fn str_of<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
}

pub(super) fn obj(v: &Value) -> Option<&Map<String, Value>> {
    v.as_object()
}

pub(super) fn arr<'a>(v: &'a Value, key: &str) -> Option<&'a Vec<Value>> {
    v.get(key).and_then(Value::as_array)
}

/// A cell for any value: text as it is, numbers without needless decimals, "—" for nothing.
pub(super) fn cell(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => "—".to_string(),
        Some(Value::String(s)) if s.is_empty() => "—".to_string(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.as_f64().map_or_else(|| n.to_string(), num),
        Some(Value::Bool(b)) => if *b { "yes" } else { "no" }.to_string(),
        Some(other) => other.to_string(),
    }
}

/// A number rounded to hundredths, without a trailing `.0`.
pub(super) fn num(x: f64) -> String {
    let rounded = (x * 100.0).round() / 100.0;
    if rounded == 0.0 { "0".to_string() } else { rounded.to_string() }
}

/// `1 lead`, `2 leads`.
pub(super) fn count(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

pub(super) fn parse_time(raw: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(raw).ok().map(|t| t.with_timezone(&Utc))
}

/// An RFC 3339 time as `2026-03-02 10:00 UTC`; anything else as it is.
pub(super) fn when(raw: &str) -> String {
    parse_time(raw).map_or_else(|| raw.to_string(), |t| t.format("%Y-%m-%d %H:%M UTC").to_string())
}

/// An RFC 3339 time as `2026-03-02 10:00`, for columns whose title says UTC.
pub(super) fn when_short(raw: &str) -> String {
    parse_time(raw).map_or_else(|| raw.to_string(), |t| t.format("%Y-%m-%d %H:%M").to_string())
}

/// A schedule `{"start", "end"}` in words.
pub(super) fn schedule(v: Option<&Value>) -> String {
    let start = v.and_then(|s| str_of(s, "start")).map(when);
    let end = v.and_then(|s| str_of(s, "end")).map(when);
    match (start, end) {
        (Some(s), Some(e)) => format!("{s} → {e}"),
        (Some(s), None) => format!("from {s}"),
        (None, Some(e)) => format!("until {e}"),
        (None, None) => "always".to_string(),
    }
}

/// A rule `{"field", "equals" | "in" | "contains" | "regex" | "range" | "exists"}` in words.
pub(super) fn condition(c: &Value) -> String {
    let field = str_of(c, "field").unwrap_or("?");
    let list = |v: &Value| match v.as_array() {
        Some(items) => items.iter().map(|i| cell(Some(i))).collect::<Vec<_>>().join(", "),
        None => cell(Some(v)),
    };
    if let Some(v) = c.get("equals") {
        return format!("{field} is {}", cell(Some(v)));
    }
    if let Some(v) = c.get("in") {
        return format!("{field} in {}", list(v));
    }
    if let Some(v) = c.get("contains") {
        return format!("{field} contains {}", list(v));
    }
    if let Some(v) = c.get("regex") {
        return format!("{field} matches /{}/", cell(Some(v)));
    }
    if let Some(r) = c.get("range") {
        let (min, max) = (r.get("min").and_then(Value::as_f64), r.get("max").and_then(Value::as_f64));
        return match (min, max) {
            (Some(a), Some(b)) => format!("{field} from {} to {}", num(a), num(b)),
            (Some(a), None) => format!("{field} at least {}", num(a)),
            (None, Some(b)) => format!("{field} at most {}", num(b)),
            (None, None) => format!("{field} is a number"),
        };
    }
    match c.get("exists").and_then(Value::as_bool) {
        Some(true) => format!("{field} is given"),
        Some(false) => format!("{field} is missing"),
        None => c.to_string(),
    }
}

/// Working days as the API writes them (`Mon`, `mon`), lower case.
pub(super) fn days(v: Option<&Value>) -> String {
    let days: Vec<String> = v
        .and_then(Value::as_array)
        .map(|d| d.iter().filter_map(Value::as_str).map(str::to_ascii_lowercase).collect())
        .unwrap_or_default();
    days.join(",")
}

/// `09:00:00` as `09:00`.
pub(super) fn hhmm(v: Option<&Value>) -> String {
    let raw = v.and_then(Value::as_str).unwrap_or("?");
    raw.strip_suffix(":00").filter(|s| s.len() == 5).unwrap_or(raw).to_string()
}

// --- campaigns ------------------------------------------------------------------------------

fn campaign_list(answer: &Value) -> Option<Shown> {
    let campaigns = arr(answer, "campaigns")?;
    if campaigns.is_empty() {
        return Some(Shown::line("No campaigns."));
    }
    let mut t = Table::new()
        .whole("ID")
        .text("NAME", 32)
        .whole("STATUS")
        .number("VERSION")
        .number("STEPS")
        .number("EMAILS")
        .text("SCHEDULE (UTC)", 40)
        .whole("SAVED (UTC)");
    for c in campaigns {
        let saved = match str_of(c, "saved_at") {
            Some(at) => when_short(at),
            None => str_of(c, "source").unwrap_or("—").to_string(),
        };
        let sched = schedule(c.get("schedule")).replace(" UTC", "");
        t.row(vec![
            cell(c.get("id")),
            cell(c.get("name")),
            cell(c.get("status")),
            cell(c.get("version")),
            cell(c.get("steps")),
            cell(c.get("emails")),
            sched,
            saved,
        ]);
    }
    Some(Shown::text(t.render()))
}

/// `Campaign welcome is now version 3, paused.`
fn campaign_stored(answer: &Value) -> Option<Shown> {
    let id = str_of(answer, "campaign")?;
    let version = answer.get("version")?.as_u64()?;
    let status = str_of(answer, "status")?;
    let unchanged = answer.get("unchanged").and_then(Value::as_bool).unwrap_or(false);
    let sched = answer.get("schedule").filter(|s| !s.is_null()).map(|s| schedule(Some(s)));
    let mut line = if unchanged {
        format!("Campaign {id} is unchanged: still version {version}, {status}")
    } else {
        format!("Campaign {id} is now version {version}, {status}")
    };
    match sched.as_deref() {
        Some("always") | None => line.push('.'),
        Some(s) => line.push_str(&format!(", scheduled {s}.")),
    }
    Some(Shown::line(clean(&line)))
}

fn campaign_migrated(answer: &Value) -> Option<Shown> {
    let id = str_of(answer, "campaign")?;
    let to = answer.get("to_version")?.as_u64()?;
    let moved = answer.get("migrated")?.as_u64()?;
    let kept = answer.get("kept_on_their_version").and_then(Value::as_u64).unwrap_or(0);
    let changed = answer.get("changed_meanwhile").and_then(Value::as_u64).unwrap_or(0);
    let mut line = format!("Campaign {id}: {} moved to version {to}", count(moved, "enrolled lead", "enrolled leads"));
    if kept > 0 {
        line.push_str(&format!("; {kept} finish their own version (their next step is gone)"));
    }
    if changed > 0 {
        line.push_str(&format!("; {changed} moved on meanwhile (run it again to take them)"));
    }
    line.push('.');
    Some(Shown::line(clean(&line)))
}

// --- reports --------------------------------------------------------------------------------

/// The funnel's stages, in order, with how they are shown.
const STAGES: &[(&str, &str)] = &[
    ("captured", "captured"),
    ("valid", "valid"),
    ("mql", "MQL"),
    ("assigned", "assigned"),
    ("sql", "SQL"),
    ("contacted", "contacted"),
    ("won", "won"),
];

/// `part` of `whole` as a percentage with one decimal; "—" when there is no whole.
pub(super) fn percent(part: u64, whole: u64) -> String {
    if whole == 0 { "—".to_string() } else { format!("{:.1}%", part as f64 * 100.0 / whole as f64) }
}

/// One funnel: each stage's count, and its share of the stage before and of the top.
fn funnel_table(f: &Map<String, Value>) -> Option<String> {
    let mut t = Table::new().whole("STAGE").number("LEADS").number("FROM PREVIOUS").number("FROM TOP");
    let top = f.get("captured")?.as_u64()?;
    let mut previous: Option<u64> = None;
    for (key, name) in STAGES {
        let n = f.get(*key)?.as_u64()?;
        let from_previous = previous.map_or_else(|| "—".to_string(), |p| percent(n, p));
        t.row(vec![name.to_string(), n.to_string(), from_previous, percent(n, top)]);
        previous = Some(n);
    }
    // Stages a newer API counts and this one does not know: shown, but not chained.
    for (key, v) in f.iter().filter(|(k, _)| !STAGES.iter().any(|(s, _)| s == k)) {
        let n = v.as_u64()?;
        t.row(vec![key.clone(), n.to_string(), "—".to_string(), percent(n, top)]);
    }
    Some(t.render())
}

fn funnel(answer: &Value) -> Option<Shown> {
    let overall = obj(answer.get("overall")?)?;
    let by = str_of(answer, "by").unwrap_or("group");
    let period = match (str_of(answer, "since"), str_of(answer, "until")) {
        (Some(s), Some(u)) => format!("created from {} until {}", when(s), when(u)),
        (Some(s), None) => format!("created since {}", when(s)),
        (None, Some(u)) => format!("created before {}", when(u)),
        (None, None) => "created any time".to_string(),
    };
    let total = overall.get("captured")?.as_u64()?;
    if total == 0 {
        return Some(Shown::line(format!("No leads {period}.")));
    }
    let mut text = format!("All leads, {period}: {}\n", count(total, "lead", "leads"));
    text.push_str(&funnel_table(overall)?);
    for g in arr(answer, "groups")? {
        let key = str_of(g, "key").unwrap_or("?");
        let f = obj(g.get("funnel")?)?;
        let n = f.get("captured")?.as_u64()?;
        let heading = format!("{} {key}: {}", capitalized(by), count(n, "lead", "leads"));
        text.push_str(&format!("\n{}\n", clean(&heading)));
        text.push_str(&funnel_table(f)?);
    }
    Some(Shown::text(text))
}

fn capitalized(s: &str) -> String {
    let mut chars = s.chars();
    chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

// --- the local stack's sign-in links ---------------------------------------------------------

/// `Sign in as ben@acme.example (sales), within 15 minutes, on this machine:` and the link.
fn sign_in_link(answer: &Value, now: DateTime<Utc>) -> Option<Shown> {
    let url = str_of(answer, "url")?;
    let email = str_of(answer, "email")?;
    let who = match str_of(answer, "role") {
        Some(role) => format!("{email} ({role})"),
        None => email.to_string(),
    };
    let within = match str_of(answer, "expires_at").map(|e| (e, parse_time(e))) {
        Some((_, Some(t))) => {
            let minutes = ((t - now).num_seconds() + 30) / 60;
            match minutes {
                m if m <= 0 => "within a minute".to_string(),
                1 => "within 1 minute".to_string(),
                m => format!("within {m} minutes"),
            }
        }
        Some((raw, None)) => format!("before {raw}"),
        None => "soon".to_string(),
    };
    Some(Shown::text(clean(&format!("Sign in as {who}, {within}, on this machine:")) + "\n  " + &clean(url) + "\n"))
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
    fn funnel_percentages_are_of_the_stage_before_and_of_the_top() {
        let f =
            json!({ "captured": 200, "valid": 180, "mql": 60, "assigned": 45, "sql": 40, "contacted": 30, "won": 3 });
        let answer = json!({ "by": "source", "since": null, "until": null, "overall": f,
            "groups": [{ "key": "google", "funnel": f }] });
        let text = show(View::Funnel, &answer, now()).text;
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "All leads, created any time: 200 leads");
        assert_eq!(lines[1], "STAGE      LEADS  FROM PREVIOUS  FROM TOP");
        assert_eq!(lines[2], "captured     200              —    100.0%");
        assert_eq!(lines[3], "valid        180          90.0%     90.0%");
        assert_eq!(lines[4], "MQL           60          33.3%     30.0%");
        assert_eq!(lines[5], "assigned      45          75.0%     22.5%");
        assert_eq!(lines[6], "SQL           40          88.9%     20.0%");
        assert_eq!(lines[7], "contacted     30          75.0%     15.0%");
        assert_eq!(lines[8], "won            3          10.0%      1.5%");
        assert_eq!(lines[10], "Source google: 200 leads");
    }

    #[test]
    fn answers_of_an_unknown_shape_come_out_as_json() {
        let answer = json!({ "reps": "not a list" });
        assert_eq!(show(View::RepList, &answer, now()).text, pretty(&answer));
        let answer = json!({ "overall": { "captured": 1 }, "groups": [] });
        assert_eq!(show(View::Funnel, &answer, now()).text, pretty(&answer));
    }

    #[test]
    fn confirmations_are_one_line() {
        let stored = json!({ "campaign": "welcome", "version": 3, "unchanged": false, "status": "paused",
            "schedule": { "start": null, "end": null } });
        assert_eq!(show(View::CampaignStored, &stored, now()).text, "Campaign welcome is now version 3, paused.\n");
        let scheduled = json!({ "campaign": "welcome", "version": 4, "unchanged": true, "status": "active",
            "schedule": { "start": "2026-12-01T00:00:00Z", "end": null } });
        assert_eq!(
            show(View::CampaignStored, &scheduled, now()).text,
            "Campaign welcome is unchanged: still version 4, active, scheduled from 2026-12-01 00:00 UTC.\n"
        );
        let ooo = json!({ "version": 3, "unchanged": false, "rep": { "id": "zoe", "name": "Zoë",
            "out_of_office": { "from": "2026-03-09T00:00:00Z", "until": "2026-03-13T18:00:00Z" } } });
        assert_eq!(
            show(View::RepAbsence, &ooo, now()).text,
            "Rep zoe (Zoë) is out of office from 2026-03-09 00:00 UTC until 2026-03-13 18:00 UTC (routing version 3).\n"
        );
    }

    #[test]
    fn sign_in_links_say_for_whom_and_how_long() {
        let answer = json!({ "url": "http://127.0.0.1:8080/console/sign-in/code/abc?next=%2Fconsole",
            "email": "ben@acme.example", "role": "sales", "expires_at": "2026-03-02T10:15:00Z" });
        assert_eq!(
            show(View::SignInLink, &answer, now()).text,
            "Sign in as ben@acme.example (sales), within 15 minutes, on this machine:\n  \
             http://127.0.0.1:8080/console/sign-in/code/abc?next=%2Fconsole\n"
        );
    }
}
