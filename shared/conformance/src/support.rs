//! What the checks of several roles build on: reading back what a check wrote, and failing with
//! what was being done rather than an `unwrap` without context.

use std::collections::BTreeMap;
use std::fmt::Debug;

use chrono::{DateTime, Utc};
use leadflow_core::model::{Lead, LeadId};
use leadflow_core::ports::{AssignOutcome, AssignmentWrite, CreateOutcome, LeadStore, WriteOutcome};
use leadflow_memory::fixtures::owned_by;

/// The answer of a store call that must succeed; `what` names the call in the panic.
#[track_caller]
pub fn ok<T, E: Debug>(result: Result<T, E>, what: &str) -> T {
    match result {
        Ok(value) => value,
        Err(e) => panic!("{what}: {e:?}"),
    }
}

pub async fn stored<S: LeadStore>(store: &S, lead: LeadId) -> Lead {
    match store.get_lead(lead).await {
        Ok(Some(l)) => l,
        other => panic!("lead {lead} cannot be read back: {other:?}"),
    }
}

pub async fn created<S: LeadStore>(store: &S, l: &Lead) {
    assert_eq!(store.create_lead(l, &[]).await.ok(), Some(CreateOutcome::Created), "creating {}", l.id);
}

/// Writes `l` over the stored version it was read at (`l.version`).
pub async fn updated<S: LeadStore>(store: &S, l: &Lead) {
    let written = store.update_lead(l, l.version, &[]).await.ok();
    assert_eq!(written, Some(WriteOutcome::Written), "updating {}", l.id);
}

/// Assigns the stored lead to `rep` as routing does, without a team cursor.
pub async fn assigned<S: LeadStore>(store: &S, lead: LeadId, rep: &str, sla_due_at: DateTime<Utc>) {
    let current = stored(store, lead).await;
    let write = AssignmentWrite {
        expected_lead_version: current.version,
        lead: owned_until(current, rep, sla_due_at),
        team_cursor: None,
        trail: Vec::new(),
        claim: None,
    };
    assert_eq!(store.assign(&write).await.ok(), Some(AssignOutcome::Assigned), "assigning {lead} to {rep}");
}

/// The lead owned by `rep`, whose SLA runs out at `due`.
pub fn owned_until(lead: Lead, rep: &str, due: DateTime<Utc>) -> Lead {
    let mut owned = owned_by(lead, rep);
    if let Some(owner) = owned.owner.as_mut() {
        owner.sla_due_at = due;
    }
    owned
}

pub fn loads(pairs: &[(&str, u32)]) -> BTreeMap<String, u32> {
    pairs.iter().map(|(rep, n)| (rep.to_string(), *n)).collect()
}

pub async fn assert_loads<S: LeadStore>(store: &S, expected: &[(&str, u32)], when: &str) {
    assert_eq!(ok(store.rep_loads().await, "rep loads"), loads(expected), "open leads per rep {when}");
}

/// Every page from the first, `fetch` answering a page and the next cursor: the items in the
/// order handed out, and the number of pages. A page holds at most `limit` items (0 is taken as
/// 1), and a cursor is text without an address in it.
pub async fn every_page<T>(
    limit: usize,
    mut fetch: impl AsyncFnMut(Option<String>) -> (Vec<T>, Option<String>),
) -> (Vec<T>, usize) {
    let mut seen = Vec::new();
    let mut cursor = None;
    for pages in 1..=1000 {
        let (items, next) = fetch(cursor).await;
        assert!(items.len() <= limit.max(1), "a page of {} for limit {limit}", items.len());
        seen.extend(items);
        match next {
            Some(next) => {
                assert!(!next.is_empty() && !next.contains('@'), "{next}");
                cursor = Some(next);
            }
            None => return (seen, pages),
        }
    }
    panic!("the pages did not end after 1000 of {limit}");
}
