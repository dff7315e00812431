//! The leads newest first (`leads_before`): every lead once across pages, in capture (id) order,
//! erased leads left out, and a page can start at any date.

use leadflow_core::erasure::tombstone;
use leadflow_core::model::{Lead, LeadId, SalesStatus, Validity};
use leadflow_core::normalize::email_key;
use leadflow_core::ports::{AssignOutcome, AssignmentWrite, CreateOutcome, LeadStore, WriteOutcome};
use leadflow_memory::fixtures::{id, lead, owned_by, t};

/// The millisecond lead `n` of the fixtures was captured in.
fn capture_ms(n: u64) -> u64 {
    1_750_000_000_000 + n
}

async fn stored<S: LeadStore>(store: &S, lead: LeadId) -> Lead {
    match store.get_lead(lead).await {
        Ok(Some(l)) => l,
        other => panic!("lead {lead} cannot be read back: {other:?}"),
    }
}

async fn created<S: LeadStore>(store: &S, l: &Lead) {
    assert_eq!(store.create_lead(l, &[]).await.ok(), Some(CreateOutcome::Created), "creating {}", l.id);
}

async fn erased<S: LeadStore>(store: &S, n: u64) {
    let l = stored(store, id(n)).await;
    let key = email_key(&l.contact.email);
    let result = store.erase_lead(&tombstone(&l, t(20)), Some(&key)).await;
    assert!(result.is_ok(), "erasing lead {n}: {result:?}");
}

/// Every page from `before`, with `limit`: the ids in the order handed out.
async fn walk<S: LeadStore>(store: &S, before: Option<LeadId>, limit: usize) -> Vec<LeadId> {
    let mut ids = Vec::new();
    let mut before = before;
    // More pages than there are leads means the cursor does not move on.
    for _ in 0..30 {
        let page = match store.leads_before(before, limit).await {
            Ok(page) => page,
            Err(e) => panic!("the leads before {before:?} cannot be read: {e}"),
        };
        assert!(page.leads.len() <= limit.max(1), "a page of {limit} held {}", page.leads.len());
        ids.extend(page.leads.iter().map(|l| l.id));
        match page.next {
            Some(next) => match next.parse::<LeadId>() {
                // The cursor is the last lead's id, as the port promises.
                Ok(next) => {
                    assert_eq!(page.leads.last().map(|l| l.id), Some(next), "the cursor names the page's last lead");
                    before = Some(next);
                }
                Err(_) => panic!("the next-page cursor {next:?} is not a lead id"),
            },
            None => return ids,
        }
    }
    panic!("the leads did not end after 30 pages of {limit}: {ids:?}");
}

fn ids(ns: &[u64]) -> Vec<LeadId> {
    ns.iter().map(|&n| id(n)).collect()
}

pub async fn leads_are_listed_newest_first_page_by_page_without_erased_ones<S: LeadStore>(store: &S) {
    // Created out of capture order (a redelivered submission is stored late): the list follows
    // the ids, not the order of the writes.
    for n in [3, 1, 2, 7, 4, 5, 6, 10, 8, 9, 11, 12] {
        created(store, &lead(n, &format!("lead{n}@x.example"))).await;
    }
    // An invalid lead is a lead too.
    let mut invalid = lead(13, "not an address");
    invalid.validity = Validity::Invalid { reasons: Vec::new() };
    created(store, &invalid).await;
    // Written again: still listed once, as stored now.
    let mut contacted = stored(store, id(4)).await;
    let expected = contacted.version;
    contacted.status = SalesStatus::Contacted;
    assert_eq!(store.update_lead(&contacted, expected, &[]).await.ok(), Some(WriteOutcome::Written));
    let owned = stored(store, id(6)).await;
    let write = AssignmentWrite {
        expected_lead_version: owned.version,
        lead: owned_by(owned, "ana"),
        team_cursor: None,
        trail: Vec::new(),
        claim: None,
    };
    assert_eq!(store.assign(&write).await.ok(), Some(AssignOutcome::Assigned));
    erased(store, 5).await;
    erased(store, 12).await;
    erased(store, 1).await;

    let all = ids(&[13, 11, 10, 9, 8, 7, 6, 4, 3, 2]);
    let first = match store.leads_before(None, 20).await {
        Ok(page) => page,
        Err(e) => panic!("the leads cannot be read: {e}"),
    };
    assert_eq!(first.leads.iter().map(|l| l.id).collect::<Vec<_>>(), all);
    assert!(first.next.is_none(), "one page holds them all: {:?}", first.next);
    // Whole leads, as stored.
    let four = first.leads.iter().find(|l| l.id == id(4)).map(|l| (l.status, l.version));
    assert_eq!(four, Some((SalesStatus::Contacted, stored(store, id(4)).await.version)));
    let six = first.leads.iter().find(|l| l.id == id(6));
    assert_eq!(six.and_then(|l| l.owner.as_ref()).map(|o| o.rep_id.as_str()), Some("ana"));
    assert!(first.leads.iter().all(|l| !leadflow_core::erasure::is_erased(l)), "{:?}", first.leads);

    // Every lead exactly once, in order, whatever the page size, and no cursor after the last.
    for limit in [1, 2, 3, 4, 5, 10] {
        assert_eq!(walk(store, None, limit).await, all, "pages of {limit}");
    }
    // A limit of 0 is 1.
    let one = store.leads_before(None, 0).await.map(|p| p.leads.len());
    assert_eq!(one.ok(), Some(1));
    assert_eq!(walk(store, None, 0).await, all);
}

pub async fn a_page_of_leads_starts_at_any_date_or_lead<S: LeadStore>(store: &S) {
    for n in 1..=9 {
        created(store, &lead(n, &format!("lead{n}@x.example"))).await;
    }
    erased(store, 3).await;
    // Before the first instant of lead 6's millisecond: the leads captured before it.
    let date = LeadId::from_parts(capture_ms(6), 0);
    assert_eq!(walk(store, Some(date), 2).await, ids(&[5, 4, 2, 1]));
    // Before a lead: the ones captured before it, the lead itself left out.
    assert_eq!(walk(store, Some(id(8)), 3).await, ids(&[7, 6, 5, 4, 2, 1]));
    // Before an erased lead: its place in time still counts.
    assert_eq!(walk(store, Some(id(3)), 3).await, ids(&[2, 1]));
    // Before a date after every lead, and before one before them all.
    assert_eq!(walk(store, Some(LeadId::from_parts(capture_ms(1_000), 0)), 4).await, ids(&[9, 8, 7, 6, 5, 4, 2, 1]));
    assert_eq!(walk(store, Some(LeadId::from_parts(capture_ms(0), 0)), 4).await, Vec::<LeadId>::new());
    let empty = store.leads_before(Some(LeadId::from_parts(capture_ms(1), 0)), 4).await;
    assert!(matches!(&empty, Ok(page) if page.leads.is_empty() && page.next.is_none()), "{empty:?}");
}
