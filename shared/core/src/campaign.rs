//! Nurture campaigns and the drip state machine of one enrollment.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::ConfigError;
use crate::model::{Enrollment, EnrollmentState, Lead, Lifecycle, SalesStatus};
use crate::rules::{CompiledCondition, Condition, all_match, compile_all};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Campaign {
    pub id: String,
    pub name: String,
    pub version: u32,
    #[serde(default)]
    pub status: CampaignStatus,
    #[serde(default)]
    pub entry: Entry,
    pub steps: Vec<Step>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum CampaignStatus {
    #[default]
    Active,
    Paused,
}

/// Which leads a campaign takes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Entry {
    /// Only leads at this stage (below MQL leads are `lead`).
    pub lifecycle: Option<Lifecycle>,
    /// Only leads who gave consent.
    #[serde(default)]
    pub requires_consent: bool,
    #[serde(default)]
    pub when: Vec<Condition>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub id: String,
    /// Time after the previous step (after enrollment for the first): `0s`, `2d`, `36h`, `90m`.
    pub wait: Wait,
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// A wait written as a number and a unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wait(pub Duration);

impl Wait {
    pub fn parse(s: &str) -> Result<Wait, String> {
        let s = s.trim();
        let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (num, unit) = s.split_at(split);
        let n: i64 = num.parse().map_err(|_| format!("`{s}` is not a wait like `2d`, `36h`, `90m`"))?;
        let secs = match unit.trim() {
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86_400,
            "w" => 7 * 86_400,
            other => return Err(format!("unknown unit `{other}` in `{s}`: use s, m, h, d or w")),
        };
        n.checked_mul(secs)
            .filter(|v| *v <= 366 * 86_400)
            .map(|v| Wait(Duration::seconds(v)))
            .ok_or_else(|| format!("`{s}` is longer than a year"))
    }
}

impl Serialize for Wait {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{}s", self.0.num_seconds()))
    }
}

impl<'de> Deserialize<'de> for Wait {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Wait::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, Clone)]
pub struct CompiledCampaign {
    pub campaign: Campaign,
    entry_when: Vec<CompiledCondition>,
}

impl Campaign {
    pub fn compile(&self) -> Result<CompiledCampaign, ConfigError> {
        let what = format!("campaign {}", self.id);
        if self.steps.is_empty() {
            return Err(ConfigError::Invalid { what, message: "has no steps".into() });
        }
        Ok(CompiledCampaign { campaign: self.clone(), entry_when: compile_all(&self.entry.when, &what)? })
    }
}

impl CompiledCampaign {
    /// Whether this lead may enter the campaign now.
    pub fn admits(&self, lead: &Lead) -> bool {
        let c = &self.campaign;
        c.status == CampaignStatus::Active
            // A lead the nurture stage would stop before its first step (won, lost, owned by
            // sales) must not be enrolled in the first place.
            && stop_reason(lead).is_none()
            && lead.is_valid()
            && c.entry.lifecycle.is_none_or(|l| l == lead.lifecycle)
            && (!c.entry.requires_consent || lead.consent.as_ref().is_some_and(|k| k.given))
            && all_match(&self.entry_when, lead)
    }

    pub fn enroll(&self, lead: &Lead, now: DateTime<Utc>) -> Enrollment {
        let first_wait = self.campaign.steps.first().map_or(Duration::zero(), |s| s.wait.0);
        Enrollment {
            lead_id: lead.id,
            campaign_id: self.campaign.id.clone(),
            campaign_version: self.campaign.version,
            enrolled_at: now,
            next_step: 0,
            next_due_at: Some(now + first_wait),
            state: EnrollmentState::Active,
            version: 0,
        }
    }

    /// The enrollment after its current step was sent at `sent_at`.
    pub fn advance(&self, enrollment: &Enrollment, sent_at: DateTime<Utc>) -> Enrollment {
        let next = enrollment.next_step + 1;
        let mut e = enrollment.clone();
        e.next_step = next;
        match self.campaign.steps.get(next as usize) {
            Some(step) => e.next_due_at = Some(sent_at + step.wait.0),
            None => {
                e.next_due_at = None;
                e.state = EnrollmentState::Completed;
            }
        }
        e
    }
}

/// Why an enrollment must stop before its next step, if it must.
pub fn stop_reason(lead: &Lead) -> Option<&'static str> {
    if !lead.is_valid() {
        return Some("lead is invalid");
    }
    match lead.status {
        SalesStatus::Won => return Some("lead was won"),
        SalesStatus::Lost => return Some("lead was lost"),
        _ => {}
    }
    if lead.owner.is_some() {
        return Some("lead was assigned to sales");
    }
    None
}

pub fn stopped(enrollment: &Enrollment, reason: &str) -> Enrollment {
    let mut e = enrollment.clone();
    e.state = EnrollmentState::Stopped { reason: reason.to_string() };
    e.next_due_at = None;
    e
}
