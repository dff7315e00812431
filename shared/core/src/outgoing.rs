//! An email as the domain renders it, ready for a mailer adapter to turn into MIME. Its own
//! module, below everything that renders emails (campaigns, templates, confirmations) and the
//! ports that send them, so none of those needs another to name an email.

use serde::{Deserialize, Serialize};

/// Which kind of email: marketing emails carry unsubscribe headers, transactional ones do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EmailCategory {
    Transactional,
    Marketing,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mailbox {
    pub name: Option<String>,
    pub email: String,
}

/// A rendered email, ready to be turned into MIME by an adapter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutgoingEmail {
    /// Names the send: an adapter that can deduplicate (the outbox) does so by this key.
    pub key: String,
    pub category: EmailCategory,
    pub from: Mailbox,
    pub to: Mailbox,
    pub subject: String,
    pub text: String,
    pub html: String,
    /// Extra headers, e.g. `List-Unsubscribe`.
    pub headers: Vec<(String, String)>,
    /// Tags the provider hands back with delivery, bounce, open and click events (SES
    /// `EmailTags`): `lead_id` and `email` (this email's key). Values are `[A-Za-z0-9_-]`.
    #[serde(default)]
    pub tags: Vec<(String, String)>,
}
