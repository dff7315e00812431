#![allow(dead_code)] // each test binary uses its own part of these helpers

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Credentials, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType,
    ScalarAttributeType, TimeToLiveSpecification,
};
use chrono::{DateTime, TimeZone, Utc};
use leadflow_aws::store::DynamoStore;
use leadflow_core::model::{
    Assignment, Attribution, Contact, DomainKind, Enrollment, EnrollmentState, Lead, LeadId, Lifecycle, SalesStatus,
    Touch, Validity,
};

/// The moto server the tests talk to. The project's test script starts one and exports this
/// variable; without it these tests fail rather than pass vacuously.
pub const ENDPOINT_VAR: &str = "LEADFLOW_MOTO_ENDPOINT";

pub fn endpoint() -> String {
    match std::env::var(ENDPOINT_VAR) {
        Ok(v) if !v.is_empty() => v.trim_end_matches('/').to_string(),
        _ => panic!(
            "{ENDPOINT_VAR} is not set: these tests need a moto server (`moto_server -p 4566`, then \
             `export {ENDPOINT_VAR}=http://127.0.0.1:4566`); scripts/test starts one for you"
        ),
    }
}

pub async fn sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .load()
        .await
}

/// A name no other test (or earlier run against the same moto) uses.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", ulid::Ulid::new().to_string().to_lowercase())
}

/// The operations a DynamoDB client sent, in order, every attempt counted (from the
/// `X-Amz-Target` header: `PutItem`, `TransactWriteItems`, …).
#[derive(Debug, Clone, Default)]
pub struct Requests(Arc<Mutex<Vec<String>>>);

impl Requests {
    pub fn take(&self) -> Vec<String> {
        self.0.lock().map(|mut v| std::mem::take(&mut *v)).unwrap_or_default()
    }
}

impl Intercept for Requests {
    fn name(&self) -> &'static str {
        "RequestLog"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let target = context.request().headers().get("x-amz-target").unwrap_or("?");
        let op = target.rsplit('.').next().unwrap_or(target).to_string();
        if let Ok(mut log) = self.0.lock() {
            log.push(op);
        }
        Ok(())
    }
}

/// A fresh table with the template's definition, a store over it, the raw client, and the
/// request log of the store's client.
pub struct Table {
    pub name: String,
    pub store: DynamoStore,
    pub client: aws_sdk_dynamodb::Client,
    pub requests: Requests,
}

pub async fn table() -> Table {
    let config = sdk_config().await;
    let client = aws_sdk_dynamodb::Client::new(&config);
    let name = unique("leadflow-test");
    create_table(&client, &name).await;
    let requests = Requests::default();
    let logged = aws_sdk_dynamodb::config::Builder::from(&config).interceptor(requests.clone()).build();
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::from_conf(logged), &name);
    Table { name, store, client, requests }
}

/// The table as template.yaml defines it: PK/SK, the sparse `due` index on GSI1PK/GSI1SK
/// (projecting everything), on-demand, TTL on `expires_at`.
pub async fn create_table(client: &aws_sdk_dynamodb::Client, name: &str) {
    let attr = |n: &str| {
        AttributeDefinition::builder()
            .attribute_name(n)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .expect("attribute definition")
    };
    let key = |n: &str, t: KeyType| KeySchemaElement::builder().attribute_name(n).key_type(t).build().expect("key");
    let due = GlobalSecondaryIndex::builder()
        .index_name("due")
        .key_schema(key("GSI1PK", KeyType::Hash))
        .key_schema(key("GSI1SK", KeyType::Range))
        .projection(Projection::builder().projection_type(ProjectionType::All).build())
        .build()
        .expect("index");
    client
        .create_table()
        .table_name(name)
        .attribute_definitions(attr("PK"))
        .attribute_definitions(attr("SK"))
        .attribute_definitions(attr("GSI1PK"))
        .attribute_definitions(attr("GSI1SK"))
        .key_schema(key("PK", KeyType::Hash))
        .key_schema(key("SK", KeyType::Range))
        .global_secondary_indexes(due)
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .expect("create table");
    client
        .update_time_to_live()
        .table_name(name)
        .time_to_live_specification(
            TimeToLiveSpecification::builder().enabled(true).attribute_name("expires_at").build().expect("ttl"),
        )
        .send()
        .await
        .expect("enable TTL");
}

pub fn t(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_750_000_000 + secs, 0).single().unwrap_or_default()
}

pub fn id(n: u64) -> LeadId {
    LeadId::from_parts(1_750_000_000_000 + n, u128::from(n))
}

pub fn lead(n: u64, email: &str) -> Lead {
    Lead {
        id: id(n),
        version: 0,
        created_at: t(0),
        updated_at: t(0),
        validity: Validity::Valid,
        warnings: Vec::new(),
        contact: Contact {
            email: email.to_string(),
            email_domain: email.rsplit('@').next().unwrap_or_default().to_string(),
            domain_kind: DomainKind::Corporate,
            role_address: false,
            first_name: Some("Ada".into()),
            last_name: Some("Lovelace".into()),
            phone: None,
            company: Some("Analytical Engines".into()),
            job_title: None,
            country: Some("GB".into()),
            time_zone: None,
        },
        consent: None,
        attribution: Attribution { first_touch: Touch::default(), last_touch: Touch::default() },
        custom: BTreeMap::new(),
        submissions: 1,
        score: None,
        lifecycle: Lifecycle::Lead,
        status: SalesStatus::New,
        owner: None,
    }
}

pub fn owned_by(mut lead: Lead, rep: &str) -> Lead {
    lead.owner = Some(Assignment {
        rep_id: rep.to_string(),
        team_id: Some("emea".into()),
        assigned_at: t(10),
        sla_due_at: t(3600),
        explanation: vec!["round robin".into()],
        via_fallback: false,
    });
    lead
}

pub fn enrollment(lead: u64, campaign: &str, due: Option<DateTime<Utc>>, state: EnrollmentState) -> Enrollment {
    Enrollment {
        lead_id: id(lead),
        campaign_id: campaign.to_string(),
        campaign_version: 1,
        enrolled_at: t(0),
        next_step: 0,
        next_due_at: due,
        state,
        version: 0,
    }
}
