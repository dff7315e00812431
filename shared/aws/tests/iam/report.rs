//! What the decisions of scripts/iam-moto.py say about each function: what it was refused, what
//! its role allowed it, and which granted permissions no request used.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use serde_json::Value;

use super::moto::Decision;
use super::stack::FunctionSpec;

pub struct Report<'a> {
    specs: &'a [FunctionSpec],
    decisions: Vec<Decision>,
}

impl<'a> Report<'a> {
    pub fn new(specs: &'a [FunctionSpec], decisions: Vec<Decision>) -> Self {
        Self { specs, decisions }
    }

    /// The function a principal is: the session of its role carries the binary's name.
    fn function(&self, principal: &str) -> Option<&'a FunctionSpec> {
        let role = principal.strip_prefix("arn:aws:sts::")?.split_once(":assumed-role/")?.1;
        let (role, _session) = role.split_once('/')?;
        self.specs.iter().find(|s| s.role_arn.ends_with(&format!(":role/{role}")))
    }

    fn name(spec: &FunctionSpec) -> String {
        format!("{} ({})", spec.binary, spec.logical_id)
    }

    /// Every refusal of a function's request (and of any request moto could not tie to a
    /// principal), one line each: function, action, resource; empty when there were none.
    pub fn denials(&self) -> String {
        let mut lines: BTreeMap<String, u32> = BTreeMap::new();
        for d in self.decisions.iter().filter(|d| !d.allowed) {
            let line = match (d.principal.as_deref(), &d.error) {
                (_, Some(error)) => {
                    let key = d.access_key.as_deref().unwrap_or_default();
                    let who = self.specs.iter().find(|s| s.credentials.access_key_id == key);
                    let who = who.map_or_else(|| format!("a request signed with key {key:?}"), Self::name);
                    format!("{who}: {} was refused before any policy was read: {error}", d.operation)
                }
                (Some(principal), None) => match self.function(principal) {
                    Some(spec) => format!(
                        "{} may not {} on {} (in {})",
                        Self::name(spec),
                        d.action.as_deref().unwrap_or("?"),
                        d.resource.as_deref().unwrap_or("?"),
                        d.operation
                    ),
                    // The observer may do anything; another principal is the test's own mistake.
                    None => continue,
                },
                (None, None) => continue,
            };
            *lines.entry(line).or_default() += 1;
        }
        lines
            .into_iter()
            .map(|(l, n)| format!("  {l}{}", if n > 1 { format!(" ({n} times)") } else { String::new() }))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Per function: the (action, resource) pairs it was allowed, with how often.
    pub fn used(&self) -> BTreeMap<String, BTreeMap<(String, String), u32>> {
        let mut used: BTreeMap<String, BTreeMap<(String, String), u32>> = BTreeMap::new();
        for d in self.decisions.iter().filter(|d| d.allowed) {
            let Some(spec) = d.principal.as_deref().and_then(|p| self.function(p)) else { continue };
            let pair = (d.action.clone().unwrap_or_default(), d.resource.clone().unwrap_or_default());
            *used.entry(spec.binary.clone()).or_default().entry(pair).or_default() += 1;
        }
        used
    }

    /// Operations of the functions whose resource scripts/iam-moto.py could not derive (checked
    /// against `*` only).
    pub fn underived(&self) -> BTreeSet<String> {
        self.decisions
            .iter()
            .filter(|d| !d.derived && d.principal.as_deref().and_then(|p| self.function(p)).is_some())
            .map(|d| d.operation.clone())
            .collect()
    }

    /// The granted (action, resource) pairs of each function's statements that no request used.
    pub fn unused(&self) -> BTreeMap<String, Vec<(String, String)>> {
        let used = self.used();
        let mut unused = BTreeMap::new();
        for spec in self.specs {
            let mine = used.get(&spec.binary).cloned().unwrap_or_default();
            let mut idle = Vec::new();
            for statement in &spec.statements {
                if statement["Effect"] != "Allow" {
                    continue;
                }
                for action in strings(&statement["Action"]) {
                    for resource in strings(&statement["Resource"]) {
                        let hit = mine.keys().any(|(a, r)| glob(&action, a) && glob(&resource, r));
                        if !hit {
                            idle.push((action.clone(), resource.clone()));
                        }
                    }
                }
            }
            unused.insert(spec.binary.clone(), idle);
        }
        unused
    }

    /// The summary the test prints: per function, what it did and what it never used.
    pub fn summary(&self) -> String {
        let used = self.used();
        let unused = self.unused();
        let mut out = String::from("IAM: every request each function made, checked against its own role\n");
        for spec in self.specs {
            let _ = writeln!(out, "  {}", Self::name(spec));
            for ((action, resource), n) in used.get(&spec.binary).into_iter().flatten() {
                let _ = writeln!(out, "    allowed {action:<28} {resource}  x{n}");
            }
            for (action, resource) in unused.get(&spec.binary).into_iter().flatten() {
                let _ = writeln!(out, "    unused  {action:<28} {resource}");
            }
        }
        let underived = self.underived();
        if !underived.is_empty() {
            let _ = writeln!(out, "  checked on resource * only: {underived:?}");
        }
        out
    }
}

fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items.iter().filter_map(|i| i.as_str().map(str::to_string)).collect(),
        _ => Vec::new(),
    }
}

/// IAM's wildcard match: `*` any run of characters, `?` any one; case-sensitive, as for ARNs
/// (actions are compared as written in the template, which uses the services' own case).
pub fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}
