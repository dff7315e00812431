//! Nurture campaigns and the drip state machine of one enrollment.
//!
//! A campaign is a versioned document: entry criteria, a send window in the lead's own time zone,
//! a schedule, and steps (send, wait, branch, exit). An enrollment finishes the version it
//! started; pausing and scheduling are read from the latest version, so they apply to everyone.//!
//! This file holds the document and its compiled form; `compile` checks a document into a
//! [`CompiledCampaign`] and renders its emails, `drip` is the state machine that runs it.

mod compile;
mod drip;

use chrono::{DateTime, Datelike, NaiveTime, Utc, Weekday};
use minijinja::Environment;
use serde::{Deserialize, Serialize};

use crate::local_time::{add_days, at_local};
use crate::model::{Grade, Lifecycle};
use crate::rules::{CompiledCondition, Condition};
pub use crate::wait::{FrequencyCap, Wait};
use crate::zone::Zone;
pub use drip::{Control, Decision, Facts, PAUSED_RECHECK, stopped};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Campaign {
    /// Letters, digits, `-` and `_`: it is part of email keys and SES tags.
    pub id: String,
    pub name: String,
    /// Set by the store when the campaign is applied; a file's own campaigns say it themselves.
    #[serde(default = "first_version")]
    pub version: u32,
    #[serde(default)]
    pub status: CampaignStatus,
    #[serde(default)]
    pub schedule: Schedule,
    #[serde(default)]
    pub entry: Entry,
    /// When drip emails may go out, in each lead's own time zone. `None`: any time.
    #[serde(default)]
    pub send_window: Option<SendWindow>,
    /// The zone of leads whose own cannot be told from their time zone, country or phone.
    #[serde(default = "utc_name")]
    pub time_zone: String,
    /// What stops a lead's enrollment besides opt-out, bounce, complaint, won, lost and erasure
    /// (which always do).
    #[serde(default = "default_stop_on")]
    pub stop_on: Vec<StopOn>,
    pub steps: Vec<Step>,
}

fn first_version() -> u32 {
    1
}
fn utc_name() -> String {
    "UTC".into()
}
fn default_stop_on() -> Vec<StopOn> {
    vec![StopOn::Assigned, StopOn::Contacted]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum CampaignStatus {
    #[default]
    Active,
    Paused,
}

/// When a campaign runs: before `start` nothing is sent (enrolled leads wait), from `end` on its
/// enrollments stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    pub start: Option<DateTime<Utc>>,
    pub end: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopOn {
    /// The lead was assigned to a rep.
    Assigned,
    /// The owner logged a first touch (status `contacted`).
    Contacted,
}

/// Which leads a campaign takes. Every list given must contain the lead's value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// Only leads at this stage (below MQL leads are `lead`).
    pub lifecycle: Option<Lifecycle>,
    #[serde(default)]
    pub grades: Vec<Grade>,
    /// First-touch `utm_source`.
    #[serde(default)]
    pub sources: Vec<String>,
    /// The form of the first touch.
    #[serde(default)]
    pub forms: Vec<String>,
    /// Only leads who gave consent.
    #[serde(default)]
    pub requires_consent: bool,
    #[serde(default)]
    pub when: Vec<Condition>,
}

/// Days and hours, local to the lead.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendWindow {
    /// `mon` … `sun`.
    pub days: Vec<Weekday>,
    /// `HH:MM`, local.
    pub start: NaiveTime,
    /// `HH:MM`, local, after `start`.
    pub end: NaiveTime,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    /// Sends an email (`subject`, `text`, `html`).
    #[default]
    Send,
    /// Only waits (`wait`).
    Wait,
    /// Goes to `then` when `if` holds, else to `else` (each defaults to the next step).
    Branch,
    /// Ends the enrollment.
    Exit,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// Letters, digits, `-` and `_`; unique in the campaign.
    pub id: String,
    #[serde(rename = "type", default)]
    pub kind: StepKind,
    /// How long after the previous step (after enrollment, for the first) this step runs.
    #[serde(default)]
    pub wait: Option<Wait>,
    #[serde(default)]
    pub subject: Option<String>,
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub html: Option<String>,
    #[serde(rename = "if", default)]
    pub condition: Option<BranchIf>,
    #[serde(default)]
    pub then: Option<String>,
    #[serde(rename = "else", default)]
    pub otherwise: Option<String>,
}

/// What a branch tests: exactly one of these. (A struct rather than an enum, so that YAML,
/// JSON and TOML all write it the same way: `if: { opened: hello }`.)
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct BranchIf {
    /// The lead opened the email of this (earlier) step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opened: Option<String>,
    /// The lead clicked a link in the email of this (earlier) step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clicked: Option<String>,
    /// The lead's score is above this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score_above: Option<f64>,
    /// A field rule, as in entry criteria and scoring.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<Condition>,
}

impl SendWindow {
    /// The first instant at or after `t` inside the window, for a lead in `tz`.
    pub fn next_open(&self, t: DateTime<Utc>, tz: &Zone) -> DateTime<Utc> {
        let today = tz.wall_clock_or_utc(t).date();
        for n in 0..=7 {
            let day = add_days(today, n);
            if !self.days.contains(&day.weekday()) {
                continue;
            }
            let open = at_local(tz, day, self.start);
            let close = at_local(tz, day, self.end);
            if t < close {
                return open.max(t);
            }
        }
        // Unreachable with at least one day (checked at compile): a week always has it.
        t
    }
}

/// A campaign checked and ready: rules compiled, templates parsed, step ids resolved.
#[derive(Debug)]
pub struct CompiledCampaign {
    pub campaign: Campaign,
    entry_when: Vec<CompiledCondition>,
    tz: Zone,
    steps: Vec<CompiledStep>,
    templates: Environment<'static>,
}

#[derive(Debug)]
enum CompiledStep {
    Send { wait: Option<Wait> },
    Wait { wait: Option<Wait> },
    Branch { wait: Option<Wait>, test: Test, then: usize, otherwise: usize },
    Exit { wait: Option<Wait> },
}

#[derive(Debug)]
enum Test {
    Opened(String),
    Clicked(String),
    ScoreAbove(f64),
    Field(Vec<CompiledCondition>),
}

impl CompiledStep {
    fn wait(&self) -> Option<Wait> {
        match self {
            CompiledStep::Send { wait }
            | CompiledStep::Wait { wait }
            | CompiledStep::Branch { wait, .. }
            | CompiledStep::Exit { wait } => *wait,
        }
    }
}
