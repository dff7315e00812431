//! mailchecker's list of throwaway-mail domains as one text for `normalize::is_disposable`.
//!
//! Linked as mailchecker ships it (a slice of ~56 000 `&str`), each entry is a pointer the
//! loader must relocate: 1.3 MB of relocations and 0.9 MB of pointers, ≈ 290 KB of a zipped
//! Lambda function. As one text it is its bytes alone, and two steps make those fewer without
//! changing an answer (docs/performance.md, "Function size"):
//! - a domain is left out when a parent of it is listed, since `is_disposable` looks up every
//!   parent down to (not including) the bare TLD (≈ 1 300 domains);
//! - the sorted domains are front-coded: each line is one character saying how many leading
//!   bytes the domain shares with the line before (`'0'` for none, at most [`MAX_SHARED`]), then
//!   the rest of it. `normalize::expand_front_coded` reads it back.
//!
//! Together ≈ 63 KB fewer zipped than the plain list.

use std::collections::BTreeSet;
use std::path::Path;

/// The most shared bytes one character counts: `'0' + 78` is `'~'`, the last printable ASCII.
const MAX_SHARED: usize = 78;

fn main() {
    let out = std::env::var("OUT_DIR").unwrap_or_else(|e| panic!("cargo sets OUT_DIR: {e}"));
    let listed: BTreeSet<&str> = mailchecker::blacklist().into_iter().collect();
    if let Some(odd) = listed
        .iter()
        .find(|d| !d.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-'))
    {
        // The coding counts bytes, and lookups are of lower-case ASCII (IDNA) domains.
        panic!("mailchecker lists {odd:?}, not a lower-case ASCII domain");
    }
    let mut coded = String::with_capacity(700_000);
    let mut previous = "";
    for domain in listed.iter().copied().filter(|d| !a_parent_is_listed(d, &listed)) {
        let shared = previous.bytes().zip(domain.bytes()).take_while(|(a, b)| a == b).count().min(MAX_SHARED);
        coded.push(char::from(b'0' + shared as u8));
        coded.push_str(&domain[shared..]);
        coded.push('\n');
        previous = domain;
    }
    let target = Path::new(&out).join("disposable_email_domains.txt");
    std::fs::write(&target, coded).unwrap_or_else(|e| panic!("{}: {e}", target.display()));
}

/// Whether a parent of `domain` that `is_disposable` looks up (one with a dot) is listed.
fn a_parent_is_listed(domain: &str, listed: &BTreeSet<&str>) -> bool {
    let mut rest = domain;
    while let Some((_, parent)) = rest.split_once('.') {
        if !parent.contains('.') {
            return false;
        }
        if listed.contains(parent) {
            return true;
        }
        rest = parent;
    }
    false
}
