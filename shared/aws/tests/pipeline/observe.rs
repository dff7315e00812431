//! What a deployment did, as the outside sees it: the events on the default bus and the emails
//! moto's SES recorded.

use std::sync::Mutex;
use std::time::Instant;

use leadflow_core::model::LeadId;
use serde_json::Value;

use crate::common;
use crate::deadline;
use crate::deployment::Setup;
use crate::mapping::queue_arn;

/// A rule on the default bus forwarding Leadflow's events to a queue of the test's own, and
/// every event read from that queue so far. Other tests' events arrive too (the default bus is
/// shared); callers pick theirs by lead id.
pub(crate) struct EventTap {
    pub(crate) rule: String,
    queue_url: String,
    seen: Mutex<Vec<Value>>,
}

impl EventTap {
    pub(crate) async fn on_default_bus(setup: &Setup, name: &str) -> Self {
        let queue_url = setup
            .sqs
            .create_queue()
            .queue_name(common::unique(&format!("{name}-events")))
            .send()
            .await
            .expect("CreateQueue")
            .queue_url
            .expect("queue url");
        let arn = queue_arn(&setup.sqs, &queue_url).await;
        let rule = common::unique(&format!("{name}-tap"));
        setup
            .events
            .put_rule()
            .name(&rule)
            .event_pattern(r#"{"source":["leadflow"]}"#)
            .send()
            .await
            .expect("PutRule on the default bus");
        setup
            .events
            .put_targets()
            .rule(&rule)
            .targets(aws_sdk_eventbridge::types::Target::builder().id("tap").arn(arn).build().expect("target"))
            .send()
            .await
            .expect("PutTargets");
        Self { rule, queue_url, seen: Mutex::new(Vec::new()) }
    }

    /// Every event for `lead` delivered so far: reads the tap queue until at least `at_least`
    /// are there and one more receive finds nothing new.
    pub(crate) async fn events_for(&self, sqs: &aws_sdk_sqs::Client, lead: LeadId, at_least: usize) -> Vec<Value> {
        let until = deadline();
        let lead = lead.to_string();
        let ours = |seen: &[Value]| -> Vec<Value> {
            seen.iter().filter(|e| e["detail"]["lead_id"].as_str() == Some(lead.as_str())).cloned().collect()
        };
        loop {
            let out = sqs
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(10)
                .wait_time_seconds(1)
                .send()
                .await
                .expect("ReceiveMessage (events)");
            let messages = out.messages.unwrap_or_default();
            for m in &messages {
                let envelope: Value = serde_json::from_str(m.body().unwrap_or_default()).expect("an event envelope");
                self.seen.lock().expect("seen").push(envelope);
                if let Some(handle) = m.receipt_handle() {
                    sqs.delete_message()
                        .queue_url(&self.queue_url)
                        .receipt_handle(handle)
                        .send()
                        .await
                        .expect("delete");
                }
            }
            let found = ours(&self.seen.lock().expect("seen"));
            if found.len() >= at_least && messages.is_empty() {
                return found;
            }
            assert!(Instant::now() < until, "{} event(s) for lead {lead}, expected {at_least}", found.len());
        }
    }
}

/// A message as moto's SES recorded it.
pub(crate) struct SentEmail {
    pub(crate) destinations: Vec<String>,
    pub(crate) subject: String,
    pub(crate) text: String,
    pub(crate) html: String,
}

impl SentEmail {
    pub(crate) fn from_moto(m: &Value) -> Self {
        let raw = m["raw_data"].as_str().expect("raw_data: the assignment email is sent as raw MIME");
        let parsed = mail_parser::MessageParser::default().parse(raw.as_bytes()).expect("a MIME message");
        Self {
            destinations: m["destinations"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|d| d.as_str().map(str::to_string))
                .collect(),
            subject: parsed.subject().unwrap_or_default().to_string(),
            text: parsed.body_text(0).map(|t| t.into_owned()).unwrap_or_default(),
            html: parsed.body_html(0).map(|t| t.into_owned()).unwrap_or_default(),
        }
    }
}
