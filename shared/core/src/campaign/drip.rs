//! The drip state machine of one enrollment: who enters, when each step is due, what a due
//! enrollment does now (send, wait, branch, stop), and moving an enrollment to a newer version.

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, Utc};

use super::{CampaignStatus, CompiledCampaign, CompiledStep, FrequencyCap, Schedule, StopOn, Test};
use crate::local_time::lead_zone;
use crate::model::{Enrollment, EnrollmentState, Lead, SalesStatus};
use crate::rules::all_match;
use crate::zone::Zone;

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
    pub fn zone_of(&self, lead: &Lead) -> Zone {
        lead_zone(lead, &self.tz).0
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
        self.arrive(&mut e, 0, now, &self.zone_of(lead));
        e
    }

    /// Moves the enrollment to step `index`, due after that step's wait from `from`.
    fn arrive(&self, e: &mut Enrollment, index: usize, from: DateTime<Utc>, tz: &Zone) {
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
                CompiledStep::Wait { .. } => self.arrive(&mut e, index + 1, now, &tz),
                CompiledStep::Branch { test, then, otherwise, .. } => {
                    let holds = match test {
                        Test::Opened(id) => facts.opened.contains(id) || facts.clicked.contains(id),
                        Test::Clicked(id) => facts.clicked.contains(id),
                        Test::ScoreAbove(v) => lead.score.as_ref().is_some_and(|s| s.total > *v),
                        Test::Field(conds) => all_match(conds, lead),
                    };
                    self.arrive(&mut e, if holds { *then } else { *otherwise }, now, &tz);
                }
                CompiledStep::Send { .. } => {
                    let allowed = self.allowed_at(now, &tz, facts, cap);
                    if allowed > now {
                        e.next_due_at = Some(allowed);
                        return Decision::Wait(e);
                    }
                    let mut after = e.clone();
                    self.arrive(&mut after, index + 1, now, &tz);
                    return Decision::Send { step: index, after };
                }
            }
        }
        Decision::Wait(e)
    }

    /// The first instant at or after `now` when a send is inside the window and under the cap.
    fn allowed_at(&self, now: DateTime<Utc>, tz: &Zone, facts: &Facts, cap: Option<FrequencyCap>) -> DateTime<Utc> {
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
}

pub fn stopped(enrollment: &Enrollment, reason: &str) -> Enrollment {
    let mut e = enrollment.clone();
    e.state = EnrollmentState::Stopped { reason: reason.to_string() };
    e.next_due_at = None;
    e
}
