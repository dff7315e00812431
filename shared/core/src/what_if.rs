//! What a rule change would do: the recent leads replayed through the rules in force and through
//! a draft, side by side, with the scoring and routing functions the stages use. Nothing is
//! written; the caller fetches the leads and the routing state and shows the answer.
//!
//! What the replay assumes, so that only the rules differ between the two sides:
//! - A lead is scored as of its last scoring (`score.computed_at`; now for a lead never scored),
//!   so the side of the rules in force shows the score its page shows. Behaviour is scored from
//!   its trail up to then when the caller passes the trail; without one, the behaviour points of
//!   its stored score stand on both sides (the caller passes trails when behaviour rules change).
//! - Stages only move forward, as when the score stage rescores: a lead keeps the stage it
//!   reached; [`WhatIf::held`] counts the leads the draft would score below it.
//! - Qualified leads (MQL or better on a side) are routed in the order they came in, each at the
//!   moment it came in (working hours and absences then), from the same starting round-robin
//!   positions and open-lead counts: today's, less these leads' own open assignments.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::model::{Activity, Lead, LeadId, Lifecycle, RepId, SalesStatus, Score, ScoreRuleKind, TeamCursor, TeamId};
use crate::routing::CompiledRouting;
use crate::scoring::CompiledScoring;

/// One lead to replay, with its trail when behaviour must be scored from it.
#[derive(Debug, Clone, Copy)]
pub struct PastLead<'a> {
    pub lead: &'a Lead,
    /// `None`: the behaviour points of the lead's stored score are used on both sides.
    pub activities: Option<&'a [Activity]>,
}

/// A rule set: the one in force or the draft. Pass the very same compiled rules for the part a
/// draft leaves alone: the replay then decides once for both sides where they cannot differ.
#[derive(Debug, Clone, Copy)]
pub struct Rules<'a> {
    pub scoring: &'a CompiledScoring,
    pub routing: &'a CompiledRouting,
}

/// The routing state the replay starts from: the store's round-robin cursors and open-lead
/// counts as they are now.
#[derive(Debug, Clone, Default)]
pub struct RoutingState {
    pub cursors: BTreeMap<TeamId, TeamCursor>,
    pub loads: BTreeMap<RepId, u32>,
}

/// Who a lead goes to on one side.
#[derive(Debug, Clone, PartialEq)]
pub struct Routed {
    pub team_id: Option<TeamId>,
    pub team: Option<String>,
    pub rep_id: RepId,
    pub rep: String,
    pub explanation: Vec<String>,
}

/// What one rule set makes of a lead.
#[derive(Debug, Clone, PartialEq)]
pub struct Side {
    pub score: Score,
    /// The stage after this score (never below the one the lead reached).
    pub stage: Lifecycle,
    /// The stage the score alone gives.
    pub by_score: Lifecycle,
    /// `None`: not qualified, so not routed.
    pub routed: Option<Routed>,
}

/// A lead on both sides.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub lead_id: LeadId,
    pub before: Side,
    pub after: Side,
}

/// How many leads made one move (`B` → `A`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Move {
    pub from: String,
    pub to: String,
    pub count: usize,
}

/// A lead that changes, with the draft's reasons.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Example {
    pub lead_id: LeadId,
    pub from: String,
    pub to: String,
    pub reasons: Vec<String>,
}

/// The changes along one dimension (grade, stage, team, owner, score).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Changes {
    pub changed: usize,
    /// Each move and how many made it, most first.
    pub moves: Vec<Move>,
    /// The newest changed leads, newest first.
    pub examples: Vec<Example>,
}

/// The answer: how many of the replayed leads change, how, and examples.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct WhatIf {
    /// Leads replayed.
    pub leads: usize,
    /// Invalid leads left out: they are never scored or routed.
    pub invalid: usize,
    pub score: Changes,
    pub score_up: usize,
    pub score_down: usize,
    pub grade: Changes,
    pub stage: Changes,
    pub team: Changes,
    pub owner: Changes,
    /// Leads the draft scores below the stage they keep (stages only move forward).
    pub held: usize,
}

/// Replays the valid leads through both rule sets; one outcome per lead, in the order they came
/// in.
pub fn replay(
    leads: &[PastLead<'_>],
    current: Rules<'_>,
    draft: Rules<'_>,
    state: &RoutingState,
    now: DateTime<Utc>,
) -> Vec<Outcome> {
    let mut valid: Vec<&PastLead<'_>> = leads.iter().filter(|p| p.lead.is_valid()).collect();
    valid.sort_by(|a, b| a.lead.created_at.cmp(&b.lead.created_at).then(a.lead.id.cmp(&b.lead.id)));
    // These leads' own open assignments are in today's counts; replaying them adds them again.
    let mut loads = state.loads.clone();
    for p in &valid {
        if let Some(owner) = &p.lead.owner
            && matches!(p.lead.status, SalesStatus::New | SalesStatus::Contacted)
            && let Some(n) = loads.get_mut(&owner.rep_id)
        {
            *n = n.saturating_sub(1);
        }
    }
    let start = Replay { cursors: state.cursors.clone(), loads };
    // The same rules give the same answer: a scoring draft leaves routing as it is, and while
    // both sides route the same leads from the same state, one decision serves both.
    let same_scoring = std::ptr::eq(current.scoring, draft.scoring);
    let same_routing = std::ptr::eq(current.routing, draft.routing);
    let mut states = if same_routing { States::Shared(start) } else { States::Split(start.clone(), start) };
    let mut out = Vec::with_capacity(valid.len());
    for p in valid {
        let before = score(current.scoring, p, now);
        let after = if same_scoring { before.clone() } else { score(draft.scoring, p, now) };
        let (mut before, mut after) =
            (Side::scored(current.scoring, p.lead, before), Side::scored(draft.scoring, p.lead, after));
        let qualified = |s: &Side| s.stage >= Lifecycle::Mql;
        states = match states {
            States::Shared(mut both) if before.stage == after.stage => {
                if qualified(&before) {
                    let routed = both.route(current.routing, p.lead, before.stage);
                    after.routed = Some(routed.clone());
                    before.routed = Some(routed);
                }
                States::Shared(both)
            }
            States::Shared(both) => {
                let (mut a, mut b) = (both.clone(), both);
                before.routed = qualified(&before).then(|| a.route(current.routing, p.lead, before.stage));
                after.routed = qualified(&after).then(|| b.route(draft.routing, p.lead, after.stage));
                States::Split(a, b)
            }
            States::Split(mut a, mut b) => {
                before.routed = qualified(&before).then(|| a.route(current.routing, p.lead, before.stage));
                after.routed = qualified(&after).then(|| b.route(draft.routing, p.lead, after.stage));
                States::Split(a, b)
            }
        };
        out.push(Outcome { lead_id: p.lead.id, before, after });
    }
    out
}

/// The routing state of the two sides: one while they cannot differ, two once they may.
enum States {
    Shared(Replay),
    Split(Replay, Replay),
}

/// One side's routing state as the replay moves on.
#[derive(Clone)]
struct Replay {
    cursors: BTreeMap<TeamId, TeamCursor>,
    loads: BTreeMap<RepId, u32>,
}

impl Side {
    /// The side's score and stage; routing comes after.
    fn scored(scoring: &CompiledScoring, lead: &Lead, score: Score) -> Side {
        let by_score = scoring.lifecycle_after(Lifecycle::Lead, score.total);
        let stage = scoring.lifecycle_after(lead.lifecycle, score.total);
        Side { score, stage, by_score, routed: None }
    }
}

impl Replay {
    /// Routes the lead at the stage it has on this side (team rules may test the stage).
    fn route(&mut self, routing: &CompiledRouting, lead: &Lead, stage: Lifecycle) -> Routed {
        let lead: Cow<'_, Lead> = if stage == lead.lifecycle {
            Cow::Borrowed(lead)
        } else {
            Cow::Owned(Lead { lifecycle: stage, ..lead.clone() })
        };
        let team = routing.match_team(&lead);
        let empty = TeamCursor::default();
        let cursor = team.and_then(|t| self.cursors.get(&t.id)).unwrap_or(&empty);
        let decision = routing.decide(&lead, cursor, &self.loads, lead.created_at);
        if let Some((id, next)) = decision.cursor {
            self.cursors.insert(id, next);
        }
        *self.loads.entry(decision.rep_id.clone()).or_insert(0) += 1;
        let rep = routing.rep(&decision.rep_id).map_or_else(|| decision.rep_id.clone(), |r| r.name.clone());
        Routed {
            team: team.map(|t| t.name.clone()),
            team_id: decision.team_id,
            rep_id: decision.rep_id,
            rep,
            explanation: decision.explanation,
        }
    }
}

/// The lead's score under `scoring`, as of its last scoring.
fn score(scoring: &CompiledScoring, past: &PastLead<'_>, now: DateTime<Utc>) -> Score {
    let lead = past.lead;
    let as_of = lead.score.as_ref().map_or(now, |s| s.computed_at);
    match past.activities {
        // What happened after the last scoring did not count then. Trails come oldest first.
        Some(trail) if trail.is_sorted_by_key(|a| a.at) => {
            scoring.score(lead, &trail[..trail.partition_point(|a| a.at <= as_of)], as_of)
        }
        Some(trail) => {
            let kept: Vec<Activity> = trail.iter().filter(|a| a.at <= as_of).cloned().collect();
            scoring.score(lead, &kept, as_of)
        }
        None => {
            let mut score = scoring.score(lead, &[], as_of);
            let stored = lead.score.iter().flat_map(|s| &s.reasons).filter(|r| r.kind == ScoreRuleKind::Behaviour);
            score.reasons.extend(stored.cloned());
            // Summed and rounded as `CompiledScoring::score` sums them.
            let sum = |kind: Option<ScoreRuleKind>| {
                round2(score.reasons.iter().filter(|r| kind.is_none_or(|k| r.kind == k)).map(|r| r.points).sum())
            };
            score.behaviour = sum(Some(ScoreRuleKind::Behaviour));
            score.total = sum(None);
            score
        }
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// What the draft would do to `leads`: [`replay`], counted, with up to `examples` leads per
/// dimension.
pub fn what_if(
    leads: &[PastLead<'_>],
    current: Rules<'_>,
    draft: Rules<'_>,
    state: &RoutingState,
    now: DateTime<Utc>,
    examples: usize,
) -> WhatIf {
    let outcomes = replay(leads, current, draft, state, now);
    summarize(&outcomes, leads.iter().filter(|p| !p.lead.is_valid()).count(), examples)
}

fn stage_word(s: Lifecycle) -> String {
    match s {
        Lifecycle::Lead => "Lead",
        Lifecycle::Mql => "MQL",
        Lifecycle::Sql => "SQL",
    }
    .to_string()
}

fn points(x: f64) -> String {
    format!("{}", round2(x))
}

/// The draft's score reasons, as a person reads them: `+20 Decision-maker title (…)`.
fn score_reasons(side: &Side) -> Vec<String> {
    let mut out: Vec<String> =
        side.score.reasons.iter().map(|r| format!("{:+} {}", round2(r.points), r.explanation)).collect();
    if out.is_empty() {
        out.push("No rule gives points.".into());
    }
    out.push(format!(
        "Total {}, grade {:?}, stage {}.",
        points(side.score.total),
        side.score.grade,
        stage_word(side.stage)
    ));
    out
}

fn route_reasons(side: &Side) -> Vec<String> {
    match &side.routed {
        Some(r) => r.explanation.clone(),
        None => vec![format!(
            "Not routed: stage {} (score {}) is below MQL.",
            stage_word(side.stage),
            points(side.score.total)
        )],
    }
}

const NOT_ROUTED: &str = "not routed";

/// Counts moves and keeps the newest examples of one dimension, given each outcome's
/// `(from, to)` when it changed.
fn changes<'a>(
    outcomes: &'a [Outcome],
    examples: usize,
    moved: impl Fn(&'a Outcome) -> Option<(String, String)>,
    reasons: impl Fn(&'a Outcome) -> Vec<String>,
) -> Changes {
    let mut counts: HashMap<(String, String), usize> = HashMap::new();
    let mut out = Changes::default();
    for o in outcomes.iter().rev() {
        let Some((from, to)) = moved(o) else { continue };
        out.changed += 1;
        if out.examples.len() < examples {
            out.examples.push(Example { lead_id: o.lead_id, from: from.clone(), to: to.clone(), reasons: reasons(o) });
        }
        *counts.entry((from, to)).or_insert(0) += 1;
    }
    out.moves = counts.into_iter().map(|((from, to), count)| Move { from, to, count }).collect();
    out.moves.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| (&a.from, &a.to).cmp(&(&b.from, &b.to))));
    out
}

fn differ<T: PartialEq>(a: T, b: T, label: impl Fn(T) -> String) -> Option<(String, String)> {
    (a != b).then(|| (label(a), label(b)))
}

/// The counts and examples of `outcomes`; `invalid` is how many leads were left out.
pub fn summarize(outcomes: &[Outcome], invalid: usize, examples: usize) -> WhatIf {
    let team = |s: &Side| match &s.routed {
        None => NOT_ROUTED.to_string(),
        Some(r) => r.team.clone().unwrap_or_else(|| "no team".into()),
    };
    let owner = |s: &Side| s.routed.as_ref().map_or_else(|| NOT_ROUTED.to_string(), |r| r.rep.clone());
    let score = changes(
        outcomes,
        examples,
        |o| differ(o.before.score.total, o.after.score.total, points),
        |o| score_reasons(&o.after),
    );
    WhatIf {
        leads: outcomes.len(),
        invalid,
        score_up: outcomes.iter().filter(|o| o.after.score.total > o.before.score.total).count(),
        score_down: outcomes.iter().filter(|o| o.after.score.total < o.before.score.total).count(),
        score,
        grade: changes(
            outcomes,
            examples,
            |o| differ(o.before.score.grade, o.after.score.grade, |g| format!("{g:?}")),
            |o| score_reasons(&o.after),
        ),
        stage: changes(
            outcomes,
            examples,
            |o| differ(o.before.stage, o.after.stage, stage_word),
            |o| score_reasons(&o.after),
        ),
        team: changes(
            outcomes,
            examples,
            |o| {
                let ids = |s: &Side| s.routed.as_ref().map(|r| r.team_id.clone());
                (ids(&o.before) != ids(&o.after)).then(|| (team(&o.before), team(&o.after)))
            },
            |o| route_reasons(&o.after),
        ),
        owner: changes(
            outcomes,
            examples,
            |o| {
                let ids = |s: &Side| s.routed.as_ref().map(|r| r.rep_id.clone());
                (ids(&o.before) != ids(&o.after)).then(|| (owner(&o.before), owner(&o.after)))
            },
            |o| route_reasons(&o.after),
        ),
        held: outcomes
            .iter()
            .filter(|o| o.after.by_score < o.after.stage && o.after.by_score < o.before.by_score)
            .count(),
    }
}

#[cfg(test)]
#[path = "what_if_tests.rs"]
mod tests;
