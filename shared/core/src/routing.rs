//! Routing: the first team whose rules match, then smooth weighted round-robin among the team's
//! reps who can take a lead now, then a fallback owner. Every decision explains itself.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, NaiveTime, Utc, Weekday};
use foldhash::{HashMap, HashMapExt};
use serde::{Deserialize, Serialize};

use crate::error::ConfigError;
use crate::model::{Lead, RepId, TeamCursor, TeamId};
use crate::rules::{CompiledCondition, Condition, all_match, compile_all};
use crate::zone::Zone;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoutingConfig {
    /// Rep who gets a lead when no team matches or no rep of the team can take it.
    pub fallback_owner: RepId,
    /// Hours a rep has to contact an assigned lead.
    #[serde(default = "default_sla_hours")]
    pub sla_hours: f64,
    pub reps: Vec<Rep>,
    #[serde(default)]
    pub teams: Vec<Team>,
}

fn default_sla_hours() -> f64 {
    4.0
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rep {
    pub id: RepId,
    pub name: String,
    pub email: String,
    /// IANA name; working hours are read in it.
    #[serde(default = "utc_name")]
    pub time_zone: String,
    /// `None`: any time.
    pub working_hours: Option<WorkingHours>,
    /// Most open leads the rep may hold; `None`: no limit.
    pub capacity: Option<u32>,
    #[serde(default = "yes")]
    pub active: bool,
    pub out_of_office: Option<Absence>,
}

fn utc_name() -> String {
    "UTC".to_string()
}
fn yes() -> bool {
    true
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkingHours {
    /// `mon` … `sun`.
    pub days: Vec<Weekday>,
    /// Local time, `HH:MM`.
    pub start: NaiveTime,
    /// Local time, `HH:MM`; before `start` means the shift runs past midnight.
    pub end: NaiveTime,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Absence {
    pub from: DateTime<Utc>,
    pub until: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Team {
    pub id: TeamId,
    pub name: String,
    /// All must hold; an empty list matches every lead.
    #[serde(default)]
    pub when: Vec<Condition>,
    pub members: Vec<Member>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Member {
    pub rep: RepId,
    #[serde(default = "one")]
    pub weight: u32,
}

fn one() -> u32 {
    1
}

/// Longest SLA: a year. Past that a deadline says nothing, and `sla_hours = 1e10` once overflowed
/// the date arithmetic and brought the process down.
pub const MAX_SLA_HOURS: f64 = 8760.0;
/// Most open leads a capacity may allow: anything beyond is a typo that means "no limit" in effect.
pub const MAX_CAPACITY: u32 = 10_000;
/// Largest weight of a team member: with 100 against 1, a rep gets 100 leads for another's one.
pub const MAX_WEIGHT: u32 = 100;

#[derive(Debug, Clone)]
pub struct CompiledRouting {
    pub fallback_owner: RepId,
    pub sla_hours: f64,
    reps: HashMap<RepId, (Rep, Zone)>,
    /// Each team with its compiled rules and the explanation of a match, which only depends on
    /// the rules and so is written once here rather than for every lead.
    teams: Vec<(Team, Vec<CompiledCondition>, String)>,
}

impl RoutingConfig {
    pub fn compile(&self) -> Result<CompiledRouting, ConfigError> {
        let invalid = |what: String, message: String| ConfigError::Invalid { what, message };
        let mut reps = HashMap::new();
        for rep in &self.reps {
            // Stores key rep loads by the id and keep other items beside them under `#…`.
            if rep.id.is_empty() || rep.id.starts_with('#') {
                return Err(invalid(format!("rep {:?}", rep.id), "an id cannot be empty or start with #".into()));
            }
            let tz = Zone::named(&rep.time_zone)
                .ok_or_else(|| invalid(format!("rep {}", rep.id), format!("unknown time zone {}", rep.time_zone)))?;
            if reps.insert(rep.id.clone(), (rep.clone(), tz)).is_some() {
                return Err(invalid(format!("rep {}", rep.id), "the id is used twice".into()));
            }
        }
        if !reps.contains_key(&self.fallback_owner) {
            return Err(invalid("fallback_owner".into(), format!("{} is not a rep", self.fallback_owner)));
        }
        // `!(… > 0)` rather than `<= 0` so that NaN is refused too.
        if !(self.sla_hours > 0.0 && self.sla_hours <= MAX_SLA_HOURS) {
            return Err(invalid(
                "sla_hours".into(),
                format!("must be more than 0 and at most {MAX_SLA_HOURS} hours (a year), got {}", self.sla_hours),
            ));
        }
        for rep in &self.reps {
            if let Some(cap) = rep.capacity
                && cap > MAX_CAPACITY
            {
                return Err(invalid(
                    format!("rep {}", rep.id),
                    format!(
                        "capacity must be from 0 to {MAX_CAPACITY} open leads (leave it out for no limit), got {cap}"
                    ),
                ));
            }
        }
        let mut teams = Vec::new();
        for team in &self.teams {
            let what = format!("team {}", team.id);
            for m in &team.members {
                if !reps.contains_key(&m.rep) {
                    return Err(invalid(what.clone(), format!("member {} is not a rep", m.rep)));
                }
                if m.weight == 0 {
                    return Err(invalid(what.clone(), format!("member {} has weight 0; remove it instead", m.rep)));
                }
                if m.weight > MAX_WEIGHT {
                    return Err(invalid(
                        what.clone(),
                        format!("member {} has weight {}; a weight is from 1 to {MAX_WEIGHT}", m.rep, m.weight),
                    ));
                }
            }
            let conds = compile_all(&team.when, &what)?;
            let matched = if conds.is_empty() {
                format!("Team {} takes every lead not matched before it.", team.name)
            } else {
                let why: Vec<String> = conds.iter().map(|c| c.describe()).collect();
                format!("Team {} matched: {}.", team.name, why.join(" and "))
            };
            teams.push((team.clone(), conds, matched));
        }
        Ok(CompiledRouting { fallback_owner: self.fallback_owner.clone(), sla_hours: self.sla_hours, reps, teams })
    }
}

/// Why a rep cannot take a lead now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unavailable {
    Inactive,
    OutOfOffice,
    AtCapacity,
    OutsideWorkingHours,
}

impl Unavailable {
    pub fn as_str(self) -> &'static str {
        match self {
            Unavailable::Inactive => "inactive",
            Unavailable::OutOfOffice => "out of office",
            Unavailable::AtCapacity => "at capacity",
            Unavailable::OutsideWorkingHours => "outside working hours",
        }
    }
}

/// Whether the rep can take a lead at `now`, given how many open leads they hold.
pub fn availability(rep: &Rep, tz: &Zone, open_leads: u32, now: DateTime<Utc>) -> Result<(), Unavailable> {
    if !rep.active {
        return Err(Unavailable::Inactive);
    }
    if let Some(a) = &rep.out_of_office
        && a.from <= now
        && now < a.until
    {
        return Err(Unavailable::OutOfOffice);
    }
    if rep.capacity.is_some_and(|cap| open_leads >= cap) {
        return Err(Unavailable::AtCapacity);
    }
    if let Some(hours) = &rep.working_hours
        && !tz.wall_clock(now).is_some_and(|t| hours.contains(t))
    {
        return Err(Unavailable::OutsideWorkingHours);
    }
    Ok(())
}

impl WorkingHours {
    fn contains(&self, local: chrono::NaiveDateTime) -> bool {
        let t = local.time();
        let day = local.weekday();
        if self.start <= self.end {
            self.days.contains(&day) && self.start <= t && t < self.end
        } else {
            // A night shift: the part after midnight belongs to the previous day's shift.
            (self.days.contains(&day) && t >= self.start) || (self.days.contains(&day.pred()) && t < self.end)
        }
    }
}

/// One smooth weighted round-robin step over the eligible members: each gains its weight, the
/// one with the most credit wins and pays the eligible total. Members who are skipped neither
/// gain nor pay, so they return without a backlog and get nothing while away.
pub fn weighted_pick(members: &[(RepId, u32)], eligible: &[bool], credit: &mut BTreeMap<RepId, i64>) -> Option<usize> {
    // Saturating: the credits come back from the store, and a damaged cursor must not overflow.
    let total: i64 = members
        .iter()
        .zip(eligible)
        .filter(|(_, e)| **e)
        .fold(0i64, |sum, ((_, w), _)| sum.saturating_add(i64::from(*w)));
    if total == 0 {
        return None;
    }
    let mut best: Option<(usize, i64)> = None;
    for (i, ((rep, w), ok)) in members.iter().zip(eligible).enumerate() {
        if !ok {
            continue;
        }
        let c = credit.entry(rep.clone()).or_insert(0);
        *c = c.saturating_add(i64::from(*w));
        if best.is_none_or(|(_, b)| *c > b) {
            best = Some((i, *c));
        }
    }
    let (winner, _) = best?;
    if let Some(c) = credit.get_mut(&members[winner].0) {
        *c = c.saturating_sub(total);
    }
    Some(winner)
}

#[derive(Debug, Clone, PartialEq)]
pub struct RoutingDecision {
    pub rep_id: RepId,
    pub team_id: Option<TeamId>,
    /// The team's cursor after this pick, to be written conditionally with the assignment.
    pub cursor: Option<(TeamId, TeamCursor)>,
    pub explanation: Vec<String>,
    pub via_fallback: bool,
    pub sla_due_at: DateTime<Utc>,
}

impl CompiledRouting {
    /// The first team whose rules match the lead.
    pub fn match_team(&self, lead: &Lead) -> Option<&Team> {
        self.teams.iter().find(|(_, conds, _)| all_match(conds, lead)).map(|(t, _, _)| t)
    }

    pub fn rep(&self, id: &str) -> Option<&Rep> {
        self.reps.get(id).map(|(r, _)| r)
    }

    /// Every rep, by name.
    pub fn reps(&self) -> Vec<&Rep> {
        let mut reps: Vec<&Rep> = self.reps.values().map(|(r, _)| r).collect();
        reps.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.id.cmp(&b.id)));
        reps
    }

    /// The rep whose email this is, ignoring case.
    pub fn rep_by_email(&self, email: &str) -> Option<&Rep> {
        let email = email.trim();
        self.reps.values().map(|(r, _)| r).find(|r| r.email.trim().eq_ignore_ascii_case(email))
    }

    /// Decides who gets the lead. `cursor` is the matched team's stored cursor (ignored when no
    /// team matches); `loads` the open leads per rep.
    pub fn decide(
        &self,
        lead: &Lead,
        cursor: &TeamCursor,
        loads: &BTreeMap<RepId, u32>,
        now: DateTime<Utc>,
    ) -> RoutingDecision {
        self.decide_except(lead, cursor, loads, now, None)
    }

    /// [`decide`](Self::decide), never picking `except` from the team (the rep who let the SLA
    /// run out). The fallback owner still takes the lead when nobody else can.
    pub fn decide_except(
        &self,
        lead: &Lead,
        cursor: &TeamCursor,
        loads: &BTreeMap<RepId, u32>,
        now: DateTime<Utc>,
        except: Option<&str>,
    ) -> RoutingDecision {
        let mut explanation = Vec::new();
        let Some((team, _, matched)) = self.teams.iter().find(|(_, conds, _)| all_match(conds, lead)) else {
            explanation.push("No team's rules match this lead.".to_string());
            return self.fallback(None, None, explanation, now);
        };
        explanation.push(matched.clone());
        let members: Vec<(RepId, u32)> = team.members.iter().map(|m| (m.rep.clone(), m.weight)).collect();
        let mut eligible = Vec::with_capacity(members.len());
        for (rep_id, _) in &members {
            let open = loads.get(rep_id).copied().unwrap_or(0);
            let name = self.reps.get(rep_id).map_or(rep_id.as_str(), |(r, _)| r.name.as_str());
            if except == Some(rep_id.as_str()) {
                explanation.push(format!("Skipped {name}: did not contact the lead within the SLA."));
                eligible.push(false);
                continue;
            }
            let verdict = match self.reps.get(rep_id) {
                Some((rep, tz)) => availability(rep, tz, open, now),
                None => Err(Unavailable::Inactive),
            };
            if let Err(why) = verdict {
                explanation.push(format!("Skipped {name}: {}.", why.as_str()));
            }
            eligible.push(verdict.is_ok());
        }
        let mut credit = cursor.credit.clone();
        match weighted_pick(&members, &eligible, &mut credit) {
            Some(i) => {
                let rep_id = members[i].0.clone();
                let name = self.reps.get(&rep_id).map_or(rep_id.as_str(), |(r, _)| r.name.as_str());
                let available = eligible.iter().filter(|e| **e).count();
                explanation.push(format!(
                    "{name} is next in the team's weighted round-robin (weight {} of {} available rep{}).",
                    members[i].1,
                    available,
                    if available == 1 { "" } else { "s" }
                ));
                let next = TeamCursor { credit, version: cursor.version };
                let sla_due_at = self.sla_due(&rep_id, now);
                RoutingDecision {
                    rep_id,
                    team_id: Some(team.id.clone()),
                    cursor: Some((team.id.clone(), next)),
                    explanation,
                    via_fallback: false,
                    sla_due_at,
                }
            }
            None => {
                explanation.push(format!("Nobody in team {} can take a lead now.", team.name));
                self.fallback(Some(team.id.clone()), None, explanation, now)
            }
        }
    }

    /// When a lead assigned to `rep_id` at `from` must have been contacted: `sla_hours` of the
    /// rep's working time (in the rep's zone), or of wall-clock time for a rep without hours.
    /// Near the end of time the deadline is the end of time rather than an overflow.
    pub fn sla_due(&self, rep_id: &str, from: DateTime<Utc>) -> DateTime<Utc> {
        // `sla_hours` is public: clamp again rather than trust that it still is what compiled.
        let sla = if self.sla_hours > 0.0 { self.sla_hours.min(MAX_SLA_HOURS) } else { 0.0 };
        let budget = chrono::Duration::milliseconds((sla * 3_600_000.0) as i64);
        let Some((rep, tz)) = self.reps.get(rep_id) else { return later(from, budget) };
        let Some(hours) = &rep.working_hours else { return later(from, budget) };
        if hours.days.is_empty() || hours.start == hours.end {
            return later(from, budget);
        }
        // Shifts are counted on up to 400 calendar days ahead; at the end of chrono's calendar
        // (`at_local` cannot step past it) the wall-clock budget stands in, saturating.
        let today = tz.wall_clock(from).map(|t| t.date());
        let Some(today) = today.filter(|d| d.checked_add_days(chrono::Days::new(402)).is_some()) else {
            return later(from, budget);
        };
        let mut left = budget;
        // From the day before: a night shift that began yesterday may still be running.
        let first_day = today.pred_opt().unwrap_or(today);
        // A shift per working day; an SLA longer than a year of shifts is not a real setting.
        for n in 0..400 {
            let day = crate::local_time::add_days(first_day, n);
            if !hours.days.contains(&day.weekday()) {
                continue;
            }
            let open = crate::local_time::at_local(tz, day, hours.start);
            let end_day = if hours.end <= hours.start { crate::local_time::add_days(day, 1) } else { day };
            let close = crate::local_time::at_local(tz, end_day, hours.end);
            let start = open.max(from);
            if close <= start {
                continue;
            }
            let shift = close.signed_duration_since(start);
            if shift >= left {
                return later(start, left);
            }
            left -= shift;
        }
        later(from, budget)
    }

    fn fallback(
        &self,
        team_id: Option<TeamId>,
        cursor: Option<(TeamId, TeamCursor)>,
        mut explanation: Vec<String>,
        now: DateTime<Utc>,
    ) -> RoutingDecision {
        let sla_due_at = self.sla_due(&self.fallback_owner, now);
        let name = self.reps.get(&self.fallback_owner).map_or(self.fallback_owner.as_str(), |(r, _)| r.name.as_str());
        explanation.push(format!("Assigned to the fallback owner, {name}."));
        RoutingDecision {
            rep_id: self.fallback_owner.clone(),
            team_id,
            cursor,
            explanation,
            via_fallback: true,
            sla_due_at,
        }
    }
}

/// `t + d`, or the last instant there is when that lies beyond it.
fn later(t: DateTime<Utc>, d: chrono::Duration) -> DateTime<Utc> {
    t.checked_add_signed(d).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routing(rep_id: &str) -> RoutingConfig {
        let text = format!(
            r#"
            fallback_owner = "desk"
            reps = [
                {{ id = "desk", name = "Desk", email = "desk@acme.example" }},
                {{ id = "{rep_id}", name = "Anna", email = "anna@acme.example" }},
            ]
            "#
        );
        toml::from_str(&text).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn a_rep_id_that_is_empty_or_starts_with_a_hash_is_refused_by_name() {
        assert!(routing("anna").compile().is_ok());
        for id in ["", "#CURSOR#emea"] {
            let refused = routing(id).compile().err().map(|e| e.to_string()).unwrap_or_default();
            assert!(refused.contains("cannot be empty or start with #"), "{id:?}: {refused}");
        }
    }
}
