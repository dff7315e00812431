//! Versioned documents (`Documents`): each name counts up from 1 without gaps, a stored version
//! never changes, one of racing writers of a version wins, and the latest of each name is found
//! by prefix.

use chrono::TimeDelta;
use leadflow_core::model::Document;
use leadflow_core::ports::{LeadStore, WriteOutcome};
use leadflow_memory::fixtures::t;

use crate::support::ok;

fn doc(name: &str, version: u32, body: &str) -> Document {
    // Sub-second times must come back exactly.
    let saved_at = t(i64::from(version)) + TimeDelta::nanoseconds(123_456_789);
    Document { name: name.to_string(), version, body: body.to_string(), saved_at }
}

async fn put<S: LeadStore>(store: &S, d: &Document) -> WriteOutcome {
    ok(store.put_document(d).await, "put document")
}

async fn read<S: LeadStore>(store: &S, name: &str, version: Option<u32>) -> Option<Document> {
    ok(store.document(name, version).await, "read document")
}

pub async fn documents_are_written_only_as_the_next_version<S: LeadStore>(store: &S) {
    let conflict = WriteOutcome::VersionConflict;
    assert_eq!(read(store, "routing", None).await, None);
    assert_eq!(put(store, &doc("routing", 0, "{}")).await, conflict, "no version 0");
    assert_eq!(put(store, &doc("routing", 2, "{}")).await, conflict, "a gap");
    assert_eq!(read(store, "routing", None).await, None, "conflicts write nothing");

    let v1 = doc("routing", 1, r#"{"teams":[]}"#);
    assert_eq!(put(store, &v1).await, WriteOutcome::Written);
    // Two admins both read "no document" and save version 1: the second loses.
    assert_eq!(put(store, &doc("routing", 1, r#"{"teams":["rival"]}"#)).await, conflict);
    assert_eq!(read(store, "routing", Some(1)).await, Some(v1.clone()), "a stored version never changes");
    assert_eq!(put(store, &doc("routing", 3, "{}")).await, conflict, "a gap");

    let v2 = doc("routing", 2, r#"{"teams":["emea"]}"#);
    assert_eq!(put(store, &v2).await, WriteOutcome::Written);
    assert_eq!(put(store, &v2).await, conflict, "a retry");
    assert_eq!(put(store, &doc("routing", 1, "{}")).await, conflict, "stale");

    assert_eq!(read(store, "routing", None).await, Some(v2.clone()));
    assert_eq!(read(store, "routing", Some(2)).await, Some(v2));
    assert_eq!(read(store, "routing", Some(1)).await, Some(v1));
    assert_eq!(read(store, "routing", Some(3)).await, None);
    assert_eq!(read(store, "rout", None).await, None, "a name is no prefix");
    assert_eq!(read(store, "", None).await, None);

    // Versions count per name.
    assert_eq!(put(store, &doc("scoring", 2, "{}")).await, conflict);
    assert_eq!(put(store, &doc("scoring", 1, "{}")).await, WriteOutcome::Written);
    assert_eq!(read(store, "scoring", None).await.map(|d| d.version), Some(1));
}

pub async fn of_writers_racing_for_a_version_exactly_one_wins<S: LeadStore>(store: &S) {
    let name = "campaign:welcome";
    assert_eq!(put(store, &doc(name, 1, "{}")).await, WriteOutcome::Written);
    let racer = |n: u32| doc(name, 2, &format!(r#"{{"writer":{n}}}"#));
    let (a, b, c, d) = (racer(0), racer(1), racer(2), racer(3));
    let outcomes =
        tokio::join!(store.put_document(&a), store.put_document(&b), store.put_document(&c), store.put_document(&d));
    let outcomes = [outcomes.0, outcomes.1, outcomes.2, outcomes.3].map(|o| ok(o, "put document"));
    let winners: Vec<usize> = (0..4).filter(|&n| outcomes[n] == WriteOutcome::Written).collect();
    assert_eq!(winners.len(), 1, "one writer of version 2: {outcomes:?}");
    let latest = read(store, name, None).await;
    assert_eq!(latest, Some([a, b, c, d][winners[0]].clone()), "the latest is the winner's");
    assert_eq!(read(store, name, Some(2)).await, latest);
}

async fn put_versions<S: LeadStore>(store: &S, name: &str, versions: u32) {
    for v in 1..=versions {
        let body = format!(r#"{{"name":"{name}","v":{v}}}"#);
        assert_eq!(put(store, &doc(name, v, &body)).await, WriteOutcome::Written, "{name} v{v}");
    }
}

pub async fn latest_documents_are_the_newest_version_of_each_name_with_the_prefix<S: LeadStore>(store: &S) {
    // Written out of name order; `campaign;` sorts right after every `campaign:` name and
    // `campaign` right before them.
    put_versions(store, "campaign:webinar", 1).await;
    put_versions(store, "campaign;", 1).await;
    put_versions(store, "campaign:welcome", 3).await;
    put_versions(store, "campaign", 1).await;
    put_versions(store, "campaign:welcome-b", 2).await;
    put_versions(store, "routing", 2).await;
    put_versions(store, "scoring", 1).await;

    let latest = async |prefix: &str| {
        let docs = ok(store.latest_documents(prefix).await, "latest documents");
        docs.into_iter().map(|d| (d.name, d.version)).collect::<Vec<_>>()
    };
    let named = |pairs: &[(&str, u32)]| pairs.iter().map(|(n, v)| (n.to_string(), *v)).collect::<Vec<_>>();

    assert_eq!(
        latest("campaign:").await,
        named(&[("campaign:webinar", 1), ("campaign:welcome", 3), ("campaign:welcome-b", 2)])
    );
    assert_eq!(latest("campaign:welcome").await, named(&[("campaign:welcome", 3), ("campaign:welcome-b", 2)]));
    assert_eq!(latest("routing").await, named(&[("routing", 2)]));
    assert_eq!(latest("zzz").await, named(&[]));
    assert_eq!(
        latest("").await,
        named(&[
            ("campaign", 1),
            ("campaign:webinar", 1),
            ("campaign:welcome", 3),
            ("campaign:welcome-b", 2),
            ("campaign;", 1),
            ("routing", 2),
            ("scoring", 1),
        ])
    );
    // The documents themselves, not only their names.
    let welcome = ok(store.latest_documents("campaign:welcome").await, "latest documents").into_iter().next();
    assert_eq!(welcome, Some(doc("campaign:welcome", 3, r#"{"name":"campaign:welcome","v":3}"#)));
}
