//! Nurture campaigns and the drip state machine of one enrollment.
//!
//! A campaign is a versioned document: entry criteria, a send window in the lead's own time zone,
//! a schedule, and steps (send, wait, branch, exit). An enrollment finishes the version it
//! started; pausing and scheduling are read from the latest version, so they apply to everyone.

use std::collections::BTreeSet;

use chrono::{DateTime, Datelike, Duration, NaiveTime, Utc, Weekday};
use chrono_tz::Tz;
use minijinja::{Environment, context};
use serde::{Deserialize, Serialize};

use crate::email::{LeadView, RenderError, one_line, untrack_links_to};
use crate::error::ConfigError;
use crate::local_time::{add_days, at_local, lead_zone};
use crate::model::{Enrollment, EnrollmentState, Grade, Lead, Lifecycle, SalesStatus};
use crate::outgoing::{EmailCategory, Mailbox, OutgoingEmail};
use crate::rules::{CompiledCondition, Condition, all_match, compile_all};
use crate::settings::Settings;
pub use crate::wait::{FrequencyCap, Wait};

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
    pub fn next_open(&self, t: DateTime<Utc>, tz: Tz) -> DateTime<Utc> {
        let local = t.with_timezone(&tz);
        let today = local.date_naive();
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
    tz: Tz,
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

fn is_token(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// The footer every drip email ends with, whatever its template says (CAN-SPAM, RFC 8058).
/// Its link is left out of SES click tracking: a mail scanner opening it would otherwise count
/// as the lead's engagement and raise the score.
const FOOTER: &str = "footer.html";
const FOOTER_HTML: &str = "<hr><p style=\"color:#888;font-size:12px\">{{ postal_address }}<br>\
                           <a ses:no-track href=\"{{ unsubscribe_url }}\">Unsubscribe</a></p>";

fn template_name(step: usize, part: &str) -> String {
    format!("{step}.{part}")
}

impl Campaign {
    /// Reads a campaign from YAML, JSON or TOML text (by `format`: `yaml`, `json`, `toml`).
    pub fn parse(text: &str, format: &str) -> Result<Campaign, ConfigError> {
        let parsed = match format {
            "json" => serde_json::from_str(text).map_err(|e| e.to_string()),
            "toml" => toml::from_str(text).map_err(|e| e.to_string()),
            _ => serde_yaml_ng::from_str(text).map_err(|e| e.to_string()),
        };
        parsed.map_err(|message| ConfigError::Parse { file: format!("campaign ({format})"), message })
    }

    /// Checks everything that can be checked before a lead is enrolled; errors name the field.
    pub fn compile(&self) -> Result<CompiledCampaign, ConfigError> {
        let invalid = |field: String, message: String| ConfigError::Invalid { what: field, message };
        if !is_token(&self.id) {
            return Err(invalid("id".into(), "use 1 to 64 letters, digits, `-` or `_`".into()));
        }
        if self.steps.is_empty() {
            return Err(invalid("steps".into(), "a campaign needs at least one step".into()));
        }
        let tz: Tz = self
            .time_zone
            .parse()
            .map_err(|_| invalid("time_zone".into(), format!("unknown time zone {}", self.time_zone)))?;
        if let Some(w) = &self.send_window {
            if w.days.is_empty() {
                return Err(invalid("send_window.days".into(), "name at least one day".into()));
            }
            if w.end <= w.start {
                return Err(invalid("send_window.end".into(), "must be after send_window.start".into()));
            }
        }
        if let (Some(s), Some(e)) = (self.schedule.start, self.schedule.end)
            && e <= s
        {
            return Err(invalid("schedule.end".into(), "must be after schedule.start".into()));
        }
        let mut env = Environment::new();
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Chainable);
        env.add_template(FOOTER, FOOTER_HTML).map_err(|e| invalid("footer".into(), e.to_string()))?;
        let index_of = |id: &str| self.steps.iter().position(|s| s.id == id);
        let mut steps = Vec::with_capacity(self.steps.len());
        for (i, step) in self.steps.iter().enumerate() {
            let at = |field: &str| format!("steps[{i}].{field}");
            if !is_token(&step.id) {
                return Err(invalid(at("id"), "use 1 to 64 letters, digits, `-` or `_`".into()));
            }
            if index_of(&step.id) != Some(i) {
                return Err(invalid(at("id"), format!("step id {} is used twice", step.id)));
            }
            let forbid = |field: &str, present: bool| {
                if present {
                    Err(invalid(at(field), format!("a {:?} step has no {field}", step.kind).to_lowercase()))
                } else {
                    Ok(())
                }
            };
            let has_email = step.subject.is_some() || step.text.is_some() || step.html.is_some();
            let has_branch = step.condition.is_some() || step.then.is_some() || step.otherwise.is_some();
            let compiled = match step.kind {
                StepKind::Send => {
                    forbid("if", has_branch)?;
                    for (field, part, text) in [
                        ("subject", "subject", &step.subject),
                        ("text", "txt", &step.text),
                        ("html", "html", &step.html),
                    ] {
                        let Some(text) = text else {
                            return Err(invalid(at(field), "a send step needs a subject, a text and an html".into()));
                        };
                        env.add_template_owned(template_name(i, part), text.clone())
                            .map_err(|e| invalid(at(field), e.to_string()))?;
                    }
                    CompiledStep::Send { wait: step.wait }
                }
                StepKind::Wait => {
                    forbid("subject", has_email)?;
                    forbid("if", has_branch)?;
                    if step.wait.is_none() {
                        return Err(invalid(at("wait"), "a wait step needs a wait".into()));
                    }
                    CompiledStep::Wait { wait: step.wait }
                }
                StepKind::Exit => {
                    forbid("subject", has_email)?;
                    forbid("if", has_branch)?;
                    CompiledStep::Exit { wait: step.wait }
                }
                StepKind::Branch => {
                    forbid("subject", has_email)?;
                    let target = |field: &str, id: &Option<String>| match id {
                        None => Ok(i + 1),
                        Some(id) => match index_of(id) {
                            Some(j) if j > i => Ok(j),
                            Some(_) => {
                                Err(invalid(at(field), format!("{id} is not after this step: branches go forward")))
                            }
                            None => Err(invalid(at(field), format!("there is no step {id}"))),
                        },
                    };
                    let earlier = |id: &str| match index_of(id) {
                        Some(j) if j < i && matches!(self.steps[j].kind, StepKind::Send) => Ok(id.to_string()),
                        _ => Err(invalid(at("if"), format!("{id} is not an earlier send step"))),
                    };
                    let Some(cond) = &step.condition else {
                        return Err(invalid(at("if"), "a branch step needs an `if`".into()));
                    };
                    let given = [
                        cond.opened.is_some(),
                        cond.clicked.is_some(),
                        cond.score_above.is_some(),
                        cond.field.is_some(),
                    ];
                    if given.iter().filter(|g| **g).count() != 1 {
                        return Err(invalid(
                            at("if"),
                            "give exactly one of opened, clicked, score_above or field".into(),
                        ));
                    }
                    let test = match cond {
                        BranchIf { opened: Some(id), .. } => Test::Opened(earlier(id)?),
                        BranchIf { clicked: Some(id), .. } => Test::Clicked(earlier(id)?),
                        BranchIf { score_above: Some(v), .. } if v.is_finite() => Test::ScoreAbove(*v),
                        BranchIf { field: Some(c), .. } => {
                            Test::Field(compile_all(std::slice::from_ref(c), &at("if.field"))?)
                        }
                        _ => return Err(invalid(at("if.score_above"), "must be a number".into())),
                    };
                    CompiledStep::Branch {
                        wait: step.wait,
                        test,
                        then: target("then", &step.then)?,
                        otherwise: target("else", &step.otherwise)?,
                    }
                }
            };
            steps.push(compiled);
        }
        Ok(CompiledCampaign {
            campaign: self.clone(),
            entry_when: compile_all(&self.entry.when, "entry.when")?,
            tz,
            steps,
            templates: env,
        })
    }

    /// Whether `other` says the same as this, whatever their versions.
    pub fn same_content(&self, other: &Campaign) -> bool {
        Campaign { version: other.version, ..self.clone() } == *other
    }
}

/// What the nurture stage knows about a lead besides the lead itself, gathered from its trail
/// and the suppression list.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    /// Ids of this campaign's steps whose email the lead opened / clicked.
    pub opened: BTreeSet<String>,
    pub clicked: BTreeSet<String>,
    /// When marketing emails (of any campaign) went to the lead, for the frequency cap.
    pub marketing_sends: Vec<DateTime<Utc>>,
    /// Why the address gets no more marketing email, if it is suppressed.
    pub suppressed: Option<String>,
}

/// What the latest version of a campaign says for everyone enrolled in any version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Control {
    pub status: CampaignStatus,
    pub schedule: Schedule,
}

/// How long a paused campaign's enrollments wait before they are looked at again.
pub const PAUSED_RECHECK: Duration = Duration::minutes(5);

/// What the nurture stage does with a due enrollment.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Send step `step`; once sent, store `after`.
    Send { step: usize, after: Enrollment },
    /// Nothing to send now: store this (a later due time, or branches and waits taken).
    Wait(Enrollment),
    /// The enrollment ends, with this reason.
    Stop(String),
    /// The campaign ran to its end (or an exit step).
    Complete(Enrollment),
}

impl CompiledCampaign {
    /// Whether this lead may enter the campaign now.
    pub fn admits(&self, lead: &Lead, now: DateTime<Utc>) -> bool {
        let c = &self.campaign;
        let e = &c.entry;
        let first = &lead.attribution.first_touch;
        c.status == CampaignStatus::Active
            && c.schedule.end.is_none_or(|end| now < end)
            // A lead the nurture stage would stop before its first step must not enter at all.
            && self.stop_reason(lead).is_none()
            && e.lifecycle.is_none_or(|l| l == lead.lifecycle)
            && (e.grades.is_empty() || lead.score.as_ref().is_some_and(|s| e.grades.contains(&s.grade)))
            && (e.sources.is_empty() || first.utm.source.as_ref().is_some_and(|s| e.sources.contains(s)))
            && (e.forms.is_empty() || first.form.as_ref().is_some_and(|f| e.forms.contains(f)))
            && (!e.requires_consent || lead.consent.as_ref().is_some_and(|k| k.given))
            && all_match(&self.entry_when, lead)
    }

    /// The lead's zone for this campaign's windows and waits.
    pub fn zone_of(&self, lead: &Lead) -> Tz {
        lead_zone(lead, self.tz).0
    }

    pub fn enroll(&self, lead: &Lead, now: DateTime<Utc>) -> Enrollment {
        let mut e = Enrollment {
            lead_id: lead.id,
            campaign_id: self.campaign.id.clone(),
            campaign_version: self.campaign.version,
            enrolled_at: now,
            next_step: 0,
            next_due_at: Some(now),
            state: EnrollmentState::Active,
            version: 0,
        };
        self.arrive(&mut e, 0, now, self.zone_of(lead));
        e
    }

    /// Moves the enrollment to step `index`, due after that step's wait from `from`.
    fn arrive(&self, e: &mut Enrollment, index: usize, from: DateTime<Utc>, tz: Tz) {
        e.next_step = index as u32;
        match self.steps.get(index) {
            Some(step) => e.next_due_at = Some(step.wait().map_or(from, |w| w.after(from, tz))),
            None => {
                e.next_due_at = None;
                e.state = EnrollmentState::Completed;
            }
        }
    }

    /// Why this lead's enrollment must stop, if it must (suppression aside, which needs the
    /// store: see [`Facts::suppressed`]).
    pub fn stop_reason(&self, lead: &Lead) -> Option<&'static str> {
        if !lead.is_valid() {
            return Some("lead is invalid");
        }
        if lead.contact.email.is_empty() {
            return Some("lead was erased");
        }
        match lead.status {
            SalesStatus::Won => return Some("lead was won"),
            SalesStatus::Lost => return Some("lead was lost"),
            SalesStatus::Contacted if self.campaign.stop_on.contains(&StopOn::Contacted) => {
                return Some("lead was contacted by sales");
            }
            _ => {}
        }
        if lead.owner.is_some() && self.campaign.stop_on.contains(&StopOn::Assigned) {
            return Some("lead was assigned to sales");
        }
        None
    }

    /// The drip state machine: what to do with `enrollment`, due at `now`. Branches, waits and
    /// exits due now are taken at once; a send outside the send window or over the frequency cap
    /// is moved to the first instant it is allowed.
    pub fn decide(
        &self,
        enrollment: &Enrollment,
        lead: &Lead,
        facts: &Facts,
        control: Control,
        cap: Option<FrequencyCap>,
        now: DateTime<Utc>,
    ) -> Decision {
        if let Some(reason) = &facts.suppressed {
            return Decision::Stop(format!("address is suppressed ({reason})"));
        }
        if let Some(reason) = self.stop_reason(lead) {
            return Decision::Stop(reason.into());
        }
        if control.schedule.end.is_some_and(|end| now >= end) {
            return Decision::Stop("campaign ended".into());
        }
        let mut e = enrollment.clone();
        if control.status == CampaignStatus::Paused {
            e.next_due_at = Some(now + PAUSED_RECHECK);
            return Decision::Wait(e);
        }
        if let Some(start) = control.schedule.start.filter(|s| now < *s) {
            e.next_due_at = Some(start);
            return Decision::Wait(e);
        }
        let tz = self.zone_of(lead);
        // Branches only go forward, so this visits each step at most once.
        for _ in 0..=self.steps.len() {
            let index = e.next_step as usize;
            let Some(step) = self.steps.get(index) else {
                e.state = EnrollmentState::Completed;
                e.next_due_at = None;
                return Decision::Complete(e);
            };
            match e.next_due_at {
                Some(due) if due > now => return Decision::Wait(e),
                None => return Decision::Complete(e),
                Some(_) => {}
            }
            match step {
                CompiledStep::Exit { .. } => {
                    e.state = EnrollmentState::Completed;
                    e.next_due_at = None;
                    return Decision::Complete(e);
                }
                CompiledStep::Wait { .. } => self.arrive(&mut e, index + 1, now, tz),
                CompiledStep::Branch { test, then, otherwise, .. } => {
                    let holds = match test {
                        Test::Opened(id) => facts.opened.contains(id) || facts.clicked.contains(id),
                        Test::Clicked(id) => facts.clicked.contains(id),
                        Test::ScoreAbove(v) => lead.score.as_ref().is_some_and(|s| s.total > *v),
                        Test::Field(conds) => all_match(conds, lead),
                    };
                    self.arrive(&mut e, if holds { *then } else { *otherwise }, now, tz);
                }
                CompiledStep::Send { .. } => {
                    let allowed = self.allowed_at(now, tz, facts, cap);
                    if allowed > now {
                        e.next_due_at = Some(allowed);
                        return Decision::Wait(e);
                    }
                    let mut after = e.clone();
                    self.arrive(&mut after, index + 1, now, tz);
                    return Decision::Send { step: index, after };
                }
            }
        }
        Decision::Wait(e)
    }

    /// The first instant at or after `now` when a send is inside the window and under the cap.
    fn allowed_at(&self, now: DateTime<Utc>, tz: Tz, facts: &Facts, cap: Option<FrequencyCap>) -> DateTime<Utc> {
        let mut t = now;
        // Each round moves `t` forward; the cap and the window settle within a few rounds.
        for _ in 0..8 {
            let mut next = t;
            if let Some(window) = &self.campaign.send_window {
                next = window.next_open(next, tz);
            }
            if let Some(cap) = cap
                && cap.max > 0
            {
                let mut recent: Vec<_> =
                    facts.marketing_sends.iter().copied().filter(|s| cap.per.after(*s, tz) > next).collect();
                if recent.len() >= cap.max as usize {
                    recent.sort();
                    // The send that must age out of the period before another may go.
                    let oldest = recent[recent.len() - cap.max as usize];
                    next = next.max(cap.per.after(oldest, tz));
                }
            }
            if next == t {
                return t;
            }
            t = next;
        }
        t
    }

    /// The enrollment moved on purpose from the version it started (`from`) to this one: it
    /// continues at the step of the same id, due when it was due. `None` when this version has no
    /// step of that id (the lead then finishes its own version) or the enrollment has ended.
    pub fn migrate(&self, enrollment: &Enrollment, from: &CompiledCampaign) -> Option<Enrollment> {
        if enrollment.state != EnrollmentState::Active || enrollment.campaign_id != self.campaign.id {
            return None;
        }
        let step = from.campaign.steps.get(enrollment.next_step as usize)?;
        let index = self.step_index(&step.id)?;
        Some(Enrollment { campaign_version: self.campaign.version, next_step: index as u32, ..enrollment.clone() })
    }

    /// The key of the email of step `index` for a lead: names the send, so it is sent once.
    pub fn email_key(&self, lead: &Lead, index: usize) -> String {
        let c = &self.campaign;
        let step = c.steps.get(index).map_or("", |s| s.id.as_str());
        format!("drip-{}-{}-v{}-{}", lead.id, c.id, c.version, step)
    }

    /// The index of a step id.
    pub fn step_index(&self, id: &str) -> Option<usize> {
        self.campaign.steps.iter().position(|s| s.id == id)
    }

    /// The drip email of step `index` for `lead`: marketing, so it carries `List-Unsubscribe`
    /// with one-click (RFC 8058), a visible unsubscribe link and the sender's postal address.
    pub fn render(
        &self,
        lead: &Lead,
        index: usize,
        settings: &Settings,
        unsubscribe_url: &str,
    ) -> Result<OutgoingEmail, RenderError> {
        let c = &self.campaign;
        let step = c.steps.get(index).filter(|s| s.kind == StepKind::Send).ok_or_else(|| RenderError {
            template: format!("campaign {} step {index}", c.id),
            message: "no such send step".into(),
        })?;
        let ctx = context! {
            lead => LeadView::of(lead),
            campaign => context! { id => &c.id, name => &c.name },
            postal_address => &settings.postal_address,
            unsubscribe_url => unsubscribe_url,
        };
        let render = |part: &str| {
            let name = template_name(index, part);
            self.templates.get_template(&name).and_then(|t| t.render(&ctx)).map_err(|e| RenderError {
                template: format!("campaign {} step {}", c.id, step.id),
                message: e.to_string(),
            })
        };
        let text_footer = format!("\n\n--\n{}\nUnsubscribe: {unsubscribe_url}\n", settings.postal_address);
        let html_footer = self
            .templates
            .get_template(FOOTER)
            .and_then(|t| {
                // Built by us from the configured public URL and a hex token: markup-free, and
                // escaping would turn its slashes into entities that some mail clients show.
                let url = minijinja::Value::from_safe_string(unsubscribe_url.replace('"', "%22"));
                t.render(context! { postal_address => &settings.postal_address, unsubscribe_url => url })
            })
            .map_err(|e| RenderError { template: FOOTER.into(), message: e.to_string() })?;
        let key = self.email_key(lead, index);
        Ok(OutgoingEmail {
            key: key.clone(),
            category: EmailCategory::Marketing,
            from: settings.sender.clone(),
            to: Mailbox { name: Some(lead.display_name()), email: lead.contact.email.clone() },
            subject: one_line(&render("subject")?),
            text: format!("{}{text_footer}", render("txt")?.trim_end()),
            // A step may link to `{{ unsubscribe_url }}` itself: that link is untracked too.
            html: format!("{}{html_footer}", untrack_links_to(&render("html")?, unsubscribe_url)),
            headers: vec![
                ("List-Unsubscribe".into(), format!("<{unsubscribe_url}>")),
                ("List-Unsubscribe-Post".into(), "List-Unsubscribe=One-Click".into()),
            ],
            tags: vec![("lead_id".into(), lead.id.to_string()), ("email".into(), key)],
        })
    }
}

pub fn stopped(enrollment: &Enrollment, reason: &str) -> Enrollment {
    let mut e = enrollment.clone();
    e.state = EnrollmentState::Stopped { reason: reason.to_string() };
    e.next_due_at = None;
    e
}
