//! The mailer over SES v2, sending raw MIME (text + HTML alternatives and our own headers,
//! `List-Unsubscribe` among them).
//!
//! What SES's refusals mean for the send (`mail_error`): only `MessageRejected` (SES refused
//! this one message) is final, [`MailError::Rejected`], and the caller records the email as
//! done. Every other refusal is about the account or the deployment, not the message (the
//! account is suspended, sending is paused, the MAIL FROM domain lapsed, the configuration set
//! is gone), so it is [`MailError::Unavailable`], with what an operator must fix: the claim is
//! given back, route's message is delivered again and after the queue's receives lands in its
//! dead-letter queue, and nurture retries the step on every later tick. Once the account is fixed,
//! a redrive of the dead-letter queue sends every email that was held up; recording them as
//! done would have skipped each assignment email and drip for good. `BadRequest` is retried
//! too: SES does not say whether the request or this message is at fault, and a message that is
//! bad for good then ends in the dead-letter queue, where an operator sees it, instead of being
//! skipped without a trace. Throttling stays [`MailError::Throttled`]. The messages carry SES's
//! error code and its message with every address taken out (SES quotes them).

use aws_sdk_sesv2::Client;
use aws_sdk_sesv2::error::SdkError;
use aws_sdk_sesv2::operation::send_email::SendEmailError;
use aws_sdk_sesv2::primitives::Blob;
use aws_sdk_sesv2::types::{Destination, EmailContent, MessageTag, RawMessage};
use chrono::{DateTime, Utc};
use leadflow_core::email::to_mime;
use leadflow_core::error::MailError;
use leadflow_core::ports::{EmailCategory, Mailer, OutgoingEmail};
use sha2::{Digest, Sha256};

use crate::store::{describe_sdk_error, redact};

const MESSAGE_ID_DOMAIN: &str = "leadflow";
/// Longer keys are shortened and made unique with a digest, keeping the header line short.
const MAX_ID_LEFT: usize = 120;

#[derive(Debug, Clone)]
pub struct SesMailer {
    client: Client,
    configuration_set: Option<String>,
}

impl SesMailer {
    pub fn new(client: Client, configuration_set: Option<String>) -> Self {
        Self { client, configuration_set }
    }

    /// The `Message-ID` (without angle brackets) an email with this key is sent with.
    pub fn message_id_for(key: &str) -> String {
        format!("{}@{MESSAGE_ID_DOMAIN}", message_id_left(key))
    }

    /// The account's maximum send rate in this region, emails a second (SES `GetAccount`,
    /// `SendQuota.MaxSendRate`), for pacing sends below it. An error says why it is unknown.
    pub async fn max_send_rate(&self) -> Result<f64, MailError> {
        let unknown = |why: String| MailError::Unavailable(format!("the SES account's send rate: {why}"));
        let account = self.client.get_account().send().await.map_err(|e| unknown(describe_sdk_error(&e)))?;
        account
            .send_quota()
            .map(|quota| quota.max_send_rate())
            .filter(|rate| rate.is_finite() && *rate > 0.0)
            .ok_or_else(|| unknown("SES answered without a usable maximum".into()))
    }
}

/// The key as the left part of a Message-ID: letters, digits, `-` and `_` stay, every other byte
/// becomes `=XX` (all RFC 5322 atext), so distinct keys give distinct ids.
fn message_id_left(key: &str) -> String {
    if key.is_empty() {
        return "=".to_string();
    }
    let mut left = String::with_capacity(key.len());
    for b in key.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
            left.push(char::from(b));
        } else {
            left.push_str(&format!("={b:02X}"));
        }
    }
    if left.len() > MAX_ID_LEFT {
        // `~` never appears in an encoded key, so a shortened id cannot equal a full one.
        let digest = hex::encode(Sha256::digest(key.as_bytes()));
        left.truncate(MAX_ID_LEFT - digest.len() - 1);
        left.push('~');
        left.push_str(&digest);
    }
    left
}

fn category_tag(category: EmailCategory) -> &'static str {
    match category {
        EmailCategory::Transactional => "transactional",
        EmailCategory::Marketing => "marketing",
    }
}

/// The most characters SES takes in a tag name or value.
const MAX_TAG_LEN: usize = 256;
/// Tag names SES reserves for itself.
const RESERVED_TAG_PREFIX: &str = "ses:";

/// The SES `EmailTags` of a send: `category`, then the email's own tags (`lead_id`, `email`),
/// which SES hands back on every delivery, bounce, complaint, open and click event. SES refuses
/// the whole send for a tag outside `[A-Za-z0-9_-]` (up to 256 characters), so other
/// characters become `_` and longer tags are cut; a repeated name, an empty one or one SES
/// reserves (`ses:`) is dropped, the first occurrence winning.
fn message_tags(email: &OutgoingEmail) -> Vec<(String, String)> {
    let clean = |text: &str| -> String {
        text.chars()
            .take(MAX_TAG_LEN)
            .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' })
            .collect()
    };
    let mut tags: Vec<(String, String)> = vec![("category".into(), category_tag(email.category).into())];
    for (name, value) in &email.tags {
        if name.is_empty() || name.starts_with(RESERVED_TAG_PREFIX) {
            continue;
        }
        let name = clean(name);
        if tags.iter().any(|(known, _)| *known == name) {
            continue;
        }
        tags.push((name, clean(value)));
    }
    tags
}

/// SES errors by what the caller should do (see the module doc); the messages are redacted,
/// since SES quotes addresses in them.
fn mail_error(key: &str, configuration_set: Option<&str>, err: &SdkError<SendEmailError>) -> MailError {
    let said = describe_sdk_error(err);
    let what = format!("email {key}: {said}");
    let Some(service) = err.as_service_error() else {
        return MailError::Unavailable(what);
    };
    // What an operator must fix before the held-up emails can go out.
    let fix = |problem: &str| MailError::Unavailable(format!("email {key}: {problem} ({said})"));
    match service {
        SendEmailError::MessageRejected(_) => MailError::Rejected(what),
        SendEmailError::TooManyRequestsException(_) | SendEmailError::LimitExceededException(_) => {
            MailError::Throttled(what)
        }
        SendEmailError::AccountSuspendedException(_) => {
            fix("the SES account is suspended; emails are held until AWS reinstates it")
        }
        SendEmailError::SendingPausedException(_) => {
            fix("sending is paused for the SES account or its configuration set; resume it")
        }
        SendEmailError::MailFromDomainNotVerifiedException(_) => {
            fix("the MAIL FROM domain is not verified; fix its DNS records in SES")
        }
        SendEmailError::NotFoundException(_) => match configuration_set {
            Some(set) => fix(&format!("the configuration set {set} does not exist in SES")),
            None => fix("an SES resource the send names does not exist"),
        },
        SendEmailError::BadRequestException(_) => {
            fix("SES called the request bad; check the sender address and the configuration set")
        }
        // Throttling that reaches us outside the modelled exceptions (the SDK retried it already).
        other if matches!(other.meta().code(), Some("Throttling" | "ThrottlingException")) => {
            MailError::Throttled(what)
        }
        _ => MailError::Unavailable(what),
    }
}

impl Mailer for SesMailer {
    async fn send(&self, email: &OutgoingEmail, now: DateTime<Utc>) -> Result<String, MailError> {
        let message_id = Self::message_id_for(&email.key);
        let mime = to_mime(email, &message_id, now);
        if mime.is_empty() {
            return Err(MailError::Unavailable(format!("email {}: could not be built as MIME", email.key)));
        }
        let built = |e: aws_sdk_sesv2::error::BuildError| {
            MailError::Unavailable(format!(
                "email {}: the request could not be built: {}",
                email.key,
                redact(&e.to_string())
            ))
        };
        // Raw content rather than Simple: it keeps both parts and our headers as built.
        let raw = RawMessage::builder().data(Blob::new(mime)).build().map_err(built)?;
        let mut tags = Vec::with_capacity(email.tags.len() + 1);
        for (name, value) in message_tags(email) {
            tags.push(MessageTag::builder().name(name).value(value).build().map_err(built)?);
        }
        let out = self
            .client
            .send_email()
            .from_email_address(&email.from.email)
            .destination(Destination::builder().to_addresses(&email.to.email).build())
            .content(EmailContent::builder().raw(raw).build())
            .set_configuration_set_name(self.configuration_set.clone())
            .set_email_tags(Some(tags))
            .send()
            .await
            .map_err(|e| mail_error(&email.key, self.configuration_set.as_deref(), &e))?;
        out.message_id
            .ok_or_else(|| MailError::Unavailable(format!("email {}: SES answered without a message id", email.key)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids_are_atext_and_injective() {
        assert_eq!(SesMailer::message_id_for("assignment-01J-rep_1"), "assignment-01J-rep_1@leadflow");
        assert_eq!(SesMailer::message_id_for("a b"), "a=20b@leadflow");
        assert_ne!(SesMailer::message_id_for("a/b"), SesMailer::message_id_for("a=2Fb"));
        let long = SesMailer::message_id_for(&"k".repeat(500));
        assert!(long.len() <= MAX_ID_LEFT + 1 + MESSAGE_ID_DOMAIN.len(), "{long}");
    }

    #[test]
    fn tags_are_the_category_and_the_emails_own_in_the_characters_ses_takes() {
        let email = OutgoingEmail {
            key: "drip-1".into(),
            category: EmailCategory::Marketing,
            from: leadflow_core::ports::Mailbox { name: None, email: "a@b.c".into() },
            to: leadflow_core::ports::Mailbox { name: None, email: "d@e.f".into() },
            subject: String::new(),
            text: String::new(),
            html: String::new(),
            headers: Vec::new(),
            tags: vec![
                ("lead_id".into(), "01J0ABC".into()),
                ("email".into(), "drip-01J0ABC-welcome:0".into()),
                ("category".into(), "sneaky".into()),
                ("ses:configuration-set".into(), "x".into()),
                ("lead_id".into(), "again".into()),
                ("long".into(), "v".repeat(300)),
            ],
        };
        let tags = message_tags(&email);
        let names: Vec<&str> = tags.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["category", "lead_id", "email", "long"]);
        assert_eq!(tags[0].1, "marketing");
        assert_eq!(tags[1].1, "01J0ABC");
        assert_eq!(tags[2].1, "drip-01J0ABC-welcome_0");
        assert_eq!(tags[3].1.len(), MAX_TAG_LEN);
    }
}
