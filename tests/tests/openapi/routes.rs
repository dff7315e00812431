//! The routes the local stack answers, read from the routers' own source rather than copied:
//! `infra/src/dev.rs` joins routers with `.merge(…)`, and each router lists its routes as
//! `.route(path, get(…).post(…))`. axum cannot list a router's routes at run time, so the
//! source is where they are written down once.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The routers `infra/src/dev.rs` merges, and the file each one's routes are written in; `None`
/// for the console, HTML pages for browsers that the document leaves out on purpose.
const ROUTERS: &[(&str, Option<&str>)] = &[
    ("leadflow_capture::router", Some("functions/capture/src/lib.rs")),
    ("leadflow_admin::router", Some("functions/admin/src/lib.rs")),
    ("leadflow_admin::dead_letters::router", Some("functions/admin/src/dead_letters.rs")),
    ("leadflow_admin::console::router", None),
    ("leadflow_unsubscribe::router", Some("functions/unsubscribe/src/lib.rs")),
];

const LOCAL_STACK: &str = "infra/src/dev.rs";

/// Every `(METHOD, path)` the local stack answers, the console's pages left out.
pub fn local_stack_routes(repo: &Path) -> BTreeSet<(String, String)> {
    let dev = repo.join(LOCAL_STACK);
    let dev_text = code(&dev);
    let mut files = vec![dev.clone()];
    for callee in calls(&dev_text, ".merge(").into_iter().map(|args| callee_of(&args)) {
        match ROUTERS.iter().find(|(name, _)| *name == callee) {
            Some((_, Some(file))) => files.push(repo.join(file)),
            Some((_, None)) => {}
            // A router made in dev.rs itself: its routes are read with dev.rs's own.
            None if dev_text.contains(&format!("fn {callee}(")) => {}
            None => panic!("{LOCAL_STACK} joins `{callee}`, which this test does not read: add it to ROUTERS"),
        }
    }
    let mut out = BTreeSet::new();
    for file in files {
        for args in calls(&code(&file), ".route(") {
            let (path, handlers) =
                args.split_once(',').unwrap_or_else(|| panic!("{}: a route without handlers: {args}", file.display()));
            let path = resolve_path(&file, path.trim());
            let methods = methods(handlers);
            assert!(!methods.is_empty(), "{}: no method read from the route {path}: {handlers}", file.display());
            out.extend(methods.into_iter().map(|m| (m, path.clone())));
        }
    }
    out
}

/// The file without comment lines, so that a doc comment quoting `.route(` is not a route.
fn code(file: &Path) -> String {
    let text = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    text.lines().filter(|l| !l.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n")
}

/// The argument text of every call that starts with `opening` (which ends in its `(`).
fn calls(text: &str, opening: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(at) = text[from..].find(opening) {
        let start = from + at + opening.len();
        let (args, end) = balanced(text, start);
        out.push(args.to_string());
        from = end;
    }
    out
}

/// The text from `start` to the `)` that closes the `(` just before it, and where that is.
fn balanced(text: &str, start: usize) -> (&str, usize) {
    let (mut depth, mut in_string, mut escaped) = (1usize, false, false);
    for (i, ch) in text[start..].char_indices() {
        match ch {
            _ if escaped => escaped = false,
            '\\' if in_string => escaped = true,
            '"' => in_string = !in_string,
            '(' if !in_string => depth += 1,
            ')' if !in_string => {
                depth -= 1;
                if depth == 0 {
                    return (&text[start..start + i], start + i + 1);
                }
            }
            _ => {}
        }
    }
    panic!("an unclosed call in the router source: {}", &text[start..text.len().min(start + 80)])
}

/// `leadflow_capture::router` of `leadflow_capture::router(Arc::clone(&ports))`.
fn callee_of(args: &str) -> String {
    args.split('(').next().unwrap_or("").trim().to_string()
}

/// A route's path: a literal, or a `const` (`SCRIPT_PATH`, `thanks::PATH`) of the file or of a
/// module next to it.
fn resolve_path(file: &Path, expr: &str) -> String {
    if let Some(literal) = expr.strip_prefix('"') {
        return literal.split('"').next().unwrap_or("").to_string();
    }
    let mut segments: Vec<&str> = expr.split("::").filter(|s| !matches!(*s, "crate" | "self")).collect();
    let name = segments.pop().unwrap_or(expr);
    let dir = file.parent().map(Path::to_path_buf).unwrap_or_default();
    let source: PathBuf = match segments.as_slice() {
        [] => file.to_path_buf(),
        modules => {
            let base = modules.iter().fold(dir, |d, m| d.join(m));
            let flat = base.with_extension("rs");
            if flat.exists() { flat } else { base.join("mod.rs") }
        }
    };
    let text = code(&source);
    let marker = format!("const {name}: &str = \"");
    let at =
        text.find(&marker).unwrap_or_else(|| panic!("{}: no `{marker}` for the route path {expr}", source.display()));
    text[at + marker.len()..].split('"').next().unwrap_or("").to_string()
}

/// The HTTP methods of a route's handlers: `get(…)`, `.post(…)`, `axum::routing::put(…)`.
fn methods(handlers: &str) -> BTreeSet<String> {
    const NAMES: &[&str] = &["get", "post", "put", "delete", "patch", "head", "options", "trace"];
    assert!(
        !calls_fn(handlers, "any") && !calls_fn(handlers, "on"),
        "a route for any method (`any`, `on`) cannot be compared with the document: {handlers}"
    );
    NAMES.iter().filter(|name| calls_fn(handlers, name)).map(|name| name.to_ascii_uppercase()).collect()
}

/// Whether `text` calls the function `name` (`name(`, `.name(`, `path::name(`), not one whose
/// name merely ends in it (`set_status(`).
fn calls_fn(text: &str, name: &str) -> bool {
    let mut from = 0;
    while let Some(at) = text[from..].find(name) {
        let start = from + at;
        let before = text[..start].chars().next_back();
        let after = text[start + name.len()..].trim_start();
        if !before.is_some_and(|c| c.is_alphanumeric() || c == '_') && after.starts_with('(') {
            return true;
        }
        from = start + name.len();
    }
    false
}
