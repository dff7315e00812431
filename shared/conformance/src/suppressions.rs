//! The suppression list: an address is on it once, with its first entry and reason; the list
//! (`suppressions`) is newest first, by time to the millisecond, then email key; every entry
//! once across pages; the first entry of an address keeps its place; a cursor the store did not
//! hand out is refused.

use chrono::{DateTime, Duration, Utc};
use leadflow_core::error::StoreError;
use leadflow_core::model::{Suppression, SuppressionReason};
use leadflow_core::normalize::email_key;
use leadflow_core::ports::LeadStore;
use leadflow_memory::fixtures::{id, t};

fn entry(address: &str, at: DateTime<Utc>, reason: SuppressionReason) -> Suppression {
    Suppression { email_key: email_key(address), reason, at, lead_id: Some(id(1)) }
}

async fn suppressed<S: LeadStore>(store: &S, e: &Suppression) -> bool {
    match store.suppress(e, &[]).await {
        Ok(fresh) => fresh,
        Err(err) => panic!("suppressing {}: {err}", e.email_key),
    }
}

/// Every page from the first, with `limit`: the email keys in the order handed out.
async fn walk<S: LeadStore>(store: &S, limit: usize) -> Vec<String> {
    let mut keys = Vec::new();
    let mut cursor = None;
    // More pages than there are entries means the cursor does not move on.
    for _ in 0..30 {
        let page = match store.suppressions(cursor, limit).await {
            Ok(page) => page,
            Err(e) => panic!("the suppression list cannot be read: {e}"),
        };
        assert!(page.entries.len() <= limit.max(1), "a page of {limit} held {}", page.entries.len());
        keys.extend(page.entries.iter().map(|e| e.email_key.clone()));
        match page.next {
            Some(next) => cursor = Some(next),
            None => return keys,
        }
    }
    panic!("the suppression list did not end after 30 pages of {limit}: {keys:?}");
}

pub async fn the_suppression_list_is_newest_first_page_by_page<S: LeadStore>(store: &S) {
    assert_eq!(walk(store, 5).await, Vec::<String>::new(), "an empty list is one empty page");
    let ms = Duration::milliseconds;
    let entries = [
        entry("old@x.example", t(10), SuppressionReason::Bounced),
        entry("later-by-a-ms@x.example", t(10) + ms(1), SuppressionReason::Unsubscribed),
        entry("newest@x.example", t(500), SuppressionReason::Complained),
        // Three in the same millisecond: the email key breaks the tie.
        entry("same-a@x.example", t(100) + ms(250), SuppressionReason::Unsubscribed),
        entry("same-b@x.example", t(100) + ms(250), SuppressionReason::Bounced),
        entry("same-c@x.example", t(100) + ms(250), SuppressionReason::Erased),
        entry("middle@x.example", t(200), SuppressionReason::Unsubscribed),
    ];
    for e in &entries {
        assert!(suppressed(store, e).await, "{} is new", e.email_key);
    }
    // Suppressed again, later and for another reason: the first entry keeps its place and reason.
    assert!(!suppressed(store, &entry("old@x.example", t(900), SuppressionReason::Complained)).await);

    let mut same = [email_key("same-a@x.example"), email_key("same-b@x.example"), email_key("same-c@x.example")];
    same.sort_unstable_by(|a, b| b.cmp(a));
    let mut expected = vec![email_key("newest@x.example"), email_key("middle@x.example")];
    expected.extend(same);
    expected.extend([email_key("later-by-a-ms@x.example"), email_key("old@x.example")]);

    let first = match store.suppressions(None, 20).await {
        Ok(page) => page,
        Err(e) => panic!("the suppression list cannot be read: {e}"),
    };
    assert_eq!(first.entries.iter().map(|e| e.email_key.clone()).collect::<Vec<_>>(), expected);
    assert!(first.next.is_none(), "one page holds them all: {:?}", first.next);
    // Whole entries, as first stored.
    let old = first.entries.iter().find(|e| e.email_key == email_key("old@x.example"));
    assert_eq!(old, Some(&entries[0]));
    assert_eq!(first.entries.iter().find(|e| e.email_key == email_key("newest@x.example")), Some(&entries[2]));

    // Every entry exactly once, in order, whatever the page size (pages that end inside the
    // same-millisecond run included), and no cursor after the last.
    for limit in [1, 2, 3, 4, 7] {
        assert_eq!(walk(store, limit).await, expected, "pages of {limit}");
    }
    // A limit of 0 is 1.
    let one = store.suppressions(None, 0).await.map(|p| p.entries.len());
    assert_eq!(one.ok(), Some(1));
    assert_eq!(walk(store, 0).await, expected);
}

pub async fn a_suppression_cursor_the_store_did_not_hand_out_is_refused<S: LeadStore>(store: &S) {
    for n in 0..3 {
        let e = entry(&format!("s{n}@x.example"), t(n), SuppressionReason::Unsubscribed);
        assert!(suppressed(store, &e).await);
    }
    let first = match store.suppressions(None, 1).await {
        Ok(page) => page,
        Err(e) => panic!("the suppression list cannot be read: {e}"),
    };
    assert!(first.next.is_some(), "three entries do not fit a page of one");
    for forged in ["not-a-cursor", "", "#", "12#", "#abc", "soon#abc", "+12#abc", "01ARZ3NDEKTSV4RRFFQ69G5FAV"] {
        let answer = store.suppressions(Some(forged.to_string()), 2).await;
        assert!(matches!(answer, Err(StoreError::Corrupt(_))), "cursor {forged:?}: {answer:?}");
    }
    // The cursor handed out still works after the refusals.
    let second = store.suppressions(first.next, 5).await.map(|p| p.entries.len());
    assert_eq!(second.ok(), Some(2));
}

pub async fn an_address_is_suppressed_once_and_keeps_its_first_entry<S: LeadStore>(store: &S) {
    let key = email_key("ada@example.com");
    assert_eq!(store.suppression(&key).await.ok(), Some(None));
    let first =
        Suppression { email_key: key.clone(), reason: SuppressionReason::Bounced, at: t(10), lead_id: Some(id(1)) };
    assert!(suppressed(store, &first).await);
    let later = Suppression { reason: SuppressionReason::Unsubscribed, at: t(20), lead_id: None, ..first.clone() };
    assert!(!suppressed(store, &later).await, "suppressed already");
    assert!(!suppressed(store, &first).await, "a repeat is no new entry");
    assert_eq!(store.suppression(&key).await.ok(), Some(Some(first)));

    // Another address is its own entry, with or without a lead.
    let other = Suppression { lead_id: None, ..entry("bob@example.com", t(5), SuppressionReason::Erased) };
    assert!(suppressed(store, &other).await);
    assert_eq!(store.suppression(&other.email_key).await.ok(), Some(Some(other)));
    assert_eq!(store.suppression(&email_key("carol@example.com")).await.ok(), Some(None));
}
