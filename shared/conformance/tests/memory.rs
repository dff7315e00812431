//! The in-memory fake that handler tests run on keeps the real stores' behaviour.

use leadflow_memory::MemoryStore;

async fn open() -> ((), MemoryStore) {
    ((), MemoryStore::new())
}

leadflow_conformance::store_conformance!(open);
