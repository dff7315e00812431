//! A team's conditions as rows of a form (field, test, value), so that an admin edits them
//! without a script or a rule language: each row reads back as the condition it came from, and
//! a bad row is told at the row.

use leadflow_core::rules::{Condition, Test};
use serde::Serialize;

use super::Errors;
use crate::config_docs::MAX_NAME_CHARS;

/// Longest value of one condition row (a list of countries, a regex).
pub const MAX_VALUE_CHARS: usize = 1_000;

/// The tests a row may pick: the form's value and how it reads.
pub(super) const TESTS: [(&str, &str); 7] = [
    ("equals", "is"),
    ("in", "is one of"),
    ("contains", "contains"),
    ("regex", "matches"),
    ("range", "is between"),
    ("given", "is given"),
    ("missing", "is missing"),
];

/// One condition row as typed.
#[derive(Debug, Default, Clone, PartialEq, Serialize)]
pub(super) struct Row {
    pub(super) field: String,
    pub(super) test: String,
    pub(super) value: String,
}

fn number(n: Option<f64>) -> String {
    n.map(|n| n.to_string()).unwrap_or_default()
}

impl Row {
    pub(super) fn of(c: &Condition) -> Row {
        let (test, value) = match &c.test {
            Test::Equals(v) => ("equals", v.clone()),
            Test::In(vs) => ("in", vs.join(", ")),
            Test::Contains(vs) => ("contains", vs.join(", ")),
            Test::Regex(r) => ("regex", r.clone()),
            Test::Range { min, max } => ("range", format!("{}..{}", number(*min), number(*max))),
            Test::Exists(true) => ("given", String::new()),
            Test::Exists(false) => ("missing", String::new()),
        };
        Row { field: c.field.clone(), test: test.to_string(), value }
    }

    pub(super) fn blank(&self) -> bool {
        self.field.is_empty() && self.value.is_empty()
    }

    /// The condition the row asks for; its problem goes to `errors` at `when_<n>`.
    pub(super) fn condition(&self, n: usize, errors: &mut Errors) -> Option<Condition> {
        let at = format!("when_{n}");
        if self.field.is_empty() {
            errors.add(at, "name the lead's field, such as country or custom.industry");
            return None;
        }
        if self.field.chars().count() > MAX_NAME_CHARS || self.value.chars().count() > MAX_VALUE_CHARS {
            errors.add(at, format!("a value may be at most {MAX_VALUE_CHARS} characters"));
            return None;
        }
        let list = || -> Vec<String> {
            self.value.split(',').map(str::trim).filter(|v| !v.is_empty()).map(str::to_string).collect()
        };
        let needs_value = |errors: &mut Errors, what: &str| {
            errors.add(format!("when_{n}"), format!("give {what}"));
            None
        };
        let test = match self.test.as_str() {
            "equals" if self.value.is_empty() => return needs_value(errors, "the value"),
            "equals" => Test::Equals(self.value.clone()),
            "in" | "contains" if list().is_empty() => {
                return needs_value(errors, "one or more values, separated by commas");
            }
            "in" => Test::In(list()),
            "contains" => Test::Contains(list()),
            "regex" if self.value.is_empty() => return needs_value(errors, "a regular expression"),
            "regex" => Test::Regex(self.value.clone()),
            "range" => match range(&self.value) {
                Some((min, max)) => Test::Range { min, max },
                None => return needs_value(errors, "two numbers such as 10..500 (10.. or ..500 for one bound)"),
            },
            "given" => Test::Exists(true),
            "missing" => Test::Exists(false),
            _ => {
                errors.add(at, "choose a test from the list");
                return None;
            }
        };
        Some(Condition { field: self.field.clone(), test })
    }
}

/// `10..500`, `10..`, `..500`: at least one finite bound.
fn range(raw: &str) -> Option<(Option<f64>, Option<f64>)> {
    let (lo, hi) = raw.split_once("..")?;
    let bound = |s: &str| -> Result<Option<f64>, ()> {
        let s = s.trim();
        if s.is_empty() {
            return Ok(None);
        }
        s.parse::<f64>().ok().filter(|n| n.is_finite()).map(Some).ok_or(())
    };
    match (bound(lo), bound(hi)) {
        (Ok(None), Ok(None)) | (Err(_), _) | (_, Err(_)) => None,
        (Ok(min), Ok(max)) => Some((min, max)),
    }
}

/// A condition as a person reads it: `country is one of DE, AT`.
pub(super) fn condition_words(c: &Condition) -> String {
    let f = &c.field;
    match &c.test {
        Test::Equals(v) => format!("{f} is {v}"),
        Test::In(vs) => format!("{f} is one of {}", vs.join(", ")),
        Test::Contains(vs) => format!("{f} contains {}", vs.join(" or ")),
        Test::Regex(r) => format!("{f} matches /{r}/"),
        Test::Range { min: Some(lo), max: Some(hi) } => format!("{f} is between {lo} and {hi}"),
        Test::Range { min: Some(lo), max: None } => format!("{f} is at least {lo}"),
        Test::Range { min: None, max: Some(hi) } => format!("{f} is at most {hi}"),
        Test::Range { min: None, max: None } => format!("{f} is a number"),
        Test::Exists(true) => format!("{f} is given"),
        Test::Exists(false) => format!("{f} is missing"),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn row(field: &str, test: &str, value: &str) -> Row {
        Row { field: field.into(), test: test.into(), value: value.into() }
    }

    #[test]
    fn rows_read_back_as_the_conditions_they_came_from() {
        let conditions: Vec<Condition> = serde_json::from_value(json!([
            { "field": "country", "in": ["DE", "AT"] },
            { "field": "job_title", "contains": ["head of", "vp"] },
            { "field": "company", "equals": "Acme" },
            { "field": "email_domain", "regex": "^acme\\." },
            { "field": "custom.employees", "range": { "min": 10.0, "max": null } },
            { "field": "phone", "exists": false },
        ]))
        .unwrap_or_else(|e| panic!("{e}"));
        let mut errors = Errors::default();
        for (n, c) in conditions.iter().enumerate() {
            assert_eq!(Row::of(c).condition(n, &mut errors).as_ref(), Some(c));
        }
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(condition_words(&conditions[0]), "country is one of DE, AT");
        assert_eq!(condition_words(&conditions[4]), "custom.employees is at least 10");
    }

    #[test]
    fn a_bad_row_is_told_at_its_row() {
        for (r, why) in [
            (row("", "in", "DE"), "no field"),
            (row("country", "in", " , "), "no values"),
            (row("employees", "range", "ten..20"), "not a number"),
            (row("employees", "range", ".."), "no bound"),
            (row("country", "sounds like", "DE"), "no such test"),
            (row("country", "equals", &"x".repeat(MAX_VALUE_CHARS + 1)), "too long"),
        ] {
            let mut errors = Errors::default();
            assert_eq!(r.condition(3, &mut errors), None, "{why}");
            assert!(errors.get("when_3").is_some(), "{why}: {errors:?}");
        }
    }
}
