mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::{id, lead, t};
use leadflow_core::ports::Leads;
use leadflow_core::ports::{CreateOutcome, Stage, StageQueue};
use leadflow_local::SqliteStore;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_submissions_of_one_email_create_one_lead() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("leadflow.db")).unwrap();
    let tasks: Vec<_> = (1..=16)
        .map(|n| {
            let store = store.clone();
            tokio::spawn(async move { store.create_lead(&lead(n, "ada@example.com"), &[]).await.unwrap() })
        })
        .collect();
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.unwrap());
    }
    let created = outcomes.iter().filter(|o| **o == CreateOutcome::Created).count();
    assert_eq!(created, 1, "{outcomes:?}");
    let winners: HashSet<_> = outcomes
        .iter()
        .filter_map(|o| match o {
            CreateOutcome::EmailTaken(winner) => Some(*winner),
            _ => None,
        })
        .collect();
    assert_eq!(winners.len(), 1);
    assert!(winners.iter().all(|w| (1..=16).any(|n| id(n) == *w)));
    assert_eq!(store.count_leads().unwrap(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_consumers_never_get_the_same_message() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("leadflow.db")).unwrap();
    let queue = store.queue();
    let bodies: Vec<String> = (0..200).map(|n| format!("m{n}")).collect();
    queue.send(Stage::Validate, &bodies).await.unwrap();

    let consumers: Vec<_> = (0..4)
        .map(|_| {
            let queue = queue.clone();
            tokio::spawn(async move {
                let mut got = Vec::new();
                loop {
                    let batch = queue.receive(Stage::Validate, 7, Duration::from_secs(60), t(0)).unwrap();
                    if batch.is_empty() {
                        return got;
                    }
                    got.extend(batch.into_iter().map(|m| m.body));
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    let mut all = Vec::new();
    for c in consumers {
        all.extend(c.await.unwrap());
    }
    assert_eq!(all.len(), 200);
    assert_eq!(all.iter().collect::<HashSet<_>>().len(), 200);
}
