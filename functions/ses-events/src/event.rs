//! The events SES publishes for the configuration set, as EventBridge delivers them:
//!
//! ```json
//! { "version": "0", "id": "…", "source": "aws.ses", "detail-type": "Email Bounced",
//!   "time": "…", "detail": { "eventType": "Bounce", "mail": { … }, "bounce": { … } } }
//! ```
//!
//! `detail` is the SES event record (the same record SES publishes to SNS or Firehose); a bare
//! record, without the EventBridge envelope, is accepted too, so the local stack can feed one
//! directly. Only what Leadflow acts on is read: bounces, complaints, deliveries, opens and
//! clicks. Other types (sends, rejects, delivery delays, rendering failures, subscriptions) and
//! other sources are ignored.
//!
//! The records hold email addresses, so no error message here repeats a value of the event.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use leadflow_core::model::LeadId;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// The tag every Leadflow email carries with the id of the lead it is about.
pub const LEAD_ID_TAG: &str = "lead_id";
/// The tag every Leadflow email carries with its key (`drip-…`, `assignment-…`).
pub const EMAIL_TAG: &str = "email";

/// The email an event is about (`mail` of the record).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    /// SES's message id, as the send answered it.
    pub message_id: String,
    /// When SES accepted the email.
    pub sent_at: Option<DateTime<Utc>>,
    /// The envelope recipients.
    pub destination: Vec<String>,
    /// The message tags: SES's own (`ses:…`) and ours (`lead_id`, `email`).
    pub tags: BTreeMap<String, Vec<String>>,
}

impl Mail {
    /// The first non-empty value of a tag.
    pub fn tag(&self, name: &str) -> Option<&str> {
        self.tags.get(name)?.iter().map(|v| v.trim()).find(|v| !v.is_empty())
    }

    /// The lead the email was sent about, when it carries a `lead_id` tag that is a lead id.
    pub fn lead_id(&self) -> Option<LeadId> {
        self.tag(LEAD_ID_TAG)?.parse().ok()
    }

    /// The email's key (`drip-<lead>-<campaign>-v<version>-<step>`,
    /// `assignment-<lead>-<rep>-<assigned at, ms>`).
    pub fn email_key(&self) -> Option<&str> {
        self.tag(EMAIL_TAG)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum BounceType {
    /// The address does not exist or refuses mail for good (a hard bounce).
    Permanent,
    /// Mailbox full, message too large, … : a later email may arrive (a soft bounce).
    Transient,
    /// SES could not tell.
    Undetermined,
}

/// An SES event Leadflow acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SesEvent {
    Bounce { mail: Mail, bounce_type: BounceType, recipients: Vec<String>, at: DateTime<Utc> },
    Complaint { mail: Mail, recipients: Vec<String>, at: DateTime<Utc> },
    Delivery { mail: Mail, recipients: Vec<String>, at: DateTime<Utc> },
    Open { mail: Mail, at: DateTime<Utc> },
    Click { mail: Mail, link: Option<String>, at: DateTime<Utc> },
}

impl SesEvent {
    pub fn mail(&self) -> &Mail {
        match self {
            SesEvent::Bounce { mail, .. }
            | SesEvent::Complaint { mail, .. }
            | SesEvent::Delivery { mail, .. }
            | SesEvent::Open { mail, .. }
            | SesEvent::Click { mail, .. } => mail,
        }
    }

    /// When it happened (the bounce, the open, …), not when the email was sent.
    pub fn at(&self) -> DateTime<Utc> {
        match self {
            SesEvent::Bounce { at, .. }
            | SesEvent::Complaint { at, .. }
            | SesEvent::Delivery { at, .. }
            | SesEvent::Open { at, .. }
            | SesEvent::Click { at, .. } => *at,
        }
    }

    /// A short name for logs and activity ids: `bounce`, `complaint`, `delivery`, `open`, `click`.
    pub fn name(&self) -> &'static str {
        match self {
            SesEvent::Bounce { .. } => "bounce",
            SesEvent::Complaint { .. } => "complaint",
            SesEvent::Delivery { .. } => "delivery",
            SesEvent::Open { .. } => "open",
            SesEvent::Click { .. } => "click",
        }
    }
}

/// What an incoming event is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    Event(SesEvent),
    /// Not an event Leadflow acts on, and why (for the log).
    Ignored(String),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error("the event is not a JSON object")]
    NotAnObject,
    #[error("the event is neither an EventBridge event with a `detail` nor an SES event record")]
    UnknownShape,
    #[error("the SES event is malformed: {0}")]
    Malformed(String),
}

/// Reads an incoming event. Events of other types or sources are `Parsed::Ignored`; an SES
/// event of a type Leadflow acts on but without what that type must carry is an error.
pub fn parse(event: &Value) -> Result<Parsed, EventError> {
    let object = event.as_object().ok_or(EventError::NotAnObject)?;
    let (record, detail_type, envelope_time) = match object.get("detail") {
        Some(detail) => {
            if let Some(source) = object.get("source").and_then(Value::as_str)
                && source != "aws.ses"
            {
                return Ok(Parsed::Ignored(format!("the event comes from {}, not SES", shorten(source))));
            }
            if !detail.is_object() {
                return Err(EventError::Malformed("`detail` is not an object".into()));
            }
            let envelope: Envelope = from_value(event, "the EventBridge envelope")?;
            (detail, envelope.detail_type, envelope.time)
        }
        None if object.contains_key("mail") => (event, None, None),
        None => return Err(EventError::UnknownShape),
    };
    let header: RecordHeader = from_value(record, "the event record")?;
    let event_type = match (header.event_type.or(header.notification_type), detail_type) {
        (Some(event_type), _) => event_type,
        (None, Some(detail_type)) => match type_of_detail_type(&detail_type) {
            Some(event_type) => event_type.to_string(),
            None => return Ok(Parsed::Ignored(format!("`{}` events are not used", shorten(&detail_type)))),
        },
        (None, None) => return Err(EventError::Malformed("the record has no `eventType`".into())),
    };
    let kind = match event_type.as_str() {
        "Bounce" => Kind::Bounce,
        "Complaint" => Kind::Complaint,
        "Delivery" => Kind::Delivery,
        "Open" => Kind::Open,
        "Click" => Kind::Click,
        other => return Ok(Parsed::Ignored(format!("SES `{}` events are not used", shorten(other)))),
    };
    let record: Record = from_value(record, "the event record")?;
    let mail = record.mail.ok_or_else(|| EventError::Malformed("the record has no `mail`".into()))?;
    let mail = mail.into_mail()?;
    // The event's own time, else EventBridge's, else the send's: it names the fact in activity
    // ids, so it must be there.
    let at = |own: Option<DateTime<Utc>>| {
        own.or(envelope_time).or(mail.sent_at).ok_or_else(|| EventError::Malformed("the event has no timestamp".into()))
    };
    let missing = |field: &str| EventError::Malformed(format!("a {event_type} record has no `{field}`"));
    let event = match kind {
        Kind::Bounce => {
            let bounce = record.bounce.ok_or_else(|| missing("bounce"))?;
            let recipients = addresses(bounce.bounced_recipients, &mail);
            SesEvent::Bounce { at: at(bounce.timestamp)?, bounce_type: bounce.bounce_type, recipients, mail }
        }
        Kind::Complaint => {
            let complaint = record.complaint.ok_or_else(|| missing("complaint"))?;
            let recipients = addresses(complaint.complained_recipients, &mail);
            SesEvent::Complaint { at: at(complaint.timestamp)?, recipients, mail }
        }
        Kind::Delivery => {
            let delivery = record.delivery.unwrap_or_default();
            let mut recipients: Vec<String> =
                delivery.recipients.into_iter().filter(|r| !r.trim().is_empty()).collect();
            if recipients.is_empty() {
                recipients.clone_from(&mail.destination);
            }
            SesEvent::Delivery { at: at(delivery.timestamp)?, recipients, mail }
        }
        Kind::Open => {
            let open = record.open.ok_or_else(|| missing("open"))?;
            SesEvent::Open { at: at(open.timestamp)?, mail }
        }
        Kind::Click => {
            let click = record.click.ok_or_else(|| missing("click"))?;
            let link = click.link.filter(|l| !l.trim().is_empty());
            SesEvent::Click { at: at(click.timestamp)?, link, mail }
        }
    };
    Ok(Parsed::Event(event))
}

enum Kind {
    Bounce,
    Complaint,
    Delivery,
    Open,
    Click,
}

/// The record type an EventBridge `detail-type` stands for, for records without `eventType`.
fn type_of_detail_type(detail_type: &str) -> Option<&'static str> {
    Some(match detail_type {
        "Email Bounced" => "Bounce",
        "Email Complaint Received" => "Complaint",
        "Email Delivered" => "Delivery",
        "Email Opened" => "Open",
        "Email Clicked" => "Click",
        _ => return None,
    })
}

/// At most 64 characters of a value from the event, for messages about what it is.
fn shorten(text: &str) -> String {
    text.chars().take(64).collect()
}

/// Deserializes with an error message that names the problem but repeats no quoted value (serde
/// quotes the string it could not use, and strings here are addresses).
fn from_value<T: DeserializeOwned>(value: &Value, what: &str) -> Result<T, EventError> {
    T::deserialize(value).map_err(|e| EventError::Malformed(format!("{what}: {}", redact_quoted(&e.to_string()))))
}

fn redact_quoted(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut quoted = false;
    for c in message.chars() {
        if c == '"' {
            if quoted {
                out.push_str("…\"");
            } else {
                out.push('"');
            }
            quoted = !quoted;
        } else if !quoted {
            out.push(c);
        }
    }
    if quoted {
        out.push_str("…\"");
    }
    out
}

/// The recipients named in a bounce or complaint, else the email's recipients.
fn addresses(recipients: Vec<Recipient>, mail: &Mail) -> Vec<String> {
    let named: Vec<String> =
        recipients.into_iter().filter_map(|r| r.email_address).filter(|a| !a.trim().is_empty()).collect();
    if named.is_empty() { mail.destination.clone() } else { named }
}

#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "detail-type", default)]
    detail_type: Option<String>,
    #[serde(default)]
    time: Option<DateTime<Utc>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RecordHeader {
    #[serde(default)]
    event_type: Option<String>,
    /// The field's name in identity feedback notifications (no configuration set).
    #[serde(default)]
    notification_type: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Record {
    #[serde(default)]
    mail: Option<RawMail>,
    #[serde(default)]
    bounce: Option<RawBounce>,
    #[serde(default)]
    complaint: Option<RawComplaint>,
    #[serde(default)]
    delivery: Option<RawDelivery>,
    #[serde(default)]
    open: Option<RawStamp>,
    #[serde(default)]
    click: Option<RawClick>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawMail {
    #[serde(default)]
    message_id: Option<String>,
    #[serde(default)]
    timestamp: Option<DateTime<Utc>>,
    #[serde(default)]
    destination: Vec<String>,
    /// `{ "name": ["value", …] }`; read leniently (a lone string is one value), since a tag we
    /// cannot read must not make the whole event unusable.
    #[serde(default)]
    tags: BTreeMap<String, Value>,
}

impl RawMail {
    fn into_mail(self) -> Result<Mail, EventError> {
        let message_id = self
            .message_id
            .map(|m| m.trim().to_string())
            .filter(|m| !m.is_empty())
            .ok_or_else(|| EventError::Malformed("the record's `mail` has no `messageId`".into()))?;
        let tags = self
            .tags
            .into_iter()
            .map(|(name, value)| {
                let values = match value {
                    Value::String(s) => vec![s],
                    Value::Array(items) => items.into_iter().filter_map(|v| v.as_str().map(str::to_string)).collect(),
                    _ => Vec::new(),
                };
                (name, values)
            })
            .collect();
        Ok(Mail { message_id, sent_at: self.timestamp, destination: self.destination, tags })
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Recipient {
    #[serde(default)]
    email_address: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawBounce {
    bounce_type: BounceType,
    #[serde(default)]
    bounced_recipients: Vec<Recipient>,
    #[serde(default)]
    timestamp: Option<DateTime<Utc>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawComplaint {
    #[serde(default)]
    complained_recipients: Vec<Recipient>,
    #[serde(default)]
    timestamp: Option<DateTime<Utc>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct RawDelivery {
    #[serde(default)]
    recipients: Vec<String>,
    #[serde(default)]
    timestamp: Option<DateTime<Utc>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawStamp {
    #[serde(default)]
    timestamp: Option<DateTime<Utc>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawClick {
    #[serde(default)]
    link: Option<String>,
    #[serde(default)]
    timestamp: Option<DateTime<Utc>>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn error_messages_repeat_no_quoted_value() {
        let event = json!({
            "source": "aws.ses", "detail-type": "Email Bounced",
            "detail": { "eventType": "Bounce", "mail": { "messageId": "m", "destination": "ada@example.com" },
                        "bounce": { "bounceType": "Permanent" } }
        });
        let err = parse(&event).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("malformed"), "{err}");
        assert!(!err.contains("ada@example.com"), "{err}");
    }

    #[test]
    fn redaction() {
        assert_eq!(redact_quoted(r#"invalid type: string "a@b.c", expected a sequence"#), {
            r#"invalid type: string "…", expected a sequence"#
        });
        assert_eq!(redact_quoted(r#"cut "a@b"#), r#"cut "…""#);
    }
}
