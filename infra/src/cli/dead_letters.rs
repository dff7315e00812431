//! `leadflow dead-letters`: the stages' dead letters with why each failed, and their redrive.

use clap::{Args, Subcommand, ValueEnum};
use serde_json::Value;

use super::render::{Shown, arr, cell, str_of};
use super::table::Table;

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum StageArg {
    Validate,
    Score,
    Route,
}

impl StageArg {
    pub fn as_str(self) -> &'static str {
        match self {
            StageArg::Validate => "validate",
            StageArg::Score => "score",
            StageArg::Route => "route",
        }
    }
}

/// `leadflow dead-letters [--stage S] [--limit N]`, or one of the subcommands.
#[derive(Args, Debug)]
pub struct DeadLetterArgs {
    /// Only this stage's dead letters (default: every stage's).
    #[arg(long, value_enum)]
    pub stage: Option<StageArg>,
    /// At most this many per stage (1 to 100; default 20).
    #[arg(long)]
    pub limit: Option<u32>,
    #[command(subcommand)]
    pub action: Option<DeadLetterCommand>,
}

#[derive(Subcommand, Debug)]
pub enum DeadLetterCommand {
    /// Puts every dead letter of a stage back on its queue, to be handled again (on AWS by an
    /// SQS move task, which takes a moment).
    Redrive {
        #[arg(long, value_enum)]
        stage: StageArg,
    },
}

/// Shown for a dead letter whose failures left no reason: every invocation that received it
/// ended without answering (a crash, a timeout), or the recorded reason expired.
const NO_REASON: &str = "(none recorded: its invocations ended without answering)";

/// `GET /admin/dead-letters`: a table per stage, with the reason of each.
pub fn list(answer: &Value) -> Option<Shown> {
    let stages = arr(answer, "stages")?;
    let mut text = String::new();
    let mut hint = None;
    for stage in stages {
        let name = str_of(stage, "stage")?;
        let total = stage.get("total").and_then(Value::as_u64)?;
        let items = arr(stage, "items")?;
        if total == 0 {
            text.push_str(&format!("{name}: no dead letters\n"));
            continue;
        }
        text.push_str(&format!("{name}: {total} dead letter(s)\n"));
        let mut t = Table::new()
            .whole("MESSAGE")
            .whole("LEAD")
            .text("KIND", 16)
            .number("RECEIVES")
            .text("DEAD SINCE", 20)
            .text("REASON", 80);
        for item in items {
            t.row(vec![
                cell(item.get("message_id")),
                cell(item.get("lead_id")),
                cell(item.get("kind")),
                cell(item.get("receive_count")),
                cell(item.get("dead_at")),
                item.get("reason").and_then(Value::as_str).map_or_else(|| NO_REASON.to_string(), str::to_string),
            ]);
        }
        text.push_str(&t.render());
        if (items.len() as u64) < total {
            text.push_str(&format!("… and {} more\n", total - items.len() as u64));
        }
        hint = Some(format!("put them back with: leadflow dead-letters redrive --stage {name}"));
    }
    Some(Shown { text, hint })
}

/// `POST /admin/dead-letters/{stage}/redrive`: one line.
pub fn redriven(answer: &Value) -> Option<Shown> {
    let stage = str_of(answer, "stage")?;
    let messages = answer.get("messages").and_then(Value::as_u64)?;
    let done = answer.get("done").and_then(Value::as_bool)?;
    Some(Shown::line(match (messages, done) {
        (0, _) => format!("{stage}: no dead letters to redrive"),
        (n, true) => format!("{stage}: {n} dead letter(s) back on the queue"),
        (n, false) => format!(
            "{stage}: moving about {n} dead letter(s) back to the queue (SQS move task {})",
            str_of(answer, "task").unwrap_or("started")
        ),
    }))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_listing_shows_each_reason_and_how_to_redrive() {
        let answer = json!({"stages": [
            {"stage": "validate", "total": 0, "items": []},
            {"stage": "route", "total": 2, "items": [
                {"message_id": "7", "stage": "route", "lead_id": "01KA0000000000000000000000", "kind": "route",
                 "reason": "the lead store is unavailable", "receive_count": 5, "dead_at": "2026-03-09T10:00:00Z"}
            ]}
        ]});
        let shown = list(&answer).unwrap_or_else(|| panic!("not shown"));
        assert!(shown.text.contains("validate: no dead letters"), "{}", shown.text);
        assert!(shown.text.contains("the lead store is unavailable"), "{}", shown.text);
        assert!(shown.text.contains("… and 1 more"), "{}", shown.text);
        assert_eq!(shown.hint.as_deref(), Some("put them back with: leadflow dead-letters redrive --stage route"));
    }

    fn parse(args: &[&str]) -> DeadLetterArgs {
        use clap::Parser;
        match super::super::Cli::try_parse_from(["leadflow", "dead-letters"].iter().chain(args)) {
            Ok(super::super::Cli { command: super::super::Command::DeadLetters { args, .. } }) => args,
            Ok(_) => panic!("not the dead-letters command"),
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn the_command_lists_by_default_and_redrives_one_named_stage() {
        let all = parse(&[]);
        assert!(all.stage.is_none() && all.limit.is_none() && all.action.is_none());
        let one = parse(&["--stage", "route", "--limit", "5", "--json"]);
        assert!(matches!((one.stage, one.limit, one.action), (Some(StageArg::Route), Some(5), None)));
        let redrive = parse(&["redrive", "--stage", "score"]);
        assert!(matches!(redrive.action, Some(DeadLetterCommand::Redrive { stage: StageArg::Score })));
        use clap::Parser;
        assert!(
            super::super::Cli::try_parse_from(["leadflow", "dead-letters", "redrive"]).is_err(),
            "a stage is needed"
        );
        assert!(super::super::Cli::try_parse_from(["leadflow", "dead-letters", "--stage", "nurture"]).is_err());
    }

    #[test]
    fn a_redrive_on_aws_names_its_task() {
        let shown = redriven(&json!({"stage": "score", "messages": 3, "done": false, "task": "h-1"}));
        assert_eq!(
            shown.map(|s| s.text).as_deref(),
            Some("score: moving about 3 dead letter(s) back to the queue (SQS move task h-1)\n")
        );
    }
}
