//! The DynamoDB store, on moto, against the checks every store must pass (`shared/conformance`).

mod common;

use leadflow_aws::store::DynamoStore;

async fn open() -> (String, DynamoStore) {
    let table = common::table().await;
    (table.name, table.store)
}

leadflow_conformance::store_conformance!(open);
