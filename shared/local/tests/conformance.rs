//! The SQLite store against the checks every store must pass (`shared/conformance`).

use leadflow_local::SqliteStore;

async fn open() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
    let store = SqliteStore::open(dir.path().join("leadflow.db")).unwrap_or_else(|e| panic!("open store: {e}"));
    (dir, store)
}

leadflow_conformance::store_conformance!(open);
