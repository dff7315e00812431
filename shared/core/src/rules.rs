//! Conditions on lead fields, shared by fit scoring, team matching and campaign entry.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::error::ConfigError;
use crate::model::Lead;

/// `{ field = "country", in = ["DE", "AT"] }` and the like. Text comparisons ignore case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Condition {
    pub field: String,
    #[serde(flatten)]
    pub test: Test,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Test {
    Equals(String),
    In(Vec<String>),
    /// The field contains any of these words or phrases, as whole words: `head of` matches
    /// "Head of Sales" but `head` does not match "Headhunter".
    Contains(Vec<String>),
    Regex(String),
    /// The field, read as a number, lies within `[min, max]`.
    Range {
        min: Option<f64>,
        max: Option<f64>,
    },
    /// The field is present (`true`) or absent (`false`).
    Exists(bool),
}

/// Largest bound of a `range` test, either way.
pub const MAX_RANGE_BOUND: f64 = 1e15;

/// A condition ready to evaluate: regexes compiled, words lowercased.
#[derive(Debug, Clone)]
pub struct CompiledCondition {
    field: String,
    test: CompiledTest,
}

#[derive(Debug, Clone)]
enum CompiledTest {
    Equals(String),
    In(Vec<String>),
    Contains(Vec<Word>),
    Regex(regex::Regex),
    Range { min: Option<f64>, max: Option<f64> },
    Exists(bool),
}

impl Condition {
    pub fn compile(&self, what: &str) -> Result<CompiledCondition, ConfigError> {
        let invalid = |message: String| ConfigError::Invalid { what: what.to_string(), message };
        // A misspelt field would never match and nobody would notice.
        if !crate::model::is_field_name(&self.field) {
            return Err(invalid(format!(
                "unknown field `{}`; use one of {} or custom.<name>",
                self.field,
                crate::model::FIELD_NAMES.join(", ")
            )));
        }
        let test = match &self.test {
            Test::Equals(v) => CompiledTest::Equals(v.to_lowercase()),
            Test::In(vs) => CompiledTest::In(vs.iter().map(|v| v.to_lowercase()).collect()),
            Test::Contains(vs) => CompiledTest::Contains(vs.iter().map(|v| Word::new(v.to_lowercase())).collect()),
            Test::Regex(r) => CompiledTest::Regex(
                regex::RegexBuilder::new(r)
                    .case_insensitive(true)
                    .size_limit(1 << 20)
                    .build()
                    .map_err(|e| invalid(format!("bad regex: {e}")))?,
            ),
            Test::Range { min, max } => {
                // TOML can spell `nan` and `inf`; past 1e15 a float no longer tells whole numbers apart.
                for (name, bound) in [("min", min), ("max", max)] {
                    if let Some(x) = bound
                        && !(-MAX_RANGE_BOUND..=MAX_RANGE_BOUND).contains(x)
                    {
                        return Err(invalid(format!(
                            "range {name} must be a number from -{MAX_RANGE_BOUND:e} to {MAX_RANGE_BOUND:e}, got {x}"
                        )));
                    }
                }
                if let (Some(lo), Some(hi)) = (min, max)
                    && lo > hi
                {
                    return Err(invalid(format!("range min {lo} is above max {hi}")));
                }
                CompiledTest::Range { min: *min, max: *max }
            }
            Test::Exists(b) => CompiledTest::Exists(*b),
        };
        Ok(CompiledCondition { field: self.field.clone(), test })
    }
}

impl CompiledCondition {
    pub fn matches(&self, lead: &Lead) -> bool {
        let value = lead.field_ref(&self.field);
        match (&self.test, value) {
            (CompiledTest::Exists(want), v) => v.is_some() == *want,
            (_, None) => false,
            (CompiledTest::Equals(want), Some(v)) => lower(&v) == want.as_str(),
            (CompiledTest::In(set), Some(v)) => {
                let v = lower(&v);
                set.iter().any(|s| *s == v)
            }
            (CompiledTest::Contains(words), Some(v)) => {
                let v = lower(&v);
                words.iter().any(|w| contains_word(&v, w))
            }
            (CompiledTest::Regex(re), Some(v)) => re.is_match(&v),
            (CompiledTest::Range { min, max }, Some(v)) => match v.trim().parse::<f64>() {
                Ok(n) => min.is_none_or(|lo| n >= lo) && max.is_none_or(|hi| n <= hi),
                Err(_) => false,
            },
        }
    }

    /// The condition as a phrase for explanations: `country is one of de, at`.
    pub fn describe(&self) -> String {
        let f = &self.field;
        match &self.test {
            CompiledTest::Equals(v) => format!("{f} is {v}"),
            CompiledTest::In(vs) => format!("{f} is one of {}", vs.join(", ")),
            CompiledTest::Contains(ws) => {
                format!("{f} contains {}", ws.iter().map(|w| w.text.as_str()).collect::<Vec<_>>().join(" or "))
            }
            CompiledTest::Regex(re) => format!("{f} matches /{}/", re.as_str()),
            CompiledTest::Range { min, max } => match (min, max) {
                (Some(lo), Some(hi)) => format!("{f} is between {lo} and {hi}"),
                (Some(lo), None) => format!("{f} is at least {lo}"),
                (None, Some(hi)) => format!("{f} is at most {hi}"),
                (None, None) => format!("{f} is a number"),
            },
            CompiledTest::Exists(true) => format!("{f} is given"),
            CompiledTest::Exists(false) => format!("{f} is missing"),
        }
    }
}

/// `s.to_lowercase()`, borrowed when that changes nothing: lower-case ASCII, as most field
/// values are.
fn lower(s: &str) -> Cow<'_, str> {
    if !s.is_ascii() {
        Cow::Owned(s.to_lowercase())
    } else if s.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(s.to_ascii_lowercase())
    } else {
        Cow::Borrowed(s)
    }
}

/// A word a `contains` test looks for, with its searcher: made once with the rule rather than
/// for every value it is looked for in, which cost more than the search itself.
#[derive(Debug, Clone)]
struct Word {
    text: String,
    finder: memchr::memmem::Finder<'static>,
}

impl Word {
    fn new(text: String) -> Word {
        let finder = memchr::memmem::Finder::new(text.as_bytes()).into_owned();
        Word { text, finder }
    }
}

/// Whether `word` occurs in `haystack` with no letter or digit right before or after it.
fn contains_word(haystack: &str, word: &Word) -> bool {
    let needle = word.text.as_str();
    if needle.is_empty() {
        return false;
    }
    word.finder.find_iter(haystack.as_bytes()).any(|at| {
        // Both ends fall on character boundaries: the needle is whole UTF-8 and so is the
        // haystack, so a match cannot start or end inside a character.
        let before = haystack.get(..at).and_then(|s| s.chars().next_back());
        let after = haystack.get(at + needle.len()..).and_then(|s| s.chars().next());
        !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
    })
}

/// All conditions hold (an empty list always holds).
pub fn all_match(conditions: &[CompiledCondition], lead: &Lead) -> bool {
    conditions.iter().all(|c| c.matches(lead))
}

pub fn compile_all(conditions: &[Condition], what: &str) -> Result<Vec<CompiledCondition>, ConfigError> {
    conditions.iter().map(|c| c.compile(what)).collect()
}
