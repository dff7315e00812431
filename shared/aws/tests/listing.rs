//! The console's listings on DynamoDB (moto): what a page reads, that erasure takes a lead out of
//! the `listing` index, and that items from before the index are listed once backfilled.

mod common;

use aws_sdk_dynamodb::types::AttributeValue;
use common::{Table, id, lead, t, table};
use leadflow_aws::store::{LISTING_INDEX, RECENT_SHARDS, recent_shard};
use leadflow_core::erasure::tombstone;
use leadflow_core::model::{LeadId, Suppression, SuppressionReason};
use leadflow_core::normalize::email_key;
use leadflow_core::ports::CreateOutcome;
use leadflow_core::ports::{Leads, Listings, Suppressions};

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

async fn created(db: &Table, n: u64) {
    let l = lead(n, &format!("lead{n}@x.example"));
    assert_eq!(db.store.create_lead(&l, &[]).await.ok(), Some(CreateOutcome::Created), "creating lead {n}");
}

fn ids(ns: impl IntoIterator<Item = u64>) -> Vec<LeadId> {
    ns.into_iter().map(id).collect()
}

/// The lead ids the `listing` index holds, read straight from it.
async fn indexed_leads(db: &Table) -> Vec<String> {
    let mut out = Vec::new();
    for shard in 0..RECENT_SHARDS {
        let answer = db
            .client
            .query()
            .table_name(&db.name)
            .index_name(LISTING_INDEX)
            .key_condition_expression("GSI2PK = :p")
            .expression_attribute_values(":p", s(format!("LEADS#{shard}")))
            .send()
            .await;
        let page = match answer {
            Ok(page) => page,
            Err(e) => panic!("the listing index cannot be queried: {e:?}"),
        };
        out.extend(page.items().iter().filter_map(|i| i.get("GSI2SK")?.as_s().ok().cloned()));
    }
    out.sort_unstable();
    out
}

#[tokio::test]
async fn a_page_of_leads_reads_index_keys_and_the_pages_items_only() {
    let db = table().await;
    // More leads than eight shards' pages hold, so that a page that read them all would show.
    for n in 1..=120 {
        created(&db, n).await;
    }
    let shards: std::collections::BTreeSet<u32> = (1..=120).map(|n| recent_shard(id(n))).collect();
    assert_eq!(shards.len(), RECENT_SHARDS as usize, "120 leads spread over every shard");
    db.requests.take();

    let (page, cost) = match db.store.leads_before_with_cost(None, 10).await {
        Ok(answer) => answer,
        Err(e) => panic!("the first page cannot be read: {e}"),
    };
    assert_eq!(page.leads.iter().map(|l| l.id).collect::<Vec<_>>(), ids((111..=120).rev()));
    let mut requests = db.requests.take();
    requests.sort_unstable();
    let mut expected = vec!["Query"; RECENT_SHARDS as usize];
    expected.push("BatchGetItem");
    expected.sort_unstable();
    assert_eq!(requests, expected, "one query per shard and one batch read; never a Scan");
    assert_eq!((cost.queries, cost.batch_gets, cost.items), (RECENT_SHARDS, 1, 10));
    // Each shard reads at most the page and one more; never the whole table.
    assert!(cost.index_entries <= u64::from(RECENT_SHARDS) * 11, "{cost:?}");
    assert!(cost.index_entries >= 11, "{cost:?}");
    println!("a page of 10 of 120 leads: {cost:?}");

    // From the middle, by date: the leads before lead 21's millisecond.
    let date = LeadId::from_parts(1_750_000_000_000 + 21, 0);
    let (page, cost) = match db.store.leads_before_with_cost(Some(date), 5).await {
        Ok(answer) => answer,
        Err(e) => panic!("a page from a date cannot be read: {e}"),
    };
    assert_eq!(page.leads.iter().map(|l| l.id).collect::<Vec<_>>(), ids((16..=20).rev()));
    assert_eq!(page.next, Some(id(16).to_string()));
    assert_eq!(cost.items, 5);
    assert!(cost.index_entries <= u64::from(RECENT_SHARDS) * 6, "{cost:?}");
}

#[tokio::test]
async fn erasure_takes_a_lead_out_of_the_listing_index_and_updates_keep_it_in() {
    let db = table().await;
    for n in 1..=3 {
        created(&db, n).await;
    }
    let indexed = indexed_leads(&db).await;
    assert_eq!(indexed, ids(1..=3).iter().map(LeadId::to_string).collect::<Vec<_>>());

    let mut two = match db.store.get_lead(id(2)).await {
        Ok(Some(l)) => l,
        other => panic!("lead 2 cannot be read: {other:?}"),
    };
    let version = two.version;
    two.submissions += 1;
    assert!(db.store.update_lead(&two, version, &[]).await.is_ok());
    assert_eq!(indexed_leads(&db).await.len(), 3, "an update keeps the lead listed");

    let stored = match db.store.get_lead(id(2)).await {
        Ok(Some(l)) => l,
        other => panic!("lead 2 cannot be read: {other:?}"),
    };
    let erased = db.store.erase_lead(&tombstone(&stored, t(50)), Some(&email_key("lead2@x.example"))).await;
    assert!(erased.is_ok(), "{erased:?}");
    assert_eq!(indexed_leads(&db).await, vec![id(1).to_string(), id(3).to_string()]);
}

#[tokio::test]
async fn items_from_before_the_listing_index_are_listed_once_backfilled() {
    let db = table().await;
    created(&db, 5).await;
    let entry = |address: &str, secs| Suppression {
        email_key: email_key(address),
        reason: SuppressionReason::Bounced,
        at: t(secs),
        lead_id: None,
    };
    let suppressed = db.store.suppress(&entry("new@x.example", 30), &[]).await;
    assert_eq!(suppressed.ok(), Some(true));

    // As the earlier build wrote them: a lead, a tombstone and a suppression without the index
    // attributes.
    let put = |item: Vec<(&str, AttributeValue)>| {
        let item = item.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        db.client.put_item().table_name(&db.name).set_item(Some(item)).send()
    };
    for (n, erased) in [(3, false), (4, true)] {
        let mut old = lead(n, &format!("old{n}@x.example"));
        if erased {
            old = tombstone(&old, t(9));
        }
        let doc = serde_json::to_string(&old).unwrap_or_default();
        let mut item = vec![
            ("PK", s(format!("LEAD#{}", id(n)))),
            ("SK", s("PROFILE")),
            ("doc", s(doc)),
            ("version", AttributeValue::N("0".into())),
        ];
        if erased {
            item.push(("erased", AttributeValue::Bool(true)));
        }
        assert!(put(item).await.is_ok(), "writing old lead {n}");
    }
    let old_entry = entry("old@x.example", 10);
    let doc = serde_json::to_string(&old_entry).unwrap_or_default();
    let item = vec![
        ("PK", s(format!("SUPPRESS#{}", old_entry.email_key))),
        ("SK", s("-")),
        ("doc", s(doc)),
        ("reason", s("bounced")),
        ("at", AttributeValue::N(old_entry.at.timestamp_millis().to_string())),
    ];
    assert!(put(item).await.is_ok(), "writing the old suppression");

    let listed = |page: Result<leadflow_core::ports::LeadPage, _>| match page {
        Ok(page) => page.leads.iter().map(|l| l.id).collect::<Vec<_>>(),
        Err(e) => panic!("the leads cannot be read: {e:?}"),
    };
    let entries = |page: Result<leadflow_core::ports::SuppressionPage, _>| match page {
        Ok(page) => page.entries.iter().map(|e| e.email_key.clone()).collect::<Vec<_>>(),
        Err(e) => panic!("the suppression list cannot be read: {e:?}"),
    };
    assert_eq!(listed(db.store.leads_before(None, 10).await), ids([5]), "not listed until backfilled");
    assert_eq!(entries(db.store.suppressions(None, 10).await), [email_key("new@x.example")]);

    // The operator's command, as the upgrade notes tell them to run it.
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_leadflow-backfill-listing"))
        .args(["--table", &db.name])
        .env("AWS_ENDPOINT_URL", common::endpoint())
        .output();
    let run = match run {
        Ok(run) => run,
        Err(e) => panic!("leadflow-backfill-listing did not start: {e}"),
    };
    let said = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "the backfill failed: {}", String::from_utf8_lossy(&run.stderr));
    assert!(said.contains("added 2 item(s)"), "the old lead and the old suppression, not the tombstone: {said}");
    assert_eq!(listed(db.store.leads_before(None, 10).await), ids([5, 3]));
    assert_eq!(
        entries(db.store.suppressions(None, 10).await),
        [email_key("new@x.example"), email_key("old@x.example")]
    );
    assert_eq!(db.store.backfill_listing().await.ok(), Some(0), "a second run finds nothing to add");
}
