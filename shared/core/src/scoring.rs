//! Scoring: fit rules on fields, behaviour rules on activities with a per-rule half-life, a
//! grade from fit, and the lifecycle stage from thresholds. Every point carries its reason.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::ConfigError;
use crate::model::{Activity, ActivityKind, Grade, Lead, Lifecycle, Score, ScoreReason, ScoreRuleKind};
use crate::rules::{CompiledCondition, Condition};

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
    fit: Vec<(FitRule, CompiledCondition)>,
    behaviour: Vec<BehaviourRule>,
}

impl ScoringRules {
    pub fn compile(&self) -> Result<CompiledScoring, ConfigError> {
        let invalid = |what: String, message: String| ConfigError::Invalid { what, message };
        if !(self.thresholds.mql.is_finite() && self.thresholds.sql.is_finite())
            || self.thresholds.sql < self.thresholds.mql
        {
            return Err(invalid(
                "scoring thresholds".into(),
                format!("need finite mql <= sql, got mql {} and sql {}", self.thresholds.mql, self.thresholds.sql),
            ));
        }
        let mut fit = Vec::with_capacity(self.fit.len());
        for rule in &self.fit {
            if !rule.points.is_finite() {
                return Err(invalid(format!("fit rule {}", rule.id), "points must be a number".into()));
            }
            fit.push((rule.clone(), rule.when.compile(&format!("fit rule {}", rule.id))?));
        }
        for rule in &self.behaviour {
            let what = format!("behaviour rule {}", rule.id);
            if !(rule.half_life_days.is_finite() && rule.half_life_days > 0.0) {
                return Err(invalid(what, "half_life_days must be a positive number of days".into()));
            }
            if !ActivityKind::NAMES.contains(&rule.activity.as_str()) {
                return Err(invalid(
                    what,
                    format!("unknown activity `{}`; use one of {}", rule.activity, ActivityKind::NAMES.join(", ")),
                ));
            }
            if !rule.points.is_finite() || rule.max_points.is_some_and(|m| !m.is_finite()) {
                return Err(invalid(what, "points and max_points must be numbers".into()));
            }
        }
        let mut grades = self.grades.clone();
        grades.sort_by(|a, b| b.min_fit.total_cmp(&a.min_fit));
        Ok(CompiledScoring { thresholds: self.thresholds, grades, fit, behaviour: self.behaviour.clone() })
    }
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
        for (rule, cond) in &self.fit {
            if cond.matches(lead) {
                reasons.push(ScoreReason {
                    rule: rule.id.clone(),
                    kind: ScoreRuleKind::Fit,
                    points: round2(rule.points),
                    explanation: format!("{} ({})", rule.description, cond.describe()),
                });
            }
        }
        for rule in &self.behaviour {
            let mut count = 0u32;
            let mut raw = 0.0f64;
            for a in activities.iter().filter(|a| a.kind.name() == rule.activity) {
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
            reasons.push(ScoreReason {
                rule: rule.id.clone(),
                kind: ScoreRuleKind::Behaviour,
                points,
                explanation: format!(
                    "{} ({} × {}, {} points each, half-life {} days{})",
                    rule.description,
                    count,
                    rule.activity,
                    rule.points,
                    rule.half_life_days,
                    if capped != raw { ", capped" } else { "" }
                ),
            });
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
