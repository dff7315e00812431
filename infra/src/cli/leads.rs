//! Leads for a person: a search as a table, one lead as a short summary, and the answers of
//! marking and erasing as one line each.

use chrono::DateTime;
use serde_json::Value;

use super::render::{Shown, arr, cell, count, num, str_of, when, when_short};
use super::table::{Fields, Table, clean};

/// How many of a lead's latest activities `lead show` lists.
pub const LAST_ACTIVITIES: usize = 10;

/// `GET /admin/leads`: one row per lead, and the cursor of the next page as a hint.
pub fn search(answer: &Value) -> Option<Shown> {
    let leads = arr(answer, "leads")?;
    let next = str_of(answer, "next");
    let hint = next.map(|n| format!("more: --cursor {n}"));
    if leads.is_empty() {
        let text = if next.is_some() { "No leads match in this page of the scan.\n" } else { "No leads match.\n" };
        return Some(Shown { text: text.to_string(), hint });
    }
    let mut t = Table::new()
        .whole("ID")
        .text("NAME", 28)
        .text("COMPANY", 24)
        .whole("STAGE")
        .whole("GRADE")
        .number("SCORE")
        .text("OWNER", 16)
        .whole("STATUS")
        .whole("CREATED (UTC)");
    for l in leads {
        let erased = l.get("erased").and_then(Value::as_bool) == Some(true);
        let name = match (str_of(l, "name"), str_of(l, "email")) {
            _ if erased => "(erased)".to_string(),
            (Some(n), _) => n.to_string(),
            (None, Some(e)) => e.to_string(),
            (None, None) => "—".to_string(),
        };
        let mut status = cell(l.get("status"));
        if l.get("valid").and_then(Value::as_bool) == Some(false) {
            status.push_str(", invalid");
        }
        t.row(vec![
            cell(l.get("id")),
            name,
            cell(l.get("company")),
            cell(l.get("lifecycle")),
            cell(l.get("grade")),
            cell(l.get("score")),
            cell(l.get("owner")),
            status,
            str_of(l, "created_at").map_or_else(|| "—".to_string(), when_short),
        ]);
    }
    Some(Shown { text: t.render(), hint })
}

fn text_of(v: &Value, key: &str) -> Option<String> {
    str_of(v, key).map(str::to_string)
}

/// The parts that are given, joined.
fn joined(parts: &[Option<String>], sep: &str) -> String {
    parts.iter().flatten().cloned().collect::<Vec<_>>().join(sep)
}

/// `GET /admin/leads/{id}`: who, how good, whose and why, and what happened lately.
pub fn show(answer: &Value) -> Option<Shown> {
    let id = str_of(answer, "id")?;
    let contact = answer.get("contact").filter(|c| c.is_object())?;
    let erased = answer.get("erased").and_then(Value::as_bool) == Some(true);
    let mut f = Fields::new();
    f.add("Lead", id);
    if erased {
        let at = str_of(answer, "erased_at").map(when).unwrap_or_default();
        f.add("Erased", format!("{at}: the personal data is gone").trim_start_matches(": ").to_string());
    } else {
        let name = joined(&[text_of(contact, "first_name"), text_of(contact, "last_name")], " ");
        f.add("Name", name);
        f.add("Email", cell(contact.get("email")));
        f.add("Phone", text_of(contact, "phone").unwrap_or_default());
        f.add("Company", joined(&[text_of(contact, "company"), text_of(contact, "job_title")], ", "));
        f.add("Country", joined(&[text_of(contact, "country"), text_of(contact, "time_zone")], ", "));
    }
    f.add("Status", cell(answer.get("status")));
    f.add("Lifecycle", cell(answer.get("lifecycle")));
    let score = answer.get("score").filter(|s| s.is_object());
    f.add("Score", score.map_or_else(|| "not scored".to_string(), score_line));
    let owner = answer.get("owner").filter(|o| o.is_object());
    f.add("Owner", owner.map_or_else(|| "nobody".to_string(), owner_line));
    if let Some(v) = answer.get("validity").filter(|v| str_of(v, "state") == Some("invalid")) {
        f.add("Invalid", problems(v.get("reasons")));
    }
    let warnings = problems(answer.get("warnings"));
    f.add("Warnings", warnings);
    f.add("Source", source_line(answer.get("attribution")));
    f.add("Consent", consent_line(answer.get("consent")));
    let created = str_of(answer, "created_at").map(when).unwrap_or_default();
    let submissions = answer.get("submissions").and_then(Value::as_u64).unwrap_or(1);
    f.add("Created", format!("{created} ({})", count(submissions, "submission", "submissions")));
    let mut text = f.render();

    if let Some(reasons) = score.and_then(|s| arr(s, "reasons")).filter(|r| !r.is_empty()) {
        text.push_str("\nWhy this score\n");
        let mut t = Table::new().number("POINTS").whole("RULE").whole("TYPE").whole("BECAUSE");
        for r in reasons {
            let points = r.get("points").and_then(Value::as_f64).map_or_else(|| "?".to_string(), signed);
            t.row(vec![points, cell(r.get("rule")), cell(r.get("type")), cell(r.get("explanation"))]);
        }
        text.push_str(&indented(&t.render()));
    }
    if let Some(why) = owner.and_then(|o| arr(o, "explanation")).filter(|e| !e.is_empty()) {
        let rep = owner.and_then(|o| str_of(o, "rep_id")).unwrap_or("this rep");
        text.push_str(&format!("\nWhy {}\n", clean(rep)));
        for line in why {
            text.push_str(&format!("  {}\n", clean(&cell(Some(line)))));
        }
    }
    if let Some(enrollments) = arr(answer, "enrollments").filter(|e| !e.is_empty()) {
        text.push_str("\nNurture\n");
        for e in enrollments {
            text.push_str(&format!("  {}\n", clean(&enrollment_line(e))));
        }
    }
    if let Some(activities) = arr(answer, "activities").filter(|a| !a.is_empty()) {
        let mut sorted: Vec<&Value> = activities.iter().collect();
        sorted.sort_by_key(|a| str_of(a, "at").and_then(|t| DateTime::parse_from_rfc3339(t).ok()));
        let shown = &sorted[sorted.len().saturating_sub(LAST_ACTIVITIES)..];
        if shown.len() < sorted.len() {
            text.push_str(&format!("\nLast {} of {} activities (--json for all)\n", shown.len(), sorted.len()));
        } else {
            text.push_str("\nActivities\n");
        }
        let mut t = Table::new().whole("AT (UTC)").whole("WHAT").without_header();
        for a in shown {
            t.row(vec![str_of(a, "at").map_or_else(|| "—".to_string(), when_short), activity(a)]);
        }
        text.push_str(&indented(&t.render()));
    }
    Some(Shown::text(text))
}

fn indented(text: &str) -> String {
    text.lines().map(|l| format!("  {l}\n")).collect()
}

/// Points with their sign: `+30`, `-5`, `+2.5`.
fn signed(x: f64) -> String {
    let n = num(x);
    if n.starts_with('-') || n == "0" { n } else { format!("+{n}") }
}

fn score_line(s: &Value) -> String {
    let part = |k: &str| s.get(k).and_then(Value::as_f64).map(num);
    let mut line = format!("{} (grade {})", part("total").unwrap_or_else(|| "?".into()), cell(s.get("grade")));
    if let (Some(fit), Some(behaviour)) = (part("fit"), part("behaviour")) {
        line.push_str(&format!(": fit {fit}, behaviour {behaviour}"));
    }
    line
}

fn owner_line(o: &Value) -> String {
    let rep = cell(o.get("rep_id"));
    let mut line = match str_of(o, "rep_name") {
        Some(name) => format!("{name} ({rep})"),
        None => rep,
    };
    if let Some(team) = str_of(o, "team_id") {
        line.push_str(&format!(", team {team}"));
    }
    if o.get("via_fallback").and_then(Value::as_bool) == Some(true) {
        line.push_str(", as the fallback owner");
    }
    if let Some(at) = str_of(o, "assigned_at") {
        line.push_str(&format!("; assigned {}", when(at)));
    }
    if let Some(due) = str_of(o, "sla_due_at") {
        line.push_str(&format!(", to contact by {}", when(due)));
    }
    line
}

fn problems(v: Option<&Value>) -> String {
    let list = v.and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    let lines: Vec<String> = list
        .iter()
        .map(|p| match (str_of(p, "field"), str_of(p, "message")) {
            (Some(f), Some(m)) => format!("{f}: {m}"),
            _ => p.to_string(),
        })
        .collect();
    lines.join("; ")
}

fn source_line(attribution: Option<&Value>) -> String {
    let Some(first) = attribution.and_then(|a| a.get("first_touch")) else {
        return String::new();
    };
    let utm = first.get("utm");
    let utm_part = |k: &str| utm.and_then(|u| text_of(u, k));
    let mut line = joined(&[utm_part("source"), utm_part("medium"), utm_part("campaign")], " / ");
    if let Some(form) = str_of(first, "form") {
        if !line.is_empty() {
            line.push_str(", ");
        }
        line.push_str(&format!("form {form}"));
    }
    line
}

fn consent_line(consent: Option<&Value>) -> String {
    let Some(c) = consent.filter(|c| c.is_object()) else {
        return "none recorded".to_string();
    };
    let given = c.get("given").and_then(Value::as_bool) == Some(true);
    let mut line = if given { "given".to_string() } else { "refused".to_string() };
    if let Some(at) = str_of(c, "at") {
        line.push_str(&format!(" {}", when(at)));
    }
    if let Some(source) = str_of(c, "source") {
        line.push_str(&format!(" on {source}"));
    }
    if let Some(wording) = str_of(c, "wording") {
        line.push_str(&format!(": “{wording}”"));
    }
    line
}

/// `welcome v1: active, step 2 due 2026-03-03 10:00 UTC`.
fn enrollment_line(e: &Value) -> String {
    let campaign = cell(e.get("campaign_id"));
    let version = cell(e.get("campaign_version"));
    // The state is `{"state": "stopped", "reason": …}` (an internally tagged enum), or a bare name.
    let state = e.get("state");
    let name = state.and_then(|s| s.as_str().or_else(|| str_of(s, "state"))).unwrap_or("?");
    let detail = match name {
        "active" => {
            let step = e.get("next_step").and_then(Value::as_u64).map(|s| s + 1);
            match (step, str_of(e, "next_due_at")) {
                (Some(s), Some(due)) => format!("active, step {s} due {}", when(due)),
                (Some(s), None) => format!("active, at step {s}"),
                _ => "active".to_string(),
            }
        }
        "stopped" => match state.and_then(|s| str_of(s, "reason")) {
            Some(reason) => format!("stopped: {reason}"),
            None => "stopped".to_string(),
        },
        other => other.to_string(),
    };
    format!("{campaign} v{version}: {detail}")
}

/// One activity of the trail in words.
fn activity(a: &Value) -> String {
    let s = |k: &str| str_of(a, k).unwrap_or("?").to_string();
    let opt = |k: &str| str_of(a, k).map(str::to_string);
    let kind = str_of(a, "kind").unwrap_or("?");
    match kind {
        "form_submission" => match opt("form") {
            Some(form) => format!("submitted form {form}"),
            None => "submitted a form".to_string(),
        },
        "validation_failed" => format!("failed validation: {}", problems(a.get("reasons"))),
        "scored" => format!("scored {} (grade {})", cell(a.get("total")), cell(a.get("grade"))),
        "stage_changed" => format!("stage {} → {}", s("from"), s("to")),
        "assigned" => match opt("team_id") {
            Some(team) => format!("assigned to {} (team {team})", s("rep_id")),
            None => format!("assigned to {}", s("rep_id")),
        },
        "email_sent" => format!("email sent: “{}”", s("subject")),
        "email_opened" => "email opened".to_string(),
        "email_clicked" => match opt("url") {
            Some(url) => format!("link clicked: {url}"),
            None => "link clicked".to_string(),
        },
        "email_delivered" => "email delivered".to_string(),
        "email_bounced" if a.get("permanent").and_then(Value::as_bool) == Some(true) => {
            "email bounced (permanent: no more email)".to_string()
        }
        "email_bounced" => "email bounced (transient)".to_string(),
        "email_complained" => "marked an email as spam".to_string(),
        "unsubscribed" => format!("unsubscribed ({})", s("via")),
        "status_changed" => {
            let mut line = format!("status {} → {}", s("from"), s("to"));
            if let Some(by) = opt("by") {
                line.push_str(&format!(" by {by}"));
            }
            if let Some(note) = opt("note") {
                line.push_str(&format!(": {note}"));
            }
            line
        }
        "sla_breached" => match opt("rerouted_to") {
            Some(to) => format!("not contacted in time by {}; moved to {to}", s("rep_id")),
            None => format!("not contacted in time by {}", s("rep_id")),
        },
        "enrolled" => format!("enrolled in {} v{}", s("campaign_id"), cell(a.get("version"))),
        "enrollment_ended" => format!("left {}: {}", s("campaign_id"), s("reason")),
        other => other.replace('_', " "),
    }
}

/// `POST /admin/leads/{id}/status`.
pub fn marked(answer: &Value) -> Option<Shown> {
    let id = str_of(answer, "lead_id")?;
    let status = str_of(answer, "status")?;
    let changed = answer.get("changed").and_then(Value::as_bool)?;
    let line = if changed {
        let mut line = format!("Lead {id} is now {status}");
        if let Some(from) = str_of(answer, "from") {
            line.push_str(&format!(" (was {from})"));
        }
        match answer.get("enrollments_stopped").and_then(Value::as_u64) {
            Some(n) if n > 0 => {
                line.push_str(&format!("; its nurture stopped ({}).", count(n, "enrollment", "enrollments")))
            }
            _ => line.push('.'),
        }
        line
    } else {
        format!("Lead {id} was already {status}: nothing changed.")
    };
    Some(Shown::line(clean(&line)))
}

/// `DELETE /admin/leads/{id}`.
pub fn erased(answer: &Value) -> Option<Shown> {
    let id = str_of(answer, "lead_id")?;
    if answer.get("already_erased").and_then(Value::as_bool) == Some(true) {
        return Some(Shown::line(clean(&format!("Lead {id} was erased already."))));
    }
    let n = |k: &str| answer.get(k).and_then(Value::as_u64).unwrap_or(0);
    let line = format!(
        "Lead {id} is erased: its personal data is gone ({} stopped, {} deleted); its figures and a suppression entry stay.",
        count(n("enrollments_stopped"), "enrollment", "enrollments"),
        count(n("emails_deleted"), "stored email", "stored emails"),
    );
    Some(Shown::line(clean(&line)))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn activities_read_as_sentences() {
        let a = json!({ "kind": "status_changed", "from": "new", "to": "lost", "by": "anna", "note": "a student" });
        assert_eq!(activity(&a), "status new → lost by anna: a student");
        assert_eq!(activity(&json!({ "kind": "something_new" })), "something new");
        let e = json!({ "campaign_id": "welcome", "campaign_version": 1, "next_step": 1,
            "next_due_at": "2026-03-03T10:00:00Z", "state": { "state": "active" } });
        assert_eq!(enrollment_line(&e), "welcome v1: active, step 2 due 2026-03-03 10:00 UTC");
        let e = json!({ "campaign_id": "welcome", "campaign_version": 2, "state": { "state": "stopped", "reason": "won" } });
        assert_eq!(enrollment_line(&e), "welcome v2: stopped: won");
    }

    #[test]
    fn points_carry_their_sign() {
        assert_eq!(signed(30.0), "+30");
        assert_eq!(signed(-5.0), "-5");
        assert_eq!(signed(2.456), "+2.46");
        assert_eq!(signed(0.0), "0");
    }

    #[test]
    fn a_search_page_with_more_says_how_to_go_on() {
        let answer = json!({ "leads": [], "next": "200:abc", "scanned": 5000 });
        let shown = search(&answer);
        assert_eq!(shown.as_ref().and_then(|s| s.hint.as_deref()), Some("more: --cursor 200:abc"));
        let none = search(&json!({ "leads": [], "next": null, "scanned": 3 }));
        assert_eq!(none.map(|s| s.text).as_deref(), Some("No leads match.\n"));
    }
}
