//! `leadflow-backfill-listing --table <name>`: an operator's one-off after upgrading a stack
//! deployed before the console's listing index existed. Leads and suppressions written by the
//! earlier build carry no index keys, so the console's Leads and Suppression pages would not show
//! them until each is written again. This puts them in the index; running it twice, or while the
//! functions run, is harmless (see [`DynamoStore::backfill_listing`]).
//!
//! It runs on the operator's machine with their credentials (the standard AWS environment:
//! `AWS_PROFILE` or access keys, `AWS_REGION`, `AWS_ENDPOINT_URL`), not in a function: a Scan of
//! a large table may take longer than a Lambda invocation may run.

use std::process::ExitCode;

use aws_config::BehaviorVersion;
use leadflow_aws::store::DynamoStore;

const USAGE: &str = "usage: leadflow-backfill-listing --table <the stack's TableName output>";

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let table = match args.as_slice() {
        [flag, table] if flag == "--table" && !table.trim().is_empty() => table.clone(),
        [flag] if flag == "--help" || flag == "-h" => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let sdk =
        aws_config::defaults(BehaviorVersion::latest()).http_client(leadflow_aws::https::https_client()).load().await;
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), table.clone());
    match store.backfill_listing().await {
        Ok(added) => {
            println!("added {added} item(s) of table {table} to the listing index");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("the backfill of table {table} stopped: {e}");
            eprintln!("nothing it added is undone; run it again to finish");
            ExitCode::FAILURE
        }
    }
}
