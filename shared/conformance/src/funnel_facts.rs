//! The funnel's facts (`funnel_facts`): for every lead captured in the range, erased ones too,
//! exactly `LeadFacts::of` the lead as stored now, once across pages.

use chrono::{DateTime, Duration, Utc};
use leadflow_core::erasure::tombstone;
use leadflow_core::error::StoreError;
use leadflow_core::funnel::LeadFacts;
use leadflow_core::model::{Lead, LeadId, Lifecycle, SalesStatus, Validity};
use leadflow_core::normalize::email_key;
use leadflow_core::ports::{AssignOutcome, AssignmentWrite, CreateOutcome, LeadStore, WriteOutcome};
use leadflow_memory::fixtures::{id, lead, owned_by, t};

async fn stored<S: LeadStore>(store: &S, lead: LeadId) -> Lead {
    match store.get_lead(lead).await {
        Ok(Some(l)) => l,
        other => panic!("lead {lead} cannot be read back: {other:?}"),
    }
}

/// Every page of the range with `limit`, sorted by id; each lead must come once.
async fn walk<S: LeadStore>(
    store: &S,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
    limit: usize,
) -> Vec<LeadFacts> {
    let mut facts: Vec<LeadFacts> = Vec::new();
    let mut cursor = None;
    // Pages may be short, even empty, but a cursor that never ends is a bug.
    for _ in 0..100 {
        let page = match store.funnel_facts(since, until, cursor, limit).await {
            Ok(page) => page,
            Err(e) => panic!("the funnel's facts cannot be read: {e}"),
        };
        assert!(page.facts.len() <= limit.max(1), "a page of {limit} held {}", page.facts.len());
        for f in page.facts {
            assert!(!facts.iter().any(|g| g.id == f.id), "lead {} came twice with pages of {limit}", f.id);
            facts.push(f);
        }
        match page.next {
            Some(next) => cursor = Some(next),
            None => {
                facts.sort_by_key(|f| f.id);
                return facts;
            }
        }
    }
    panic!("the funnel's facts did not end after 100 pages of {limit}");
}

/// What the facts must be: `LeadFacts::of` each lead in range as stored now, by id.
async fn expected<S: LeadStore>(
    store: &S,
    ns: impl IntoIterator<Item = u64>,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
) -> Vec<LeadFacts> {
    let mut facts = Vec::new();
    for n in ns {
        let f = LeadFacts::of(&stored(store, id(n)).await);
        if f.in_range(since, until) {
            facts.push(f);
        }
    }
    facts.sort_by_key(|f| f.id);
    facts
}

fn at(secs: i64, millis: i64) -> DateTime<Utc> {
    t(secs) + Duration::milliseconds(millis)
}

pub async fn the_funnel_facts_are_those_of_every_lead_as_stored_erased_ones_too<S: LeadStore>(store: &S) {
    // Captured at different times, some within one second, some with a source.
    for n in 1..=9_u64 {
        let mut l = lead(n, &format!("lead{n}@x.example"));
        let secs = i64::try_from(n / 2).unwrap_or_default() * 100;
        l.created_at = at(secs, i64::try_from(n % 2).unwrap_or_default() * 999);
        if n % 3 == 0 {
            l.attribution.first_touch.utm.source = Some(format!("source{n}"));
        }
        if n == 8 {
            l.attribution.first_touch.utm.source = Some(String::new());
            l.validity = Validity::Invalid { reasons: Vec::new() };
        }
        assert_eq!(store.create_lead(&l, &[]).await.ok(), Some(CreateOutcome::Created), "creating {n}");
    }
    let all = 1..=9_u64;
    assert_eq!(walk(store, None, None, 100).await, expected(store, all.clone(), None, None).await);

    // Updates: lifecycle, status, owner (both by an update and by an assignment).
    let mut two = stored(store, id(2)).await;
    let v = two.version;
    two.lifecycle = Lifecycle::Mql;
    assert_eq!(store.update_lead(&two, v, &[]).await.ok(), Some(WriteOutcome::Written));
    let three = stored(store, id(3)).await;
    let v = three.version;
    let mut three = owned_by(three, "ana");
    three.lifecycle = Lifecycle::Sql;
    three.status = SalesStatus::Won;
    assert_eq!(store.update_lead(&three, v, &[]).await.ok(), Some(WriteOutcome::Written));
    let four = stored(store, id(4)).await;
    let write = AssignmentWrite {
        expected_lead_version: four.version,
        lead: owned_by(Lead { lifecycle: Lifecycle::Mql, ..four }, "ben"),
        team_cursor: None,
        trail: Vec::new(),
        claim: None,
    };
    assert_eq!(store.assign(&write).await.ok(), Some(AssignOutcome::Assigned));
    let six = stored(store, id(6)).await;
    let v = six.version;
    let six = Lead { status: SalesStatus::Contacted, ..six };
    assert_eq!(store.update_lead(&six, v, &[]).await.ok(), Some(WriteOutcome::Written));
    // An erasure keeps the lead's place and what the funnel counts.
    let won = stored(store, id(3)).await;
    let result = store.erase_lead(&tombstone(&won, t(2_000)), Some(&email_key(&won.contact.email))).await;
    assert!(result.is_ok(), "erasing lead 3: {result:?}");

    let now = expected(store, all.clone(), None, None).await;
    assert_eq!(now.len(), 9);
    let three = now.iter().find(|f| f.id == id(3));
    assert_eq!(three.map(|f| (f.assigned, f.status, f.lifecycle)), Some((true, SalesStatus::Won, Lifecycle::Sql)));
    assert_eq!(now.iter().find(|f| f.id == id(8)).map(|f| (f.valid, f.source.clone())), Some((false, None)));
    for limit in [0, 1, 2, 4, 9, 50] {
        assert_eq!(walk(store, None, None, limit).await, now, "pages of {limit}");
    }
}

pub async fn the_funnel_facts_hold_the_range_to_the_instant<S: LeadStore>(store: &S) {
    // Leads a millisecond either side of each bound, and on them.
    let times = [at(99, 999), at(100, 0), at(100, 1), at(199, 999), at(200, 0), at(200, 1), at(300, 0), at(0, 0)];
    for (n, created_at) in (1_u64..).zip(times) {
        let l = Lead { created_at, ..lead(n, &format!("lead{n}@x.example")) };
        assert_eq!(store.create_lead(&l, &[]).await.ok(), Some(CreateOutcome::Created), "creating {n}");
    }
    let all = 1..=8_u64;
    let (since, until) = (Some(at(100, 0)), Some(at(200, 0)));
    let range = walk(store, since, until, 2).await;
    assert_eq!(range.iter().map(|f| f.id).collect::<Vec<_>>(), vec![id(2), id(3), id(4)]);
    assert_eq!(range, expected(store, all.clone(), since, until).await);
    // Open ends.
    let from = walk(store, since, None, 3).await.into_iter().map(|f| f.id).collect::<Vec<_>>();
    assert_eq!(from, vec![id(2), id(3), id(4), id(5), id(6), id(7)]);
    let to = walk(store, None, until, 1).await.into_iter().map(|f| f.id).collect::<Vec<_>>();
    assert_eq!(to, vec![id(1), id(2), id(3), id(4), id(8)]);
    // A range with no lead, and a forged cursor.
    assert_eq!(walk(store, Some(at(400, 0)), None, 5).await, Vec::new());
    let forged = store.funnel_facts(None, None, Some("not a cursor".into()), 5).await;
    assert!(matches!(forged, Err(StoreError::Corrupt(_))), "{forged:?}");
}
