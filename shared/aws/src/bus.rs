//! The event bus over EventBridge `PutEvents`.

use aws_sdk_eventbridge::Client;
use aws_sdk_eventbridge::primitives::DateTime as AwsDateTime;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use leadflow_core::error::BusError;
use leadflow_core::ports::{DomainEvent, EventBus};
use serde_json::{Map, Value};

use crate::store::describe_sdk_error;

/// The `source` of every event Leadflow publishes; rules match on it.
pub const SOURCE: &str = "leadflow";
/// `PutEvents` takes at most ten entries.
const BATCH_ENTRIES: usize = 10;

#[derive(Debug, Clone)]
pub struct EventBridgeBus {
    client: Client,
    bus_name: String,
}

impl EventBridgeBus {
    pub fn new(client: Client, bus_name: impl Into<String>) -> Self {
        Self { client, bus_name: bus_name.into() }
    }

    pub fn bus_name(&self) -> &str {
        &self.bus_name
    }
}

/// The event's `detail`: its fields, plus the deterministic `id` (consumers drop repeats by it;
/// EventBridge's own id differs on every put) and `at`. A detail that is not an object is kept
/// under `detail`.
pub fn detail_json(event: &DomainEvent) -> Result<String, BusError> {
    let mut fields = match &event.detail {
        Value::Object(map) => map.clone(),
        Value::Null => Map::new(),
        other => Map::from_iter([("detail".to_string(), other.clone())]),
    };
    fields.insert("id".into(), Value::String(event.id.clone()));
    fields.insert("at".into(), serde_json::to_value(event.at).map_err(|e| encode_failed(event, &e))?);
    serde_json::to_string(&Value::Object(fields)).map_err(|e| encode_failed(event, &e))
}

fn encode_failed(event: &DomainEvent, e: &serde_json::Error) -> BusError {
    BusError::Unavailable(format!("event {} cannot be encoded ({:?} error)", event.id, e.classify()))
}

impl EventBus for EventBridgeBus {
    async fn publish(&self, events: &[DomainEvent]) -> Result<(), BusError> {
        for chunk in events.chunks(BATCH_ENTRIES) {
            let mut entries = Vec::with_capacity(chunk.len());
            for event in chunk {
                entries.push(
                    PutEventsRequestEntry::builder()
                        .event_bus_name(&self.bus_name)
                        .source(SOURCE)
                        .detail_type(&event.detail_type)
                        .detail(detail_json(event)?)
                        .time(AwsDateTime::from_millis(event.at.timestamp_millis()))
                        .build(),
                );
            }
            let out = self
                .client
                .put_events()
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| BusError::Unavailable(format!("bus {}: {}", self.bus_name, describe_sdk_error(&e))))?;
            if out.failed_entry_count > 0 {
                // The caller publishes the whole batch again; the events that did go in arrive
                // twice, with the same `id`, which consumers drop.
                let mut codes: Vec<&str> = out.entries().iter().filter_map(|e| e.error_code()).collect();
                codes.sort_unstable();
                codes.dedup();
                return Err(BusError::Unavailable(format!(
                    "bus {}: {} of {} events were not accepted ({})",
                    self.bus_name,
                    out.failed_entry_count,
                    chunk.len(),
                    codes.join(", ")
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detail_carries_the_fields_and_our_id_and_time() {
        let event = DomainEvent {
            id: "lead.assigned:01J:1".into(),
            detail_type: "lead.assigned".into(),
            at: chrono::DateTime::from_timestamp(1_750_000_000, 0).unwrap_or_default(),
            detail: serde_json::json!({"lead_id": "01J", "id": "theirs"}),
        };
        let detail: Value = serde_json::from_str(&detail_json(&event).unwrap_or_default()).unwrap_or_default();
        assert_eq!(detail["id"], "lead.assigned:01J:1");
        assert_eq!(detail["lead_id"], "01J");
        assert_eq!(detail["at"], "2025-06-15T15:06:40Z");
    }
}
