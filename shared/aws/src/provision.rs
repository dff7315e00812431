//! Creates `template.yaml`'s DynamoDB table and SQS queues through the SDK (on moto, in tests),
//! reading their definitions from the template itself: the tests run against what is deployed,
//! not against a second, hand-copied list that drifts from it.
//!
//! Everything that changes how the resources behave is carried over: keys, indexes, billing,
//! TTL, point-in-time recovery, visibility timeout, retention, redrive. A property this module
//! does not know is an error rather than silently dropped, so the template cannot outgrow the
//! tests unnoticed. The whole template is checked before anything is created.
//!
//! `template` reads the YAML; `table` and `queue` plan and create each kind of resource.

mod queue;
mod table;
mod template;

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_dynamodb::error::DisplayErrorContext;
use serde_yaml_ng::{Mapping, Value};

use crate::queue::StageUrls;
use queue::{CreatedQueue, QueuePlan};
use table::TablePlan;
use template::{get_att, of_type};

const TABLE_TYPE: &str = "AWS::DynamoDB::Table";
const QUEUE_TYPE: &str = "AWS::SQS::Queue";
const FUNCTION_TYPE: &str = "AWS::Serverless::Function";

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

fn aws_error<E: std::error::Error>(resource: &str) -> impl FnOnce(E) -> ProvisionError + '_ {
    move |e| ProvisionError::Aws { resource: resource.into(), message: DisplayErrorContext(&e).to_string() }
}
