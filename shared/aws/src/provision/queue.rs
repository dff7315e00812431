//! The template's SQS queues: their properties read from the template, and each queue created
//! with the ARNs, URLs and names of the queues it refers to (its dead-letter queue).

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_sqs::types::QueueAttributeName;
use serde_yaml_ng::{Mapping, Value};

use super::template::{brief, check_properties, get_att, intrinsic, references, scalar};
use super::{ProvisionError, aws_error};

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

pub(super) struct QueuePlan {
    pub(super) id: String,
    properties: Vec<(String, Value)>,
    pub(super) depends_on: BTreeSet<String>,
    pub(super) dead_letter_target: Option<String>,
}

pub(super) struct CreatedQueue {
    pub(super) url: String,
    arn: String,
    name: String,
}

impl QueuePlan {
    pub(super) fn read(id: String, props: &Mapping) -> Result<Self, ProvisionError> {
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

    pub(super) async fn create(
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
