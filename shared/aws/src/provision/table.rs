//! The template's DynamoDB table: its definition read from the template, then created with the
//! settings that can only be changed once it exists.

use std::time::Duration;

use aws_sdk_dynamodb::client::Waiters;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType,
    PointInTimeRecoverySpecification, Projection, ProjectionType, ProvisionedThroughput, ScalarAttributeType,
    TimeToLiveSpecification,
};
use serde_yaml_ng::{Mapping, Value};

use super::template::{brief, check_properties, field, list, scalar};
use super::{ProvisionError, aws_error};

/// Table properties that only matter on AWS (names are ours, encryption and protection are not
/// observable through the data plane).
const TABLE_IGNORED: &[&str] = &["TableName", "Tags", "SSESpecification", "DeletionProtectionEnabled", "TableClass"];

pub(super) struct TablePlan {
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
    pub(super) fn read(id: &str, props: &Mapping) -> Result<Self, ProvisionError> {
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

    pub(super) async fn create(&self, ddb: &aws_sdk_dynamodb::Client, name: &str) -> Result<(), ProvisionError> {
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

fn invalid(id: &str) -> impl Fn(aws_sdk_dynamodb::error::BuildError) -> ProvisionError + '_ {
    move |e| ProvisionError::Template(format!("{id}: {e}"))
}
