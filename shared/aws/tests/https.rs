//! The SDK clients' requests through `leadflow_aws::https` (reqwest), without moto: a failure is
//! reported as the kind the SDK's retry policy needs. The hung-server case (a timeout, retried
//! for a table call and never for an SES send) is in `deadlines.rs`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use aws_config::{BehaviorVersion, Region};
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::AttributeValue;
use leadflow_aws::lambda::sdk_timeouts;
use leadflow_aws::store::DynamoStore;
use leadflow_core::error::StoreError;
use leadflow_core::model::LeadId;
use leadflow_core::ports::Leads;
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;

/// A server that reads each request's first bytes and closes the connection without a word;
/// counts connections.
async fn hang_up() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
    let endpoint = format!("http://{}", listener.local_addr().expect("address"));
    let connections = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&connections);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
            let mut head = [0u8; 64];
            let _ = stream.read(&mut head).await;
        }
    });
    (endpoint, connections)
}

#[tokio::test]
async fn a_connection_dropped_before_the_answer_is_a_connection_failure_the_sdk_tries_again() {
    let (endpoint, connections) = hang_up().await;
    let config = aws_config::defaults(BehaviorVersion::latest())
        .http_client(leadflow_aws::https::https_client())
        .endpoint_url(&endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new("test", "test", None, None, "test"))
        .timeout_config(sdk_timeouts())
        .load()
        .await;
    let table = aws_sdk_dynamodb::Client::new(&config);
    let err = table.get_item().table_name("t").key("PK", AttributeValue::S("k".into())).send().await.unwrap_err();
    match &err {
        SdkError::DispatchFailure(failure) => assert!(failure.is_io(), "{failure:?}"),
        other => panic!("not a dispatch failure: {other:?}"),
    }
    // The standard retry policy's three attempts: a broken connection is worth another try.
    assert_eq!(connections.load(Ordering::SeqCst), 3);
    // And what a user reads of it.
    let store = DynamoStore::new(table, "t");
    let err = store.get_lead(LeadId::from_parts(1, 1)).await.unwrap_err();
    assert!(matches!(&err, StoreError::Unavailable(m) if m.ends_with("the connection failed")), "{err}");
}
