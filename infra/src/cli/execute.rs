//! Running an admin command: one call to the admin API, its answer as JSON or for a person.

use serde_json::{Value, json};

use super::dead_letters::{DeadLetterArgs, DeadLetterCommand};
use super::render::{Format, Shown, View, show};
use super::{
    ApiCall, CallError, CampaignCommand, ConsoleCommand, ExportFormat, FunnelBy, LeadCommand, MarkStatus, Output,
    RepCommand, ReportCommand, TeamCommand,
};
use crate::client::AdminClient;

/// An RFC 3339 time as given, or a date (`2026-03-09`) as its midnight UTC.
fn time_arg(name: &str, raw: &str) -> Result<String, CallError> {
    let raw = raw.trim();
    if chrono::DateTime::parse_from_rfc3339(raw).is_ok() {
        return Ok(raw.to_string());
    }
    match chrono::NaiveDate::parse_from_str(raw, "%Y-%m-%d") {
        Ok(d) => Ok(format!("{d}T00:00:00Z")),
        Err(_) => Err(CallError::local(
            "invalid_argument",
            format!("--{name}: `{raw}` is neither an RFC 3339 time (2026-03-09T09:00:00Z) nor a date (2026-03-09)"),
        )),
    }
}

fn opt_time(name: &str, raw: &Option<String>) -> Result<Option<String>, CallError> {
    raw.as_deref().map(|r| time_arg(name, r)).transpose()
}

/// Why a command for the local stack only is refused for a deployment.
pub(super) fn local_only() -> CallError {
    CallError::local("local_only", "console links are for the local stack; on AWS sign in through the console URL")
}

/// Runs one admin API command; its answer comes back as `format` says: the API's JSON, or the
/// text a person reads (as of the machine's clock, for "out of office until …" and the like).
pub async fn execute(client: &AdminClient, call: ApiCall, format: Format) -> Result<Output, CallError> {
    let answer = |view: View, v: Value| -> Result<Output, CallError> {
        Ok(match format {
            Format::Json => Output::Json(v),
            Format::Human => {
                let Shown { text, hint } = show(view, &v, chrono::Utc::now());
                Output::Human { text, hint }
            }
        })
    };
    match call {
        ApiCall::Campaign(c) => match c {
            CampaignCommand::Apply { file } => {
                let text = std::fs::read_to_string(&file)
                    .map_err(|e| CallError::local("unreadable_file", format!("cannot read {}: {e}", file.display())))?;
                let file_format =
                    match file.extension().and_then(|x| x.to_str()).map(str::to_ascii_lowercase).as_deref() {
                        Some("json") => "json",
                        Some("toml") => "toml",
                        _ => "yaml",
                    };
                answer(View::CampaignStored, client.campaign_apply(text, file_format).await?)
            }
            CampaignCommand::List => answer(View::CampaignList, client.campaigns().await?),
            CampaignCommand::Show { id } => answer(View::CampaignShow, client.campaign(&id).await?),
            CampaignCommand::Pause { id } => answer(View::CampaignStored, client.campaign_pause(&id).await?),
            CampaignCommand::Resume { id } => answer(View::CampaignStored, client.campaign_resume(&id).await?),
            CampaignCommand::Schedule { id, start, end } => {
                let (start, end) = (opt_time("start", &start)?, opt_time("end", &end)?);
                answer(View::CampaignStored, client.campaign_schedule(&id, start.as_deref(), end.as_deref()).await?)
            }
            CampaignCommand::Migrate { id, from_version } => {
                answer(View::CampaignMigrated, client.campaign_migrate(&id, from_version).await?)
            }
            CampaignCommand::Preview { id, lead, step, version } => {
                let version = version.map(|v| v.to_string());
                answer(View::CampaignPreview, client.campaign_preview(&id, &lead, &step, version.as_deref()).await?)
            }
        },
        ApiCall::Rep(r) => match r {
            RepCommand::List => answer(View::RepList, client.reps().await?),
            RepCommand::Show { id } => answer(View::RepShow, client.rep(&id).await?),
            RepCommand::Set {
                id,
                name,
                email,
                time_zone,
                capacity,
                no_capacity,
                active,
                days,
                start,
                end,
                any_time,
            } => {
                let mut patch = serde_json::Map::new();
                let mut put = |k: &str, v: Value| {
                    patch.insert(k.to_string(), v);
                };
                if let Some(v) = name {
                    put("name", json!(v));
                }
                if let Some(v) = email {
                    put("email", json!(v));
                }
                if let Some(v) = time_zone {
                    put("time_zone", json!(v));
                }
                if let Some(v) = capacity {
                    put("capacity", json!(v));
                }
                if no_capacity {
                    put("capacity", Value::Null);
                }
                if let Some(v) = active {
                    put("active", json!(v));
                }
                if let (Some(days), Some(start), Some(end)) = (days, start, end) {
                    put("working_hours", json!({ "days": days, "start": start, "end": end }));
                }
                if any_time {
                    put("working_hours", Value::Null);
                }
                if patch.is_empty() {
                    return Err(CallError::local("nothing_to_set", "give at least one field, e.g. --capacity 20"));
                }
                answer(View::RepSaved, client.rep_set(&id, Value::Object(patch)).await?)
            }
            RepCommand::Ooo { id, from, until, clear } => {
                if clear {
                    return answer(View::RepAbsence, client.rep_back(&id).await?);
                }
                match (opt_time("from", &from)?, opt_time("until", &until)?) {
                    (Some(from), Some(until)) => answer(View::RepAbsence, client.rep_ooo(&id, &from, &until).await?),
                    _ => Err(CallError::local("invalid_argument", "give --from and --until, or --clear")),
                }
            }
        },
        ApiCall::Lead(l) => match l {
            LeadCommand::Show { id } => answer(View::LeadShow, client.lead_show(&id).await?),
            LeadCommand::Find { email } => answer(View::LeadShow, client.lead_find(&email).await?),
            LeadCommand::Search { filters, limit, cursor } => {
                let mut f = filters.filters();
                f.limit = limit.map(|l| l.to_string());
                f.cursor = cursor;
                answer(View::LeadSearch, client.lead_search(&f).await?)
            }
            LeadCommand::Mark { id, status, by, note } => {
                let status = match status {
                    MarkStatus::Contacted => "contacted",
                    MarkStatus::Won => "won",
                    MarkStatus::Lost => "lost",
                };
                answer(View::LeadMarked, client.lead_mark(&id, status, by.as_deref(), note.as_deref()).await?)
            }
            LeadCommand::Export { format: export_format, filters, output } => {
                let export_format = match export_format {
                    ExportFormat::Csv => "csv",
                    ExportFormat::Json => "json",
                };
                let text = client.lead_export(export_format, &filters.filters()).await?;
                match output {
                    None => Ok(Output::Text(text)),
                    Some(path) => {
                        std::fs::write(&path, &text).map_err(|e| {
                            CallError::local("unwritable_file", format!("cannot write {}: {e}", path.display()))
                        })?;
                        Ok(Output::Note(format!("exported to {}", path.display())))
                    }
                }
            }
            LeadCommand::Erase { id, yes } => {
                if !yes && !confirm_erasure(&id) {
                    return Err(CallError::local(
                        "not_confirmed",
                        "erasure cannot be undone; confirm it by typing the lead id, or pass --yes",
                    ));
                }
                answer(View::LeadErased, client.lead_erase(&id).await?)
            }
        },
        ApiCall::Report(ReportCommand::Funnel { by, since, until }) => {
            let by = match by {
                FunnelBy::Source => "source",
                FunnelBy::Campaign => "campaign",
                FunnelBy::Week => "week",
            };
            let (since, until) = (opt_time("since", &since)?, opt_time("until", &until)?);
            answer(View::Funnel, client.funnel(by, since.as_deref(), until.as_deref()).await?)
        }
        ApiCall::Team(t) => match t {
            TeamCommand::List => answer(View::TeamList, client.teams().await?),
            TeamCommand::Show { id } => answer(View::TeamShow, client.team(&id).await?),
        },
        ApiCall::DeadLetters(DeadLetterArgs { action: Some(DeadLetterCommand::Redrive { stage }), .. }) => {
            answer(View::Redriven, client.dead_letters_redrive(stage.as_str()).await?)
        }
        ApiCall::DeadLetters(DeadLetterArgs { stage, limit, action: None }) => {
            let limit = limit.map(|l| l.to_string());
            answer(View::DeadLetters, client.dead_letters(stage.map(|s| s.as_str()), limit.as_deref()).await?)
        }
        ApiCall::Console(ConsoleCommand::Link { as_email, next }) => {
            // The endpoint exists only on the local stack; a deployment's console signs people
            // in itself, and a signed request must not go looking for it.
            if client.signs() {
                return Err(local_only());
            }
            answer(View::SignInLink, client.sign_in_link(as_email.as_deref(), next.as_deref()).await?)
        }
    }
}

/// Asks on a terminal for the lead id again; anywhere else (a script) the answer is no.
fn confirm_erasure(id: &str) -> bool {
    use std::io::{BufRead, IsTerminal, Write};
    if !std::io::stdin().is_terminal() {
        return false;
    }
    eprint!("Erase lead {id}'s personal data for good? Type the lead id to confirm: ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).is_ok() && line.trim() == id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_stand_for_midnight_utc() {
        assert_eq!(time_arg("from", "2026-03-09").ok().as_deref(), Some("2026-03-09T00:00:00Z"));
        assert_eq!(time_arg("from", "2026-03-09T09:30:00+01:00").ok().as_deref(), Some("2026-03-09T09:30:00+01:00"));
        assert!(time_arg("from", "next monday").is_err());
    }
}
