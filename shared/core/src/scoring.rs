//! Scoring: fit rules on fields, behaviour rules on activities with a per-rule half-life, a
//! grade from fit, and the lifecycle stage from thresholds. Every point carries its reason.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::ConfigError;
use crate::model::{Activity, ActivityKind, Grade, Lead, Lifecycle, Score, ScoreReason, ScoreRuleKind};
use crate::rules::{CompiledCondition, Condition};
use bounds::{MAX_CAP, MAX_HALF_LIFE_DAYS, MAX_POINTS, MAX_THRESHOLD, MIN_HALF_LIFE_DAYS};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoringRules {
    pub thresholds: Thresholds,
    #[serde(default)]
    pub grades: Vec<GradeBand>,
    #[serde(default)]
    pub fit: Vec<FitRule>,
    #[serde(default)]
    pub behaviour: Vec<BehaviourRule>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Thresholds {
    /// Marketing-qualified at this total score: the lead is routed to sales.
    pub mql: f64,
    /// Sales-qualified at this total score.
    pub sql: f64,
}

/// The grade a lead gets when its fit points reach `min_fit`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GradeBand {
    pub grade: Grade,
    pub min_fit: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FitRule {
    pub id: String,
    pub description: String,
    /// May be negative.
    pub points: f64,
    pub when: Condition,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BehaviourRule {
    pub id: String,
    pub description: String,
    /// Activity kind this rule counts: `form_submission`, `email_open`, `email_click`, …
    pub activity: String,
    /// Points for one such activity when it just happened.
    pub points: f64,
    /// Days after which an activity is worth half its points.
    pub half_life_days: f64,
    /// Cap on what this rule can give in total.
    pub max_points: Option<f64>,
}

#[derive(Debug, Clone)]
pub struct CompiledScoring {
    pub thresholds: Thresholds,
    grades: Vec<GradeBand>,
    /// Each fit rule with its condition and its explanation, which only depends on the rule.
    fit: Vec<(FitRule, CompiledCondition, String)>,
    /// Each behaviour rule with the part of its explanation after the count, which only depends
    /// on the rule: formatting its numbers for every lead was a good part of scoring's time.
    behaviour: Vec<(BehaviourRule, String)>,
}

/// Bounds of every number in the scoring rules. Each is far beyond any sensible setting, so it
/// only refuses typos and mischief, and keeps every score finite and exact in hundredths: a rule
/// worth 1e300 once made totals infinite, stored as `null`, and the lead unreadable.
pub mod bounds {
    /// Points of one fit or behaviour rule: from `-MAX_POINTS` to `MAX_POINTS`.
    pub const MAX_POINTS: f64 = 1_000.0;
    /// The size of a behaviour rule's cap (its sign is ignored).
    pub const MAX_CAP: f64 = 100_000.0;
    /// Thresholds and grade bands: from `-MAX_THRESHOLD` to `MAX_THRESHOLD`.
    pub const MAX_THRESHOLD: f64 = 100_000.0;
    /// Shortest half-life: about a quarter of an hour.
    pub const MIN_HALF_LIFE_DAYS: f64 = 0.01;
    /// Longest half-life: ten years, past which nothing decays in a lead's lifetime.
    pub const MAX_HALF_LIFE_DAYS: f64 = 3_650.0;
}

/// `name` lies in `lo..=hi`: a message naming it and the range when not (NaN never does).
fn in_range(name: &str, x: f64, lo: f64, hi: f64) -> Result<(), String> {
    if lo <= x && x <= hi { Ok(()) } else { Err(format!("{name} must be from {lo} to {hi}, got {x}")) }
}

impl ScoringRules {
    pub fn compile(&self) -> Result<CompiledScoring, ConfigError> {
        let invalid = |what: String, message: String| ConfigError::Invalid { what, message };
        let t = self.thresholds;
        in_range("mql", t.mql, -MAX_THRESHOLD, MAX_THRESHOLD).map_err(|m| invalid("thresholds.mql".into(), m))?;
        in_range("sql", t.sql, -MAX_THRESHOLD, MAX_THRESHOLD).map_err(|m| invalid("thresholds.sql".into(), m))?;
        if t.sql < t.mql {
            return Err(invalid(
                "scoring thresholds".into(),
                format!("need mql <= sql, got mql {} and sql {}", t.mql, t.sql),
            ));
        }
        for (i, band) in self.grades.iter().enumerate() {
            in_range("min_fit", band.min_fit, -MAX_THRESHOLD, MAX_THRESHOLD)
                .map_err(|m| invalid(format!("grades[{i}].min_fit"), m))?;
        }
        let mut fit = Vec::with_capacity(self.fit.len());
        for rule in &self.fit {
            let what = format!("fit rule {}", rule.id);
            in_range("points", rule.points, -MAX_POINTS, MAX_POINTS).map_err(|m| invalid(what.clone(), m))?;
            let cond = rule.when.compile(&what)?;
            let explanation = format!("{} ({})", rule.description, cond.describe());
            fit.push((rule.clone(), cond, explanation));
        }
        for rule in &self.behaviour {
            let what = format!("behaviour rule {}", rule.id);
            if !(MIN_HALF_LIFE_DAYS..=MAX_HALF_LIFE_DAYS).contains(&rule.half_life_days) {
                return Err(invalid(
                    what,
                    format!(
                        "half_life_days must be a number of days from {MIN_HALF_LIFE_DAYS} to {MAX_HALF_LIFE_DAYS}, got {}",
                        rule.half_life_days
                    ),
                ));
            }
            if !ActivityKind::NAMES.contains(&rule.activity.as_str()) {
                return Err(invalid(
                    what,
                    format!("unknown activity `{}`; use one of {}", rule.activity, ActivityKind::NAMES.join(", ")),
                ));
            }
            in_range("points", rule.points, -MAX_POINTS, MAX_POINTS).map_err(|m| invalid(what.clone(), m))?;
            if let Some(cap) = rule.max_points {
                in_range("max_points", cap, -MAX_CAP, MAX_CAP).map_err(|m| invalid(what.clone(), m))?;
            }
        }
        let mut grades = self.grades.clone();
        grades.sort_by(|a, b| b.min_fit.total_cmp(&a.min_fit));
        let behaviour = self
            .behaviour
            .iter()
            .map(|rule| {
                let tail = format!(
                    " × {}, {} points each, half-life {} days",
                    rule.activity, rule.points, rule.half_life_days
                );
                (rule.clone(), tail)
            })
            .collect();
        Ok(CompiledScoring { thresholds: self.thresholds, grades, fit, behaviour })
    }
}

/// Whether an activity is a click on an unsubscribe link. No behaviour rule counts one: the
/// footer's link is left out of click tracking now, but emails sent before were not, and a mail
/// scanner opening every link would push a lead towards sales for asking to leave. The click
/// stays on the trail as it happened.
pub fn is_unsubscribe_click(kind: &ActivityKind) -> bool {
    matches!(kind, ActivityKind::EmailClicked { url: Some(url), .. } if is_unsubscribe_link(url))
}

/// Whether `url` is an unsubscribe link as nurture writes them, `<public URL>/u/<token>` with a
/// token shaped as [`crate::unsubscribe::sign`] makes them (a lead id, a key id if the link is
/// newer than key rotation, and a 128-bit hex MAC).
/// Any host: the public URL may have changed since the email went out. The token's shape keeps
/// a page of the sender's own site that happens to live under `/u/` counted.
pub fn is_unsubscribe_link(url: &str) -> bool {
    let url = url.trim();
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let Some(path) = after_scheme.find('/').map(|i| &after_scheme[i..]) else { return false };
    let path = path.split(['?', '#']).next().unwrap_or_default();
    let Some((_, token)) = path.rsplit_once("/u/") else { return false };
    !token.contains('/') && crate::unsubscribe::is_token_shaped(token)
}

/// Points rounded to hundredths, so that the reasons shown add up to the total shown.
fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

impl CompiledScoring {
    /// Scores a lead at `now`. Deterministic: the same lead, activities and time give the same
    /// score, and `total` is exactly the sum of the reasons' points, in hundredths.
    pub fn score(&self, lead: &Lead, activities: &[Activity], now: DateTime<Utc>) -> Score {
        let mut reasons = Vec::new();
        for (rule, cond, explanation) in &self.fit {
            if cond.matches(lead) {
                reasons.push(ScoreReason {
                    rule: rule.id.clone(),
                    kind: ScoreRuleKind::Fit,
                    points: round2(rule.points),
                    explanation: explanation.clone(),
                });
            }
        }
        for (rule, tail) in &self.behaviour {
            let mut count = 0u32;
            let mut raw = 0.0f64;
            for a in activities.iter().filter(|a| a.kind.name() == rule.activity && !is_unsubscribe_click(&a.kind)) {
                let age_days = (now - a.at).num_milliseconds().max(0) as f64 / 86_400_000.0;
                raw += rule.points * 0.5f64.powf(age_days / rule.half_life_days);
                count += 1;
            }
            if count == 0 {
                continue;
            }
            // The cap is a size, as for negative rules: a positive rule whose cap is written
            // `-20` must not give negative points.
            let capped = match rule.max_points {
                Some(cap) if rule.points >= 0.0 => raw.min(cap.abs()),
                Some(cap) => raw.max(-cap.abs()),
                None => raw,
            };
            let points = round2(capped);
            if points == 0.0 {
                continue;
            }
            // `description (count tail, capped)`, written out by hand: every scored lead pays
            // for it, and `format!` cost three times as much.
            let count = count.to_string();
            let mut explanation = String::with_capacity(rule.description.len() + count.len() + tail.len() + 12);
            explanation.push_str(&rule.description);
            explanation.push_str(" (");
            explanation.push_str(&count);
            explanation.push_str(tail);
            if capped != raw {
                explanation.push_str(", capped");
            }
            explanation.push(')');
            reasons.push(ScoreReason { rule: rule.id.clone(), kind: ScoreRuleKind::Behaviour, points, explanation });
        }
        // Hundredths summed as binary fractions drift (20 + 16.13 + 13.87 is 49.99999999999999):
        // rounding the sums again keeps the totals equal to what the reasons show, so a lead whose
        // reasons add up to a threshold or a grade band reaches it.
        let fit = round2(reasons.iter().filter(|r| r.kind == ScoreRuleKind::Fit).map(|r| r.points).sum());
        let behaviour = round2(reasons.iter().filter(|r| r.kind == ScoreRuleKind::Behaviour).map(|r| r.points).sum());
        let total = round2(reasons.iter().map(|r| r.points).sum());
        Score { total, fit, behaviour, grade: self.grade(fit), reasons, computed_at: now }
    }

    pub fn grade(&self, fit: f64) -> Grade {
        self.grades.iter().find(|b| fit >= b.min_fit).map(|b| b.grade).unwrap_or(Grade::D)
    }

    /// The stage after this score. Stages only move forward: a decaying score does not take a
    /// lead back from sales.
    pub fn lifecycle_after(&self, current: Lifecycle, total: f64) -> Lifecycle {
        let by_score = if total >= self.thresholds.sql {
            Lifecycle::Sql
        } else if total >= self.thresholds.mql {
            Lifecycle::Mql
        } else {
            Lifecycle::Lead
        };
        current.max(by_score)
    }
}
