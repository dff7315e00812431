//! A campaign and a drip email's preview, for a person.

use serde_json::Value;

use super::render::{Shown, arr, cell, condition, days, hhmm, num, schedule, str_of, when};
use super::table::{Fields, Table, clean, clean_lines};

/// A wait as the API writes it (`172800s`, `next weekday at 10:00`), as a campaign file would.
fn wait(v: Option<&Value>) -> String {
    let Some(raw) = v.and_then(Value::as_str) else {
        return "—".to_string();
    };
    let Some(secs) = raw.strip_suffix('s').and_then(|n| n.parse::<i64>().ok()) else {
        return raw.to_string();
    };
    const UNITS: &[(i64, &str)] = &[(604_800, "w"), (86_400, "d"), (3_600, "h"), (60, "m")];
    match UNITS.iter().find(|(size, _)| secs != 0 && secs % size == 0) {
        Some((size, unit)) => format!("{}{unit}", secs / size),
        None => format!("{secs}s"),
    }
}

/// What a step does, in a few words.
fn step_does(step: &Value) -> String {
    match str_of(step, "type").unwrap_or("send") {
        "send" => match str_of(step, "subject") {
            Some(s) => format!("sends “{s}”"),
            None => "sends an email".to_string(),
        },
        "wait" => "waits".to_string(),
        "exit" => "ends the enrollment".to_string(),
        "branch" => {
            let test = step.get("if").map_or_else(|| "?".to_string(), branch_test);
            let then = str_of(step, "then").unwrap_or("the next step");
            let otherwise = str_of(step, "else").unwrap_or("the next step");
            format!("if {test}: {then}, else {otherwise}")
        }
        other => other.to_string(),
    }
}

fn branch_test(test: &Value) -> String {
    if let Some(s) = str_of(test, "opened") {
        return format!("opened {s}");
    }
    if let Some(s) = str_of(test, "clicked") {
        return format!("clicked in {s}");
    }
    if let Some(n) = test.get("score_above").and_then(Value::as_f64) {
        return format!("score above {}", num(n));
    }
    match test.get("field") {
        Some(c) => condition(c),
        None => test.to_string(),
    }
}

fn entry(e: Option<&Value>) -> String {
    let Some(e) = e.filter(|e| e.is_object()) else {
        return "every lead".to_string();
    };
    let list = |key: &str| -> Option<String> {
        let items: Vec<String> = arr(e, key)?.iter().map(|i| cell(Some(i))).collect();
        (!items.is_empty()).then(|| items.join(", "))
    };
    let mut parts = Vec::new();
    if let Some(l) = str_of(e, "lifecycle") {
        parts.push(format!("lifecycle {l}"));
    }
    if let Some(g) = list("grades") {
        parts.push(format!("grade {g}"));
    }
    if let Some(s) = list("sources") {
        parts.push(format!("source {s}"));
    }
    if let Some(f) = list("forms") {
        parts.push(format!("form {f}"));
    }
    if e.get("requires_consent").and_then(Value::as_bool) == Some(true) {
        parts.push("consent given".to_string());
    }
    parts.extend(arr(e, "when").into_iter().flatten().map(condition));
    if parts.is_empty() { "every lead".to_string() } else { parts.join("; ") }
}

/// `GET /admin/campaigns/{id}`: the latest version in words, its steps and its versions.
pub fn show(answer: &Value) -> Option<Shown> {
    let c = answer.get("campaign").filter(|c| c.is_object())?;
    let steps = arr(c, "steps")?;
    let mut f = Fields::new();
    f.add("Campaign", cell(c.get("id")));
    f.add("Name", cell(c.get("name")));
    let saved = match (str_of(answer, "saved_at"), str_of(answer, "source")) {
        (Some(at), _) => format!("saved {}", when(at)),
        (None, Some(source)) => source.to_string(),
        (None, None) => String::new(),
    };
    f.add("Version", format!("{} ({saved})", cell(answer.get("version").or(c.get("version")))));
    f.add("Status", cell(c.get("status")));
    f.add("Schedule", schedule(c.get("schedule")));
    let window = match c.get("send_window").filter(|w| !w.is_null()) {
        Some(w) => {
            format!("{} {}–{}, in each lead's time zone", days(w.get("days")), hhmm(w.get("start")), hhmm(w.get("end")))
        }
        None => "any time".to_string(),
    };
    f.add("Sends", window);
    f.add("Time zone", format!("{} (for leads whose own is unknown)", cell(c.get("time_zone"))));
    f.add("Takes", entry(c.get("entry")));
    let stop: Vec<String> = arr(c, "stop_on").map(|s| s.iter().map(|x| cell(Some(x))).collect()).unwrap_or_default();
    let always = "opt-out, bounce, complaint, won, lost, erasure";
    f.add("Stops on", if stop.is_empty() { always.to_string() } else { format!("{}, {always}", stop.join(", ")) });
    let mut text = f.render();
    text.push('\n');
    let mut t = Table::new().number("#").whole("STEP").whole("TYPE").whole("WAIT").text("WHAT IT DOES", 70);
    for (i, s) in steps.iter().enumerate() {
        let kind = str_of(s, "type").unwrap_or("send");
        t.row(vec![(i + 1).to_string(), cell(s.get("id")), kind.to_string(), wait(s.get("wait")), step_does(s)]);
    }
    if t.is_empty() {
        text.push_str("No steps.\n");
    } else {
        text.push_str(&t.render());
    }
    let versions = arr(answer, "versions").filter(|v| v.len() > 1);
    if let Some(versions) = versions {
        text.push('\n');
        let mut t = Table::new().number("VERSION").whole("STATUS").whole("SAVED");
        for v in versions {
            t.row(vec![cell(v.get("version")), cell(v.get("status")), str_of(v, "saved_at").map_or("—".into(), when)]);
        }
        text.push_str(&t.render());
    }
    Some(Shown::text(text))
}

/// `{"email", "name"}` as a mail client writes it: `Acme Sales <sales@acme.example>`.
fn mailbox(v: Option<&Value>) -> String {
    match v.map(|m| (str_of(m, "name"), str_of(m, "email"))) {
        Some((Some(name), Some(email))) => format!("{name} <{email}>"),
        Some((None, Some(email))) => email.to_string(),
        _ => cell(v),
    }
}

/// `GET /admin/campaigns/{id}/preview`: the email as it would go out, text part.
pub fn preview(answer: &Value) -> Option<Shown> {
    let subject = str_of(answer, "subject")?;
    let mut f = Fields::new();
    f.add("From", mailbox(answer.get("from")));
    f.add("To", mailbox(answer.get("to")));
    f.add("Subject", subject);
    let mut text = f.render();
    text.push('\n');
    text.push_str(&clean_lines(str_of(answer, "text").unwrap_or("")));
    text.push('\n');
    let about = format!(
        "Campaign {} version {}, step {}, for lead {}; --json for the HTML part and the headers.",
        cell(answer.get("campaign")),
        cell(answer.get("version")),
        cell(answer.get("step")),
        cell(answer.get("lead_id")),
    );
    Some(Shown { text, hint: Some(clean(&about)) })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_preview_shows_the_mail_as_a_mail_client_would() {
        let answer = json!({ "campaign": "welcome", "version": 1, "step": "hello", "lead_id": "01K",
            "from": { "email": "sales@acme.example", "name": "Acme Sales" }, "to": { "email": "joe@gmail.com" },
            "subject": "Welcome, Joe", "text": "Hi Joe,\r\n\r\nthanks.", "html": "<p>Hi</p>" });
        let shown = preview(&answer);
        assert_eq!(
            shown.as_ref().map(|s| s.text.as_str()),
            Some(
                "From     Acme Sales <sales@acme.example>\nTo       joe@gmail.com\nSubject  Welcome, Joe\n\nHi Joe,\n\nthanks.\n"
            )
        );
        assert!(shown.and_then(|s| s.hint).is_some_and(|h| h.contains("--json for the HTML part")));
    }

    #[test]
    fn waits_read_as_in_a_campaign_file() {
        assert_eq!(wait(Some(&json!("172800s"))), "2d");
        assert_eq!(wait(Some(&json!("5400s"))), "90m");
        assert_eq!(wait(Some(&json!("604800s"))), "1w");
        assert_eq!(wait(Some(&json!("0s"))), "0s");
        assert_eq!(wait(Some(&json!("next weekday at 10:00"))), "next weekday at 10:00");
        assert_eq!(wait(None), "—");
    }

    #[test]
    fn a_campaign_shows_its_steps_in_order() {
        let answer = json!({
            "version": 2, "source": "document", "saved_at": "2026-03-02T10:00:00Z",
            "campaign": {
                "id": "webinar", "name": "Webinar follow-up", "version": 2, "status": "active",
                "schedule": { "start": null, "end": null }, "time_zone": "UTC", "stop_on": ["assigned"],
                "entry": { "lifecycle": "lead", "forms": ["webinar"], "requires_consent": true },
                "send_window": { "days": ["Mon", "Fri"], "start": "09:00:00", "end": "17:00:00" },
                "steps": [
                    { "id": "recording", "type": "send", "wait": null, "subject": "The recording" },
                    { "id": "opened-it", "type": "branch", "wait": "next weekday at 10:00",
                      "if": { "opened": "recording" }, "then": "done", "else": null },
                    { "id": "done", "type": "exit", "wait": "86400s" }
                ]
            },
            "versions": [{ "version": 2, "status": "active", "saved_at": "2026-03-02T10:00:00Z" },
                         { "version": 1, "status": "active", "saved_at": "2026-03-01T10:00:00Z" }]
        });
        let text = show(&answer).map(|s| s.text).unwrap_or_default();
        assert!(text.contains("Version    2 (saved 2026-03-02 10:00 UTC)\n"), "{text}");
        assert!(text.contains("Sends      mon,fri 09:00–17:00, in each lead's time zone\n"), "{text}");
        assert!(text.contains("Takes      lifecycle lead; form webinar; consent given\n"), "{text}");
        assert!(text.contains("#  STEP       TYPE    WAIT                   WHAT IT DOES\n"), "{text}");
        assert!(text.contains("1  recording  send    —                      sends “The recording”\n"), "{text}");
        assert!(
            text.contains(
                "2  opened-it  branch  next weekday at 10:00  if opened recording: done, else the next step\n"
            ),
            "{text}"
        );
        assert!(text.contains("3  done       exit    1d                     ends the enrollment\n"), "{text}");
        assert!(text.contains("VERSION  STATUS  SAVED\n"), "{text}");
    }
}
