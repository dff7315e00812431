//! The in-memory fake that handler tests run on keeps the real stores' behaviour.

use leadflow_memory::MemoryStore;

async fn open() -> ((), MemoryStore) {
    ((), MemoryStore::new())
}

leadflow_conformance::store_conformance!(open);

/// As SQLite (`shared/local/tests/nurture_ports.rs`); DynamoDB refuses a stale tombstone instead.
#[tokio::test]
async fn erasure_wins_over_a_write_that_came_in_since_the_tombstone_was_made() {
    let store = MemoryStore::new();
    leadflow_conformance::leads::erasure_wins_over_a_write_that_came_in_since_the_tombstone_was_made(&store).await;
}
