//! `create_from_template` against a moto server: what it creates is what the template declares.
//! `./scripts/test` starts moto and sets LEADFLOW_MOTO_ENDPOINT.

use std::path::Path;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::config::Credentials;
use aws_sdk_dynamodb::types::{KeyType, ProjectionType, TimeToLiveStatus};
use aws_sdk_sqs::types::QueueAttributeName;
use leadflow_aws::provision::{ProvisionError, create_from_template};
use serde_yaml_ng::Value;

fn moto_endpoint() -> String {
    std::env::var("LEADFLOW_MOTO_ENDPOINT").ok().filter(|v| !v.is_empty()).unwrap_or_else(|| {
        panic!(
            "LEADFLOW_MOTO_ENDPOINT is not set. These tests need a moto server: run ./scripts/test, or \
             `.venv/bin/moto_server -p 4566 &` (after scripts/aws-tools) and \
             `export LEADFLOW_MOTO_ENDPOINT=http://127.0.0.1:4566`"
        )
    })
}

async fn sdk() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(leadflow_aws::https::https_client())
        .endpoint_url(moto_endpoint())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "moto"))
        .load()
        .await
}

fn template_text() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../template.yaml");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// Names unique per run and per test, so tests share one moto without seeing each other.
fn prefix(test: &str) -> String {
    format!("{test}-{}", ulid::Ulid::new().to_string().to_lowercase())
}

fn queue_property(template: &Value, queue: &str, key: &str) -> String {
    match template["Resources"][queue]["Properties"].get(key) {
        Some(Value::Number(n)) => n.to_string(),
        other => panic!("{queue}.{key} is not a number in the template: {other:?}"),
    }
}

#[tokio::test]
async fn table_has_the_templates_keys_index_billing_and_ttl() {
    let sdk = sdk().await;
    let made = create_from_template(&sdk, &template_text(), &prefix("table")).await.expect("provision");
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);

    let table = ddb.describe_table().table_name(&made.table).send().await.expect("DescribeTable").table.expect("table");
    let keys = |schema: &[aws_sdk_dynamodb::types::KeySchemaElement]| {
        schema.iter().map(|k| (k.attribute_name().to_string(), k.key_type().clone())).collect::<Vec<_>>()
    };
    assert_eq!(keys(table.key_schema()), [("PK".to_string(), KeyType::Hash), ("SK".to_string(), KeyType::Range)]);
    let mut attributes: Vec<String> = table
        .attribute_definitions()
        .iter()
        .map(|a| format!("{}:{}", a.attribute_name(), a.attribute_type()))
        .collect();
    attributes.sort();
    assert_eq!(attributes, ["GSI1PK:S", "GSI1SK:S", "GSI2PK:S", "GSI2SK:S", "PK:S", "SK:S", "owner_open:S"]);

    let mut gsis: Vec<_> = table
        .global_secondary_indexes()
        .iter()
        .map(|g| {
            let projection = g.projection().and_then(|p| p.projection_type()).cloned();
            (g.index_name().unwrap_or_default().to_string(), keys(g.key_schema()), projection)
        })
        .collect();
    gsis.sort_by(|a, b| a.0.cmp(&b.0));
    let key = |name: &str, kind: KeyType| (name.to_string(), kind);
    assert_eq!(
        gsis,
        [
            (
                "due".to_string(),
                vec![key("GSI1PK", KeyType::Hash), key("GSI1SK", KeyType::Range)],
                Some(ProjectionType::All)
            ),
            (
                "listing".to_string(),
                vec![key("GSI2PK", KeyType::Hash), key("GSI2SK", KeyType::Range)],
                Some(ProjectionType::KeysOnly)
            ),
            (
                "owner".to_string(),
                vec![key("owner_open", KeyType::Hash), key("PK", KeyType::Range)],
                Some(ProjectionType::All)
            ),
        ]
    );
    assert_eq!(
        table.billing_mode_summary().and_then(|b| b.billing_mode()),
        Some(&aws_sdk_dynamodb::types::BillingMode::PayPerRequest)
    );

    let ttl = ddb
        .describe_time_to_live()
        .table_name(&made.table)
        .send()
        .await
        .expect("DescribeTimeToLive")
        .time_to_live_description
        .expect("TTL description");
    assert_eq!(ttl.time_to_live_status(), Some(&TimeToLiveStatus::Enabled));
    assert_eq!(ttl.attribute_name(), Some("expires_at"));

    let backups = ddb
        .describe_continuous_backups()
        .table_name(&made.table)
        .send()
        .await
        .expect("DescribeContinuousBackups")
        .continuous_backups_description
        .expect("backups description");
    let pitr = backups.point_in_time_recovery_description().and_then(|p| p.point_in_time_recovery_status());
    assert_eq!(pitr.map(|s| s.as_str()), Some("ENABLED"));
}

#[tokio::test]
async fn stage_queues_redrive_to_their_dlqs_with_the_templates_attributes() {
    let sdk = sdk().await;
    let text = template_text();
    let template: Value = serde_yaml_ng::from_str(&text).expect("template YAML");
    let name_prefix = prefix("queues");
    let made = create_from_template(&sdk, &text, &name_prefix).await.expect("provision");
    let sqs = aws_sdk_sqs::Client::new(&sdk);

    let attributes = |url: String| {
        let sqs = sqs.clone();
        async move {
            sqs.get_queue_attributes()
                .queue_url(url)
                .attribute_names(QueueAttributeName::All)
                .send()
                .await
                .expect("GetQueueAttributes")
                .attributes
                .expect("attributes")
        }
    };

    // Every queue of the template exists, under the prefix.
    let declared: Vec<&str> = template["Resources"]
        .as_mapping()
        .expect("Resources")
        .iter()
        .filter(|(_, r)| r["Type"].as_str() == Some("AWS::SQS::Queue"))
        .filter_map(|(id, _)| id.as_str())
        .collect();
    assert_eq!(made.queues.keys().map(String::as_str).collect::<Vec<_>>(), {
        let mut d = declared.clone();
        d.sort();
        d
    });
    for (id, url) in &made.queues {
        assert!(url.ends_with(&format!("/{name_prefix}-{id}")), "{id}: {url}");
    }

    let stages = [
        ("ValidateQueue", "ValidateDLQ", &made.stage_urls.validate, &made.dlq_urls.validate),
        ("ScoreQueue", "ScoreDLQ", &made.stage_urls.score, &made.dlq_urls.score),
        ("RouteQueue", "RouteDLQ", &made.stage_urls.route, &made.dlq_urls.route),
    ];
    for (queue, dlq, url, dlq_url) in stages {
        assert_eq!(url, &made.queues[queue], "{queue}");
        assert_eq!(dlq_url, &made.queues[dlq], "{dlq}");
        let attrs = attributes(url.clone()).await;
        let dlq_attrs = attributes(dlq_url.clone()).await;

        let redrive: serde_json::Value =
            serde_json::from_str(attrs.get(&QueueAttributeName::RedrivePolicy).expect("RedrivePolicy")).expect("JSON");
        assert_eq!(
            redrive["deadLetterTargetArn"].as_str(),
            dlq_attrs.get(&QueueAttributeName::QueueArn).map(String::as_str),
            "{queue} redrives to {dlq}"
        );
        // SQS accepts and may answer the count as a number or a string.
        let count = redrive["maxReceiveCount"].as_u64().or_else(|| redrive["maxReceiveCount"].as_str()?.parse().ok());
        assert_eq!(count, Some(5), "{queue}: {redrive}");

        for (key, name) in [
            ("VisibilityTimeout", QueueAttributeName::VisibilityTimeout),
            ("MessageRetentionPeriod", QueueAttributeName::MessageRetentionPeriod),
        ] {
            assert_eq!(attrs.get(&name), Some(&queue_property(&template, queue, key)), "{queue}.{key}");
        }
        assert_eq!(
            dlq_attrs.get(&QueueAttributeName::MessageRetentionPeriod),
            Some(&queue_property(&template, dlq, "MessageRetentionPeriod")),
            "{dlq}.MessageRetentionPeriod"
        );
        assert!(!dlq_attrs.contains_key(&QueueAttributeName::RedrivePolicy), "{dlq} redrives nowhere");
    }
}

#[tokio::test]
async fn a_property_the_provisioner_does_not_know_is_an_error_not_ignored() {
    let sdk = sdk().await;
    let template = r#"
Resources:
  Table:
    Type: AWS::DynamoDB::Table
    Properties:
      BillingMode: PAY_PER_REQUEST
      AttributeDefinitions: [{AttributeName: PK, AttributeType: S}]
      KeySchema: [{AttributeName: PK, KeyType: HASH}]
      StreamSpecification: {StreamViewType: NEW_IMAGE}
"#;
    let err = create_from_template(&sdk, template, &prefix("unknown")).await.expect_err("an error");
    assert!(
        matches!(&err, ProvisionError::Unsupported { resource, what } if resource == "Table" && what.contains("StreamSpecification")),
        "{err}"
    );
}
