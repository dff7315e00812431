//! Creates `template.yaml`'s DynamoDB table and SQS queues through the SDK (on moto, in tests),
//! reading their definitions from the template itself: the tests run against what is deployed,
//! not against a second, hand-copied list that drifts from it.
//!
//! Everything that changes how the resources behave is carried over: keys, indexes, billing,
//! TTL, point-in-time recovery, visibility timeout, retention, redrive. A property this module
//! does not know is an error rather than silently dropped, so the template cannot outgrow the
//! tests unnoticed. The whole template is checked before anything is created.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use aws_sdk_dynamodb::client::Waiters;
use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType,
    PointInTimeRecoverySpecification, Projection, ProjectionType, ProvisionedThroughput, ScalarAttributeType,
    TimeToLiveSpecification,
};
use aws_sdk_sqs::types::QueueAttributeName;
use serde_yaml_ng::{Mapping, Value};

use crate::queue::StageUrls;

const TABLE_TYPE: &str = "AWS::DynamoDB::Table";
const QUEUE_TYPE: &str = "AWS::SQS::Queue";
const FUNCTION_TYPE: &str = "AWS::Serverless::Function";

/// Table properties that only matter on AWS (names are ours, encryption and protection are not
/// observable through the data plane).
const TABLE_IGNORED: &[&str] = &["TableName", "Tags", "SSESpecification", "DeletionProtectionEnabled", "TableClass"];
const QUEUE_IGNORED: &[&str] = &["QueueName", "Tags"];

/// Queue properties that are SQS attributes of the same name and meaning.
const QUEUE_ATTRIBUTES: &[&str] = &[
    "VisibilityTimeout",
    "MessageRetentionPeriod",
    "DelaySeconds",
    "MaximumMessageSize",
    "ReceiveMessageWaitTimeSeconds",
    "SqsManagedSseEnabled",
    "FifoQueue",
    "ContentBasedDeduplication",
    "DeduplicationScope",
    "FifoThroughputLimit",
    "RedrivePolicy",
    "RedriveAllowPolicy",
];

#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error("template is not valid YAML: {0}")]
    Yaml(#[from] serde_yaml_ng::Error),
    #[error("template: {0}")]
    Template(String),
    #[error("template resource {resource}: {what} is not supported by shared/aws/src/provision.rs")]
    Unsupported { resource: String, what: String },
    #[error("creating {resource}: {message}")]
    Aws { resource: String, message: String },
}

/// What [`create_from_template`] made.
#[derive(Debug, Clone)]
pub struct Provisioned {
    /// The table's name.
    pub table: String,
    /// Every queue of the template: logical id → URL.
    pub queues: BTreeMap<String, String>,
    /// The queues the validate, score and route functions consume.
    pub stage_urls: StageUrls,
    /// Each stage queue's dead-letter queue.
    pub dlq_urls: StageUrls,
}

/// Creates the template's one table and all its queues, named `<name_prefix>-<logical id>`, with
/// the template's definitions, and enables the table's TTL.
pub async fn create_from_template(
    sdk: &aws_config::SdkConfig,
    template_yaml: &str,
    name_prefix: &str,
) -> Result<Provisioned, ProvisionError> {
    let doc: Value = serde_yaml_ng::from_str(template_yaml)?;
    let resources = doc
        .get("Resources")
        .and_then(Value::as_mapping)
        .ok_or_else(|| ProvisionError::Template("no Resources mapping".into()))?;

    let tables = of_type(resources, TABLE_TYPE)?;
    let [(table_id, table_props)] = tables.as_slice() else {
        return Err(ProvisionError::Template(format!("expected exactly one {TABLE_TYPE}, found {}", tables.len())));
    };
    let table = TablePlan::read(table_id, table_props)?;
    let queues = of_type(resources, QUEUE_TYPE)?
        .into_iter()
        .map(|(id, props)| QueuePlan::read(id, props))
        .collect::<Result<Vec<_>, _>>()?;
    let queue_ids: BTreeSet<&str> = queues.iter().map(|q| q.id.as_str()).collect();
    for q in &queues {
        if let Some(missing) = q.depends_on.iter().find(|d| !queue_ids.contains(d.as_str())) {
            return Err(ProvisionError::Unsupported {
                resource: q.id.clone(),
                what: format!("a reference to {missing}, which is not a queue"),
            });
        }
    }
    let stages = stage_queues(resources)?;
    let dlq_of = |queue: &str| {
        queues.iter().find(|q| q.id == queue).and_then(|q| q.dead_letter_target.clone()).ok_or_else(|| {
            ProvisionError::Template(format!("stage queue {queue} has no RedrivePolicy dead-letter target"))
        })
    };
    let dlqs = StageQueues {
        validate: dlq_of(&stages.validate)?,
        score: dlq_of(&stages.score)?,
        route: dlq_of(&stages.route)?,
    };

    let table_name = format!("{name_prefix}-{table_id}");
    table.create(&aws_sdk_dynamodb::Client::new(sdk), &table_name).await?;

    let sqs = aws_sdk_sqs::Client::new(sdk);
    let mut created: BTreeMap<String, CreatedQueue> = BTreeMap::new();
    let mut pending: Vec<&QueuePlan> = queues.iter().collect();
    while !pending.is_empty() {
        let (ready, blocked): (Vec<&QueuePlan>, Vec<&QueuePlan>) =
            pending.into_iter().partition(|q| q.depends_on.iter().all(|d| created.contains_key(d)));
        if ready.is_empty() {
            let ids: Vec<&str> = blocked.iter().map(|q| q.id.as_str()).collect();
            return Err(ProvisionError::Template(format!("queues refer to each other in a cycle: {ids:?}")));
        }
        for q in ready {
            let made = q.create(&sqs, name_prefix, &created).await?;
            created.insert(q.id.clone(), made);
        }
        pending = blocked;
    }

    let urls = |ids: &StageQueues| {
        let url = |id: &str| created[id].url.clone();
        StageUrls { validate: url(&ids.validate), score: url(&ids.score), route: url(&ids.route) }
    };
    Ok(Provisioned {
        table: table_name,
        stage_urls: urls(&stages),
        dlq_urls: urls(&dlqs),
        queues: created.into_iter().map(|(id, q)| (id, q.url)).collect(),
    })
}

fn of_type<'a>(resources: &'a Mapping, ty: &str) -> Result<Vec<(String, &'a Mapping)>, ProvisionError> {
    let mut found = Vec::new();
    for (id, resource) in resources {
        if resource.get("Type").and_then(Value::as_str) != Some(ty) {
            continue;
        }
        let id =
            id.as_str().ok_or_else(|| ProvisionError::Template(format!("a resource id is not a string: {id:?}")))?;
        if resource.get("Condition").is_some() {
            // Whether it exists depends on parameters this module does not have.
            return Err(ProvisionError::Unsupported { resource: id.into(), what: "Condition".into() });
        }
        static EMPTY: std::sync::LazyLock<Mapping> = std::sync::LazyLock::new(Mapping::new);
        let props = match resource.get("Properties") {
            None => &*EMPTY,
            Some(p) => {
                p.as_mapping().ok_or_else(|| ProvisionError::Template(format!("{id}: Properties is not a mapping")))?
            }
        };
        found.push((id.to_string(), props));
    }
    Ok(found)
}

/// The stage queues' logical ids, found the way Lambda finds them: the SQS event source of the
/// function whose binary is the stage's name.
struct StageQueues {
    validate: String,
    score: String,
    route: String,
}

fn stage_queues(resources: &Mapping) -> Result<StageQueues, ProvisionError> {
    let mut by_binary = BTreeMap::new();
    for (id, resource) in resources {
        if resource.get("Type").and_then(Value::as_str) != Some(FUNCTION_TYPE) {
            continue;
        }
        let binary = resource
            .get("Metadata")
            .and_then(|m| m.get("BuildProperties"))
            .and_then(|b| b.get("Binary"))
            .and_then(Value::as_str);
        let events = resource.get("Properties").and_then(|p| p.get("Events")).and_then(Value::as_mapping);
        let (Some(binary), Some(events)) = (binary, events) else { continue };
        for event in events.values() {
            if event.get("Type").and_then(Value::as_str) != Some("SQS") {
                continue;
            }
            let queue = event.get("Properties").and_then(|p| p.get("Queue"));
            match queue.and_then(get_att) {
                Some((queue, attr)) if attr == "Arn" => {
                    by_binary.insert(binary.to_string(), queue);
                }
                _ => {
                    let id = id.as_str().unwrap_or_default();
                    return Err(ProvisionError::Template(format!(
                        "{id}: an SQS event's Queue is not `!GetAtt <queue>.Arn`"
                    )));
                }
            }
        }
    }
    let mut take = |stage: &str| {
        by_binary
            .remove(stage)
            .ok_or_else(|| ProvisionError::Template(format!("no function with Binary {stage} consumes an SQS queue")))
    };
    Ok(StageQueues { validate: take("validate")?, score: take("score")?, route: take("route")? })
}

/// An intrinsic function, in either the short (`!GetAtt`) or the long (`Fn::GetAtt:`) form.
fn intrinsic(v: &Value) -> Option<(&str, &Value)> {
    match v {
        Value::Tagged(t) => {
            let tag = t.tag.to_string();
            let name = tag.trim_start_matches('!');
            // The short tags are the long names without the `Fn::` (except `Ref`).
            INTRINSICS.iter().find(|n| n.trim_start_matches("Fn::") == name).map(|n| (*n, &t.value))
        }
        Value::Mapping(m) if m.len() == 1 => {
            let (k, v) = m.iter().next()?;
            let k = k.as_str()?;
            INTRINSICS.iter().find(|n| **n == k).map(|n| (*n, v))
        }
        _ => None,
    }
}

const INTRINSICS: &[&str] = &[
    "Ref",
    "Fn::GetAtt",
    "Fn::Sub",
    "Fn::Join",
    "Fn::If",
    "Fn::Select",
    "Fn::Split",
    "Fn::ImportValue",
    "Fn::FindInMap",
    "Fn::Base64",
    "Fn::GetAZs",
    "Fn::Equals",
    "Fn::Not",
    "Fn::And",
    "Fn::Or",
];

/// `!GetAtt X.Y` or `Fn::GetAtt: [X, Y]` → (X, Y).
fn get_att(v: &Value) -> Option<(String, String)> {
    let ("Fn::GetAtt", arg) = intrinsic(v)? else { return None };
    match arg {
        Value::String(s) => s.split_once('.').map(|(r, a)| (r.to_string(), a.to_string())),
        Value::Sequence(parts) => match parts.as_slice() {
            [r, a] => Some((r.as_str()?.to_string(), a.as_str()?.to_string())),
            _ => None,
        },
        _ => None,
    }
}

/// The resources a value refers to.
fn references(v: &Value, out: &mut BTreeSet<String>) {
    if let Some((name, arg)) = intrinsic(v) {
        match name {
            "Ref" => {
                if let Some(r) = arg.as_str().filter(|r| !r.starts_with("AWS::")) {
                    out.insert(r.to_string());
                }
            }
            "Fn::GetAtt" => {
                if let Some((r, _)) = get_att(v) {
                    out.insert(r);
                }
            }
            _ => references(arg, out),
        }
        return;
    }
    match v {
        Value::Sequence(s) => s.iter().for_each(|v| references(v, out)),
        Value::Mapping(m) => m.values().for_each(|v| references(v, out)),
        Value::Tagged(t) => references(&t.value, out),
        _ => {}
    }
}

fn check_properties(id: &str, props: &Mapping, known: &[&str], ignored: &[&str]) -> Result<(), ProvisionError> {
    for key in props.keys() {
        let key = key.as_str().unwrap_or_default();
        if !known.contains(&key) && !ignored.contains(&key) {
            return Err(ProvisionError::Unsupported { resource: id.into(), what: format!("property {key}") });
        }
    }
    Ok(())
}

/// A plain scalar as a string; intrinsics are only resolved where the template needs them.
fn scalar(id: &str, what: &str, v: &Value) -> Result<String, ProvisionError> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        _ => Err(ProvisionError::Unsupported { resource: id.into(), what: format!("{what} = {}", brief(v)) }),
    }
}

fn brief(v: &Value) -> String {
    serde_yaml_ng::to_string(v).map(|s| s.trim().replace('\n', " ")).unwrap_or_else(|_| format!("{v:?}"))
}

fn field<'a>(id: &str, m: &'a Value, key: &str) -> Result<&'a str, ProvisionError> {
    match m.get(key) {
        Some(Value::String(s)) => Ok(s),
        Some(v) => Err(ProvisionError::Unsupported { resource: id.into(), what: format!("{key} = {}", brief(v)) }),
        None => Err(ProvisionError::Template(format!("{id}: {key} is missing"))),
    }
}

fn list<'a>(id: &str, props: &'a Mapping, key: &str) -> Result<&'a [Value], ProvisionError> {
    match props.get(key) {
        None => Ok(&[]),
        Some(Value::Sequence(s)) => Ok(s),
        Some(v) => Err(ProvisionError::Unsupported { resource: id.into(), what: format!("{key} = {}", brief(v)) }),
    }
}

fn invalid(id: &str) -> impl Fn(aws_sdk_dynamodb::error::BuildError) -> ProvisionError + '_ {
    move |e| ProvisionError::Template(format!("{id}: {e}"))
}

fn aws_error<E: std::error::Error>(resource: &str) -> impl FnOnce(E) -> ProvisionError + '_ {
    move |e| ProvisionError::Aws { resource: resource.into(), message: DisplayErrorContext(&e).to_string() }
}

struct TablePlan {
    id: String,
    attributes: Vec<AttributeDefinition>,
    key_schema: Vec<KeySchemaElement>,
    indexes: Vec<GlobalSecondaryIndex>,
    billing: Option<BillingMode>,
    throughput: Option<ProvisionedThroughput>,
    ttl: Option<TimeToLiveSpecification>,
    pitr: Option<PointInTimeRecoverySpecification>,
}

impl TablePlan {
    fn read(id: &str, props: &Mapping) -> Result<Self, ProvisionError> {
        check_properties(
            id,
            props,
            &[
                "AttributeDefinitions",
                "KeySchema",
                "GlobalSecondaryIndexes",
                "BillingMode",
                "ProvisionedThroughput",
                "TimeToLiveSpecification",
                "PointInTimeRecoverySpecification",
            ],
            TABLE_IGNORED,
        )?;
        let attributes = list(id, props, "AttributeDefinitions")?
            .iter()
            .map(|a| {
                AttributeDefinition::builder()
                    .attribute_name(field(id, a, "AttributeName")?)
                    .attribute_type(ScalarAttributeType::from(field(id, a, "AttributeType")?))
                    .build()
                    .map_err(invalid(id))
            })
            .collect::<Result<_, _>>()?;
        let key_schema = keys_of(id, list(id, props, "KeySchema")?)?;
        let mut indexes = Vec::new();
        for gsi in list(id, props, "GlobalSecondaryIndexes")? {
            let gsi_map = gsi.as_mapping().cloned().unwrap_or_default();
            check_properties(id, &gsi_map, &["IndexName", "KeySchema", "Projection", "ProvisionedThroughput"], &[])?;
            let projection = gsi
                .get("Projection")
                .ok_or_else(|| ProvisionError::Template(format!("{id}: a GSI has no Projection")))?;
            let non_key = match projection.get("NonKeyAttributes") {
                None => None,
                Some(Value::Sequence(s)) => {
                    Some(s.iter().map(|a| scalar(id, "NonKeyAttributes", a)).collect::<Result<Vec<_>, _>>()?)
                }
                Some(v) => {
                    return Err(ProvisionError::Unsupported {
                        resource: id.into(),
                        what: format!("NonKeyAttributes = {}", brief(v)),
                    });
                }
            };
            let projection = Projection::builder()
                .projection_type(ProjectionType::from(field(id, projection, "ProjectionType")?))
                .set_non_key_attributes(non_key)
                .build();
            let keys = match gsi.get("KeySchema") {
                Some(Value::Sequence(s)) => keys_of(id, s)?,
                _ => return Err(ProvisionError::Template(format!("{id}: a GSI has no KeySchema list"))),
            };
            indexes.push(
                GlobalSecondaryIndex::builder()
                    .index_name(field(id, gsi, "IndexName")?)
                    .set_key_schema(Some(keys))
                    .projection(projection)
                    .set_provisioned_throughput(throughput(id, gsi.get("ProvisionedThroughput"))?)
                    .build()
                    .map_err(invalid(id))?,
            );
        }
        let billing = props
            .get("BillingMode")
            .map(|b| scalar(id, "BillingMode", b))
            .transpose()?
            .map(|b| BillingMode::from(b.as_str()));
        let ttl = match props.get("TimeToLiveSpecification") {
            None => None,
            Some(t) => Some(
                TimeToLiveSpecification::builder()
                    .attribute_name(field(id, t, "AttributeName")?)
                    .enabled(flag(id, t, "Enabled")?)
                    .build()
                    .map_err(invalid(id))?,
            ),
        };
        let pitr = match props.get("PointInTimeRecoverySpecification") {
            None => None,
            Some(p) => Some(
                PointInTimeRecoverySpecification::builder()
                    .point_in_time_recovery_enabled(flag(id, p, "PointInTimeRecoveryEnabled")?)
                    .build()
                    .map_err(invalid(id))?,
            ),
        };
        Ok(TablePlan {
            id: id.to_string(),
            attributes,
            key_schema,
            indexes,
            billing,
            throughput: throughput(id, props.get("ProvisionedThroughput"))?,
            ttl,
            pitr,
        })
    }

    async fn create(&self, ddb: &aws_sdk_dynamodb::Client, name: &str) -> Result<(), ProvisionError> {
        let id = self.id.as_str();
        ddb.create_table()
            .table_name(name)
            .set_attribute_definitions(Some(self.attributes.clone()))
            .set_key_schema(Some(self.key_schema.clone()))
            .set_global_secondary_indexes(Some(self.indexes.clone()).filter(|i| !i.is_empty()))
            .set_billing_mode(self.billing.clone())
            .set_provisioned_throughput(self.throughput.clone())
            .send()
            .await
            .map_err(aws_error(id))?;
        // TTL and backups can only be changed once the table is ACTIVE (at once on moto, not
        // on AWS).
        ddb.wait_until_table_exists().table_name(name).wait(Duration::from_secs(120)).await.map_err(aws_error(id))?;
        if let Some(ttl) = &self.ttl {
            ddb.update_time_to_live()
                .table_name(name)
                .time_to_live_specification(ttl.clone())
                .send()
                .await
                .map_err(aws_error(id))?;
        }
        if let Some(pitr) = &self.pitr {
            ddb.update_continuous_backups()
                .table_name(name)
                .point_in_time_recovery_specification(pitr.clone())
                .send()
                .await
                .map_err(aws_error(id))?;
        }
        Ok(())
    }
}

fn keys_of(id: &str, keys: &[Value]) -> Result<Vec<KeySchemaElement>, ProvisionError> {
    keys.iter()
        .map(|k| {
            KeySchemaElement::builder()
                .attribute_name(field(id, k, "AttributeName")?)
                .key_type(KeyType::from(field(id, k, "KeyType")?))
                .build()
                .map_err(invalid(id))
        })
        .collect()
}

fn throughput(id: &str, v: Option<&Value>) -> Result<Option<ProvisionedThroughput>, ProvisionError> {
    let Some(v) = v else { return Ok(None) };
    let units = |key: &str| -> Result<i64, ProvisionError> {
        let raw = v.get(key).map(|u| scalar(id, key, u)).transpose()?.unwrap_or_default();
        raw.parse().map_err(|_| ProvisionError::Template(format!("{id}: {key} is not a number: {raw:?}")))
    };
    ProvisionedThroughput::builder()
        .read_capacity_units(units("ReadCapacityUnits")?)
        .write_capacity_units(units("WriteCapacityUnits")?)
        .build()
        .map(Some)
        .map_err(invalid(id))
}

fn flag(id: &str, m: &Value, key: &str) -> Result<bool, ProvisionError> {
    match m.get(key).map(|v| scalar(id, key, v)).transpose()?.as_deref() {
        Some("true") => Ok(true),
        Some("false") | None => Ok(false),
        Some(other) => Err(ProvisionError::Template(format!("{id}: {key} is not a boolean: {other:?}"))),
    }
}

struct QueuePlan {
    id: String,
    properties: Vec<(String, Value)>,
    depends_on: BTreeSet<String>,
    dead_letter_target: Option<String>,
}

struct CreatedQueue {
    url: String,
    arn: String,
    name: String,
}

impl QueuePlan {
    fn read(id: String, props: &Mapping) -> Result<Self, ProvisionError> {
        check_properties(&id, props, QUEUE_ATTRIBUTES, QUEUE_IGNORED)?;
        let mut depends_on = BTreeSet::new();
        let mut properties = Vec::new();
        for (key, value) in props {
            let key = key.as_str().unwrap_or_default();
            if QUEUE_IGNORED.contains(&key) {
                continue;
            }
            references(value, &mut depends_on);
            properties.push((key.to_string(), value.clone()));
        }
        let dead_letter_target = props
            .get("RedrivePolicy")
            .and_then(|p| p.get("deadLetterTargetArn"))
            .and_then(get_att)
            .map(|(queue, _)| queue);
        Ok(QueuePlan { id, properties, depends_on, dead_letter_target })
    }

    async fn create(
        &self,
        sqs: &aws_sdk_sqs::Client,
        prefix: &str,
        created: &BTreeMap<String, CreatedQueue>,
    ) -> Result<CreatedQueue, ProvisionError> {
        let id = self.id.as_str();
        let mut attributes = std::collections::HashMap::new();
        let mut fifo = false;
        for (key, value) in &self.properties {
            let text = match value {
                // Redrive policies are JSON documents on the SQS API; the template writes them
                // as YAML mappings with references to the queues created before.
                Value::Mapping(m) if intrinsic(value).is_none() => {
                    let mut doc = serde_json::Map::new();
                    for (k, v) in m {
                        let k = k.as_str().unwrap_or_default().to_string();
                        let resolved = resolve(id, &k, v, created)?;
                        let json = match v {
                            Value::Number(n) => {
                                serde_json::from_str(&n.to_string()).unwrap_or(serde_json::Value::String(resolved))
                            }
                            _ => serde_json::Value::String(resolved),
                        };
                        doc.insert(k, json);
                    }
                    serde_json::Value::Object(doc).to_string()
                }
                _ => resolve(id, key, value, created)?,
            };
            if key == "FifoQueue" && text == "true" {
                fifo = true;
            }
            attributes.insert(QueueAttributeName::from(key.as_str()), text);
        }
        // SQS insists that FIFO queue names end in .fifo.
        let name = format!("{prefix}-{id}{}", if fifo { ".fifo" } else { "" });
        let url = sqs
            .create_queue()
            .queue_name(&name)
            .set_attributes(Some(attributes))
            .send()
            .await
            .map_err(aws_error(id))?
            .queue_url
            .ok_or_else(|| ProvisionError::Aws {
                resource: id.into(),
                message: "CreateQueue answered no QueueUrl".into(),
            })?;
        let arn = sqs
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .map_err(aws_error(id))?
            .attributes
            .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
            .ok_or_else(|| ProvisionError::Aws {
                resource: id.into(),
                message: "GetQueueAttributes answered no QueueArn".into(),
            })?;
        Ok(CreatedQueue { url, arn, name })
    }
}

/// A scalar, or a reference to a queue created before (the only references queues need).
fn resolve(
    id: &str,
    what: &str,
    v: &Value,
    created: &BTreeMap<String, CreatedQueue>,
) -> Result<String, ProvisionError> {
    let unsupported = || ProvisionError::Unsupported { resource: id.into(), what: format!("{what} = {}", brief(v)) };
    match intrinsic(v) {
        None => scalar(id, what, v),
        Some(("Fn::GetAtt", _)) => {
            let (target, attr) = get_att(v).ok_or_else(unsupported)?;
            let q = created.get(&target).ok_or_else(unsupported)?;
            match attr.as_str() {
                "Arn" => Ok(q.arn.clone()),
                "QueueUrl" => Ok(q.url.clone()),
                "QueueName" => Ok(q.name.clone()),
                _ => Err(unsupported()),
            }
        }
        // A queue's Ref is its URL.
        Some(("Ref", target)) => {
            target.as_str().and_then(|t| created.get(t)).map(|q| q.url.clone()).ok_or_else(unsupported)
        }
        Some(_) => Err(unsupported()),
    }
}
