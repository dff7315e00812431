//! A rep's open leads (`open_leads_of`): the store's own index answers them, newest first, and
//! every write of a lead (assignment, a won or lost deal, a new owner, erasure) moves it in or out.

use leadflow_core::erasure::tombstone;
use leadflow_core::error::StoreError;
use leadflow_core::model::{Lead, LeadId, SalesStatus};
use leadflow_core::normalize::email_key;
use leadflow_core::ports::{AssignOutcome, AssignmentWrite, CreateOutcome, LeadStore, WriteOutcome};
use leadflow_memory::fixtures::{id, lead, owned_by, t};

async fn stored<S: LeadStore>(store: &S, lead: LeadId) -> Lead {
    match store.get_lead(lead).await {
        Ok(Some(l)) => l,
        other => panic!("lead {lead} cannot be read back: {other:?}"),
    }
}

/// Creates lead `n` and assigns it to `rep` as routing does (lead `n` is newer than lead `n - 1`).
async fn assigned<S: LeadStore>(store: &S, n: u64, rep: &str) {
    let l = lead(n, &format!("lead{n}@x.example"));
    assert_eq!(store.create_lead(&l, &[]).await.ok(), Some(CreateOutcome::Created));
    reassigned(store, n, rep).await;
}

async fn reassigned<S: LeadStore>(store: &S, n: u64, rep: &str) {
    let current = stored(store, id(n)).await;
    let write = AssignmentWrite {
        expected_lead_version: current.version,
        lead: owned_by(current, rep),
        team_cursor: None,
        trail: Vec::new(),
        claim: None,
    };
    assert_eq!(store.assign(&write).await.ok(), Some(AssignOutcome::Assigned), "assigning lead {n} to {rep}");
}

async fn closed<S: LeadStore>(store: &S, n: u64, status: SalesStatus) {
    let mut l = stored(store, id(n)).await;
    let expected = l.version;
    l.status = status;
    assert_eq!(store.update_lead(&l, expected, &[]).await.ok(), Some(WriteOutcome::Written), "closing lead {n}");
}

async fn erased<S: LeadStore>(store: &S, n: u64) {
    let l = stored(store, id(n)).await;
    let key = email_key(&l.contact.email);
    let result = store.erase_lead(&tombstone(&l, t(20)), Some(&key)).await;
    assert!(result.is_ok(), "erasing lead {n}: {result:?}");
}

/// Every page from the first, with `limit`: the ids in the order handed out.
async fn walk<S: LeadStore>(store: &S, rep: &str, limit: usize) -> Vec<LeadId> {
    let mut ids = Vec::new();
    let mut cursor = None;
    // More pages than there are leads means the cursor does not move on.
    for _ in 0..20 {
        let page = match store.open_leads_of(rep, cursor, limit).await {
            Ok(page) => page,
            Err(e) => panic!("{rep}'s open leads cannot be read: {e}"),
        };
        assert!(page.leads.len() <= limit.max(1), "a page of {limit} held {}", page.leads.len());
        ids.extend(page.leads.iter().map(|l| l.id));
        match page.next {
            Some(next) => cursor = Some(next),
            None => return ids,
        }
    }
    panic!("{rep}'s open leads did not end after 20 pages of {limit}: {ids:?}");
}

fn ids(ns: &[u64]) -> Vec<LeadId> {
    ns.iter().map(|&n| id(n)).collect()
}

pub async fn a_reps_open_leads_are_listed_newest_first_page_by_page<S: LeadStore>(store: &S) {
    // Two reps' leads interleaved in time, so that neither rep's leads are a run of ids.
    for (n, rep) in [(1, "ana"), (2, "ana"), (3, "ana"), (4, "ben"), (5, "ana"), (6, "ana"), (7, "ben")] {
        assigned(store, n, rep).await;
    }
    for (n, rep) in [(8, "ana"), (9, "ana"), (10, "ben"), (11, "ana"), (12, "ana")] {
        assigned(store, n, rep).await;
    }
    // Never assigned: nobody's.
    let unowned = lead(13, "lead13@x.example");
    assert_eq!(store.create_lead(&unowned, &[]).await.ok(), Some(CreateOutcome::Created));
    // Still open once contacted.
    closed(store, 2, SalesStatus::Contacted).await;
    closed(store, 3, SalesStatus::Won).await;
    closed(store, 5, SalesStatus::Lost).await;
    erased(store, 6).await;
    // Re-routed (an SLA ran out): it leaves ana's leads and joins ben's.
    reassigned(store, 9, "ben").await;

    let first = match store.open_leads_of("ana", None, 10).await {
        Ok(page) => page,
        Err(e) => panic!("ana's open leads cannot be read: {e}"),
    };
    assert_eq!(first.leads.iter().map(|l| l.id).collect::<Vec<_>>(), ids(&[12, 11, 8, 2, 1]));
    assert!(first.next.is_none(), "one page holds them all: {:?}", first.next);
    // Whole leads, as stored.
    let contacted = first.leads.iter().find(|l| l.id == id(2)).map(|l| (l.status, l.version));
    assert_eq!(contacted, Some((SalesStatus::Contacted, stored(store, id(2)).await.version)));
    assert!(first.leads.iter().all(|l| l.owner.as_ref().is_some_and(|o| o.rep_id == "ana")), "{:?}", first.leads);

    // Pages of 2: every lead exactly once, in order, and no cursor after the last.
    assert_eq!(walk(store, "ana", 2).await, ids(&[12, 11, 8, 2, 1]));
    assert_eq!(walk(store, "ben", 2).await, ids(&[10, 9, 7, 4]));
    // Exactly full pages: the last one still says it is the last.
    assert_eq!(walk(store, "ben", 4).await, ids(&[10, 9, 7, 4]));
    // A limit of 0 is 1.
    assert_eq!(walk(store, "ana", 0).await, ids(&[12, 11, 8, 2, 1]));
    // Nobody's leads, or a rep without any.
    assert_eq!(walk(store, "cleo", 2).await, Vec::<LeadId>::new());
}

pub async fn an_open_lead_cursor_survives_its_lead_closing_and_a_forged_one_is_refused<S: LeadStore>(store: &S) {
    for n in 1..=5 {
        assigned(store, n, "ana").await;
    }
    let first = match store.open_leads_of("ana", None, 2).await {
        Ok(page) => page,
        Err(e) => panic!("ana's open leads cannot be read: {e}"),
    };
    assert_eq!(first.leads.iter().map(|l| l.id).collect::<Vec<_>>(), ids(&[5, 4]));
    // The lead the cursor names is won between two pages: the next page goes on after it.
    closed(store, 4, SalesStatus::Won).await;
    let second = match store.open_leads_of("ana", first.next.clone(), 2).await {
        Ok(page) => page,
        Err(e) => panic!("the page after a closed lead cannot be read: {e}"),
    };
    assert_eq!(second.leads.iter().map(|l| l.id).collect::<Vec<_>>(), ids(&[3, 2]));

    for forged in ["not-a-cursor", "", "01ARZ3NDEKTSV4RRFFQ69G5FAV#ben"] {
        let answer = store.open_leads_of("ana", Some(forged.to_string()), 2).await;
        assert!(matches!(answer, Err(StoreError::Corrupt(_))), "cursor {forged:?}: {answer:?}");
    }
}
