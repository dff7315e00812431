//! The scoring and routing rules as TOML for the console's editors, and back: the format of
//! `scoring.toml` and `routing.toml` that people already know. A draft is read as the JSON
//! admin API reads a rule set and then checked as `config_docs::save` checks it; on top of that,
//! a key the rules do not know (a typo the API would ignore) is refused. Every problem comes
//! with its field as a path (`fit[3].when.field`) and the line and column of the draft it is on.

use std::fmt::Write as _;

use leadflow_core::config::ConfigSources;
use leadflow_core::routing::RoutingConfig;
use leadflow_core::scoring::ScoringRules;
use serde::Serialize;
use serde_json::Value;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::config_docs::ConfigDoc;

/// The largest draft the editors take: rules are a page or two, not a data set.
pub const MAX_TOML_BYTES: usize = 64 * 1024;

/// What is wrong with a draft: the field as a path, where it is, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EditorError {
    pub field: String,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
}

/// A rule set the editors edit: which file it replaces, and how the API's field names for its
/// problems read as paths into its TOML.
pub trait RuleSet: ConfigDoc {
    /// `scoring` or `routing`: the page's address and the file's name.
    const KIND: &'static str;
    /// The deployed file's text.
    fn source(sources: &ConfigSources) -> &str;
    /// The path of the TOML an API error's `field` stands for (`fit.senior` → `fit[1]`), made
    /// more precise by its message where that names the key.
    fn path_of(&self, field: &str, message: &str) -> String;
}

/// `fit.<id>` → `fit[i]`: the index of the item of `items` with that id.
fn indexed<'a>(field: &str, list: &str, ids: impl Iterator<Item = &'a str>) -> Option<String> {
    let id = field.strip_prefix(list)?.strip_prefix('.')?;
    let mut ids = ids;
    ids.position(|i| i == id).map(|i| format!("{list}[{i}]"))
}

/// The key a compile message is about, by the words it uses.
fn key_in(message: &str, keys: &[(&str, &str)]) -> Option<String> {
    keys.iter().find(|(words, _)| message.contains(words)).map(|(_, key)| format!(".{key}"))
}

impl RuleSet for ScoringRules {
    const KIND: &'static str = "scoring";

    fn source(sources: &ConfigSources) -> &str {
        &sources.scoring
    }

    fn path_of(&self, field: &str, message: &str) -> String {
        if let Some(p) = indexed(field, "fit", self.fit.iter().map(|r| r.id.as_str())) {
            let keys = [
                ("unknown field", "when.field"),
                ("bad regex", "when.regex"),
                ("range min", "when.range"),
                ("points", "points"),
            ];
            return p + &key_in(message, &keys).unwrap_or_default();
        }
        if let Some(p) = indexed(field, "behaviour", self.behaviour.iter().map(|r| r.id.as_str())) {
            // `max_points` before `points`: the first key found in the message wins.
            let keys = [
                ("half_life_days", "half_life_days"),
                ("unknown activity", "activity"),
                ("max_points", "max_points"),
                ("points", "points"),
            ];
            return p + &key_in(message, &keys).unwrap_or_default();
        }
        if field == "thresholds" {
            return "thresholds.sql".into();
        }
        field.to_string()
    }
}

impl RuleSet for RoutingConfig {
    const KIND: &'static str = "routing";

    fn source(sources: &ConfigSources) -> &str {
        &sources.routing
    }

    fn path_of(&self, field: &str, message: &str) -> String {
        if let Some(p) = indexed(field, "reps", self.reps.iter().map(|r| r.id.as_str())) {
            let keys = [("time zone", "time_zone"), ("used twice", "id")];
            return p + &key_in(message, &keys).unwrap_or_default();
        }
        if let Some(p) = indexed(field, "teams", self.teams.iter().map(|t| t.id.as_str())) {
            return p + &key_in(message, &[("member", "members"), ("unknown field", "when")]).unwrap_or_default();
        }
        // `teams[0].when[1]`, from the API's own per-condition check.
        if field.contains(".when[") && message.contains("unknown field") {
            return format!("{field}.field");
        }
        field.to_string()
    }
}

/// Line and column (1-based) of byte `at` of `text`.
fn position(text: &str, at: usize) -> (usize, usize) {
    let at = at.min(text.len());
    let before = text.get(..at).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

fn error_at(text: &str, field: &str, span: Option<std::ops::Range<usize>>, message: String) -> EditorError {
    let (line, column) = span.map(|s| position(text, s.start)).unzip();
    EditorError { field: field.to_string(), line, column, message }
}

enum Segment<'a> {
    Key(&'a str),
    Index(usize),
}

/// `teams[0].when[1].field` → `teams`, 0, `when`, 1, `field`.
fn segments(path: &str) -> Vec<Segment<'_>> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let (key, rest) = part.split_once('[').unwrap_or((part, ""));
        if !key.is_empty() {
            out.push(Segment::Key(key));
        }
        for index in rest.split('[') {
            if let Ok(i) = index.trim_end_matches(']').parse() {
                out.push(Segment::Index(i));
            }
        }
    }
    out
}

/// Where the deepest part of `path` that the draft has is written: the key itself when the
/// path ends at a key, else the item or table.
fn span_of(root: &Spanned<DeTable<'_>>, path: &str) -> Option<std::ops::Range<usize>> {
    let mut span = None;
    let mut table: Option<&DeTable<'_>> = Some(root.get_ref());
    let mut value: Option<&Spanned<DeValue<'_>>> = None;
    for segment in segments(path) {
        match segment {
            Segment::Key(key) => {
                let Some((k, v)) = table.and_then(|t| t.iter().find(|(k, _)| k.get_ref().as_ref() == key)) else {
                    break;
                };
                span = Some(k.span());
                value = Some(v);
            }
            Segment::Index(i) => {
                let Some(item) = value.and_then(|v| v.get_ref().as_array()).and_then(|a| a.get(i)) else { break };
                span = Some(item.span());
                value = Some(item);
            }
        }
        table = value.and_then(|v| v.get_ref().as_table());
    }
    span
}

/// The first key of `de` that `known` (the value read back) does not have: a typo that would
/// otherwise be dropped without a word.
fn unknown_key(de: &DeTable<'_>, known: &Value, path: &str) -> Option<(String, std::ops::Range<usize>, String)> {
    let Value::Object(fields) = known else { return None };
    for (k, v) in de.iter() {
        let key: &str = k.get_ref().as_ref();
        let here = if path.is_empty() { key.to_string() } else { format!("{path}.{key}") };
        let Some(inner) = fields.get(key) else {
            let mut names: Vec<&str> = fields.keys().map(String::as_str).collect();
            names.sort_unstable();
            return Some((here, k.span(), format!("unknown key `{key}`; the keys here are {}", names.join(", "))));
        };
        match (v.get_ref(), inner) {
            (DeValue::Table(t), _) => {
                if let Some(found) = unknown_key(t, inner, &here) {
                    return Some(found);
                }
            }
            (DeValue::Array(items), Value::Array(read)) => {
                for (i, (item, back)) in items.iter().zip(read).enumerate() {
                    if let Some(t) = item.get_ref().as_table()
                        && let Some(found) = unknown_key(t, back, &format!("{here}[{i}]"))
                    {
                        return Some(found);
                    }
                }
            }
            _ => {}
        }
    }
    None
}

/// The rule set in `text`, read and checked as saving it would, or the first problem and where.
pub fn parse<D: RuleSet>(text: &str) -> Result<D, EditorError> {
    let whole = |message: String| EditorError { field: "toml".into(), line: None, column: None, message };
    if text.len() > MAX_TOML_BYTES {
        return Err(whole(format!(
            "The draft is {} KiB; at most {} KiB.",
            text.len().div_ceil(1024),
            MAX_TOML_BYTES / 1024
        )));
    }
    if text.trim().is_empty() {
        return Err(whole("The draft is empty.".into()));
    }
    let root = DeTable::parse(text)
        .map_err(|e| error_at(text, "toml", e.span(), format!("This is not valid TOML: {}", e.message().trim())))?;
    let de = toml::de::Deserializer::parse(text)
        .map_err(|e| error_at(text, "toml", e.span(), format!("This is not valid TOML: {}", e.message().trim())))?;
    let doc: D = serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." { "toml".to_string() } else { path };
        let inner = e.into_inner();
        let span = inner.span().or_else(|| span_of(&root, &field));
        error_at(text, &field, span, inner.message().trim().to_string())
    })?;
    let known = serde_json::to_value(&doc).map_err(|e| whole(format!("The rules cannot be read back: {e}")))?;
    if let Some((field, span, message)) = unknown_key(root.get_ref(), &known, "") {
        return Err(error_at(text, &field, Some(span), message));
    }
    if let Err(e) = doc.validate() {
        let field = doc.path_of(e.field.as_deref().unwrap_or("toml"), &e.message);
        return Err(error_at(text, &field, span_of(&root, &field), e.message));
    }
    Ok(doc)
}

/// Keys in the order the sample files write them; others follow alphabetically.
const KEY_ORDER: &[&str] = &[
    "fallback_owner",
    "sla_hours",
    "thresholds",
    "grades",
    "fit",
    "behaviour",
    "reps",
    "teams",
    "id",
    "name",
    "email",
    "grade",
    "min_fit",
    "description",
    "time_zone",
    "activity",
    "field",
    "rep",
    "points",
    "weight",
    "half_life_days",
    "max_points",
    "mql",
    "sql",
    "capacity",
    "active",
    "working_hours",
    "out_of_office",
    "days",
    "start",
    "end",
    "from",
    "until",
    "when",
    "members",
];

fn ordered(table: &toml::Table) -> Vec<(&String, &toml::Value)> {
    let rank = |k: &str| KEY_ORDER.iter().position(|o| *o == k).unwrap_or(KEY_ORDER.len());
    let mut entries: Vec<_> = table.iter().collect();
    entries.sort_by(|(a, _), (b, _)| rank(a).cmp(&rank(b)).then_with(|| a.cmp(b)));
    entries
}

fn key(k: &str) -> String {
    if !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
        k.to_string()
    } else {
        inline(&toml::Value::String(k.to_string()))
    }
}

/// A value on one line: `{ field = "country", in = ["DE", "AT"] }`.
fn inline(value: &toml::Value) -> String {
    match value {
        toml::Value::Table(t) => {
            let parts: Vec<String> =
                ordered(t).into_iter().map(|(k, v)| format!("{} = {}", key(k), inline(v))).collect();
            if parts.is_empty() { "{}".into() } else { format!("{{ {} }}", parts.join(", ")) }
        }
        toml::Value::Array(items) => format!("[{}]", items.iter().map(inline).collect::<Vec<_>>().join(", ")),
        // Points and hours as people write them: 15, not 15.0 (TOML reads either as a number).
        toml::Value::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", *f as i64),
        scalar => {
            let mut out = String::new();
            match serde::Serialize::serialize(scalar, toml::ser::ValueSerializer::new(&mut out)) {
                Ok(_) => out,
                Err(_) => "\"\"".into(),
            }
        }
    }
}

fn is_table_array(v: &toml::Value) -> bool {
    matches!(v, toml::Value::Array(items) if !items.is_empty() && items.iter().all(toml::Value::is_table))
}

/// The rule set as its file would say it: plain keys first, then `[tables]`, then `[[lists]]`
/// of tables, each item's nested values inline.
pub fn to_toml<D: Serialize>(doc: &D) -> Result<String, String> {
    let table = toml::Table::try_from(doc).map_err(|e| e.to_string())?;
    let entries = ordered(&table);
    let mut out = String::new();
    for (k, v) in &entries {
        if !v.is_table() && !is_table_array(v) {
            let _ = writeln!(out, "{} = {}", key(k), inline(v));
        }
    }
    for (k, v) in &entries {
        if let toml::Value::Table(t) = v {
            let _ = writeln!(out, "\n[{}]", key(k));
            for (ik, iv) in ordered(t) {
                let _ = writeln!(out, "{} = {}", key(ik), inline(iv));
            }
        }
    }
    for (k, v) in &entries {
        if let toml::Value::Array(items) = v
            && is_table_array(v)
        {
            for item in items.iter().filter_map(toml::Value::as_table) {
                let _ = writeln!(out, "\n[[{}]]", key(k));
                for (ik, iv) in ordered(item) {
                    let _ = writeln!(out, "{} = {}", key(ik), inline(iv));
                }
            }
        }
    }
    Ok(out.trim_start().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCORING: &str = include_str!("../../../../../tests/config/scoring.toml");
    const ROUTING: &str = include_str!("../../../../../tests/config/routing.toml");

    fn err<D: RuleSet + std::fmt::Debug>(text: &str) -> EditorError {
        parse::<D>(text).err().unwrap_or_else(|| panic!("passed:\n{text}"))
    }

    fn line_with(text: &str, needle: &str) -> usize {
        text.lines().position(|l| l.contains(needle)).unwrap_or_else(|| panic!("no {needle}")) + 1
    }

    #[test]
    fn the_sample_files_read_and_write_back_as_the_same_rules() {
        let scoring: ScoringRules = parse(SCORING).unwrap_or_else(|e| panic!("{e:?}"));
        let text = to_toml(&scoring).unwrap_or_else(|e| panic!("{e}"));
        assert!(text.starts_with("[thresholds]\nmql = 40\n"), "{text}");
        assert!(text.find("[[grades]]") < text.find("[[fit]]") && text.find("[[fit]]") < text.find("[[behaviour]]"));
        assert!(text.contains("when = { field = \"domain_kind\", equals = \"corporate\" }"), "{text}");
        assert_eq!(parse::<ScoringRules>(&text).unwrap_or_else(|e| panic!("{e:?}\n{text}")), scoring);

        let routing: RoutingConfig = parse(ROUTING).unwrap_or_else(|e| panic!("{e:?}"));
        let mut routing = routing;
        routing.reps[0].working_hours = Some(leadflow_core::routing::WorkingHours {
            days: vec![chrono::Weekday::Mon, chrono::Weekday::Fri],
            start: chrono::NaiveTime::from_hms_opt(9, 0, 0).unwrap_or_default(),
            end: chrono::NaiveTime::from_hms_opt(17, 30, 0).unwrap_or_default(),
        });
        let text = to_toml(&routing).unwrap_or_else(|e| panic!("{e}"));
        assert!(text.starts_with("fallback_owner = \"desk\"\nsla_hours = 4\n"), "{text}");
        assert!(text.find("[[reps]]") < text.find("[[teams]]"), "{text}");
        assert!(text.contains("members = [{ rep = \"anna\", weight = 1 }, { rep = \"ben\", weight = 1 }]"), "{text}");
        assert_eq!(parse::<RoutingConfig>(&text).unwrap_or_else(|e| panic!("{e:?}\n{text}")), routing);
    }

    #[test]
    fn broken_toml_is_told_at_its_line_and_column() {
        let text = SCORING.replace("points = 15", "points = = 15");
        let e = err::<ScoringRules>(&text);
        assert_eq!(e.field, "toml");
        assert_eq!(e.line, Some(line_with(&text, "points = = 15")), "{e:?}");
        assert!(e.column.is_some_and(|c| c > 1), "{e:?}");
    }

    #[test]
    fn a_wrong_type_or_missing_key_names_its_field_and_line() {
        let text = SCORING.replace("points = 20", "points = \"twenty\"");
        let e = err::<ScoringRules>(&text);
        assert_eq!(e.field, "fit[3].points", "{e:?}");
        assert_eq!(e.line, Some(line_with(&text, "\"twenty\"")), "{e:?}");

        let text = SCORING.replace("description = \"Left a valid phone number\"\n", "");
        let e = err::<ScoringRules>(&text);
        assert_eq!(e.field, "fit[5]", "{e:?}");
        assert!(e.message.contains("description"), "{e:?}");
        assert_eq!(e.line, Some(line_with(&text, "id = \"phone_given\"") - 1), "{e:?}");
    }

    #[test]
    fn a_rule_on_an_unknown_field_names_the_rule_s_field_and_line() {
        let text = SCORING.replace("field = \"job_title\"", "field = \"jobtitle\"");
        let e = err::<ScoringRules>(&text);
        assert_eq!(e.field, "fit[3].when.field", "{e:?}");
        assert!(e.message.contains("unknown field `jobtitle`"), "{e:?}");
        assert_eq!(e.line, Some(line_with(&text, "jobtitle")), "{e:?}");

        let text = ROUTING.replace("field = \"country\", in = [\"US\"", "field = \"land\", in = [\"US\"");
        let e = err::<RoutingConfig>(&text);
        assert_eq!(e.field, "teams[1].when[0].field", "{e:?}");
        assert_eq!(e.line, Some(line_with(&text, "\"land\"")), "{e:?}");
    }

    #[test]
    fn a_misspelt_key_is_refused_rather_than_dropped() {
        let text = SCORING.replace("max_points = 10", "max_pionts = 10");
        let e = err::<ScoringRules>(&text);
        assert_eq!(e.field, "behaviour[1].max_pionts", "{e:?}");
        assert!(e.message.contains("max_points"), "the keys it could be: {e:?}");
        assert_eq!(e.line, Some(line_with(&text, "max_pionts")), "{e:?}");
    }

    #[test]
    fn compile_errors_point_at_their_key() {
        let text = SCORING.replace("half_life_days = 7", "half_life_days = 0");
        let e = err::<ScoringRules>(&text);
        assert_eq!(e.field, "behaviour[1].half_life_days", "{e:?}");
        assert_eq!(e.line, Some(line_with(&text, "half_life_days = 0")), "{e:?}");

        let text = SCORING.replace("sql = 80", "sql = 20");
        assert_eq!(err::<ScoringRules>(&text).line, Some(line_with(&text, "sql = 20")));

        let text = ROUTING.replace("time_zone = \"Europe/London\"", "time_zone = \"Europe/Lundon\"");
        let e = err::<RoutingConfig>(&text);
        assert_eq!(e.field, "reps[1].time_zone", "{e:?}");
        assert_eq!(e.line, Some(line_with(&text, "Lundon")), "{e:?}");

        let text = ROUTING.replace("{ rep = \"carla\", weight = 1 }", "{ rep = \"carlo\", weight = 1 }");
        let e = err::<RoutingConfig>(&text);
        assert_eq!(e.field, "teams[1].members[0].rep", "{e:?}");
        assert_eq!(e.line, Some(line_with(&text, "carlo")), "{e:?}");
    }

    #[test]
    fn too_long_or_empty_a_draft_is_refused() {
        let e = err::<ScoringRules>(&format!("{SCORING}\n#{}", "x".repeat(MAX_TOML_BYTES)));
        assert!(e.message.contains("at most 64 KiB"), "{e:?}");
        assert!(err::<RoutingConfig>("  \n").message.contains("empty"));
    }
}
