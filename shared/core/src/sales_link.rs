//! One-click sales actions in the assignment email ("I've contacted them", "Not a fit"): a link
//! that names the lead, the rep it was sent to, the action and when it expires, signed with
//! HMAC-SHA256 so that it can be neither forged nor altered into another lead, rep or action.
//!
//! The link is a credential on its own (a rep on a phone is not signed in), so it is narrow: one
//! lead, one rep, one action, a few days. Opening it changes nothing; the page it shows posts
//! the action.

use chrono::{DateTime, Duration, Utc};

use crate::model::{LeadId, RepId, SalesStatus};
use crate::signing::{SignatureError, SigningKeys, decode_tag};

/// Bytes of the MAC kept in the token: 128 bits is beyond guessing and keeps links short.
const MAC_BYTES: usize = 16;

/// How long an emailed action stays usable: long enough for a rep back from a long weekend.
pub const VALID_FOR: Duration = Duration::days(7);

/// What a link does to its lead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SalesAction {
    /// "I've contacted them": the SLA clock stops.
    Contacted,
    /// "Not a fit": the lead is lost, its nurture ends.
    NotAFit,
}

impl SalesAction {
    pub fn as_str(self) -> &'static str {
        match self {
            SalesAction::Contacted => "contacted",
            SalesAction::NotAFit => "not-a-fit",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "contacted" => Some(SalesAction::Contacted),
            "not-a-fit" => Some(SalesAction::NotAFit),
            _ => None,
        }
    }

    /// The status the action marks the lead with.
    pub fn status(self) -> SalesStatus {
        match self {
            SalesAction::Contacted => SalesStatus::Contacted,
            SalesAction::NotAFit => SalesStatus::Lost,
        }
    }
}

/// What a verified link says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SalesLink {
    pub lead_id: LeadId,
    pub rep_id: RepId,
    pub action: SalesAction,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    #[error("the link is malformed")]
    Malformed,
    #[error("the link's signature does not match")]
    BadSignature,
    #[error("the link expired")]
    Expired,
    #[error("no secret is configured to sign links with")]
    NoSecret,
}

// Another purpose than the unsubscribe tokens signed with the same keys: neither can pass for
// the other.
const PURPOSE: &[u8] = b"leadflow-sales-action-v1:";

impl From<SignatureError> for LinkError {
    fn from(e: SignatureError) -> Self {
        match e {
            SignatureError::NoKey => Self::NoSecret,
            SignatureError::Mismatch => Self::BadSignature,
        }
    }
}

/// Rep ids go into the token as they are; these characters keep it one URL path segment with
/// `.` free as the separator.
fn rep_id_fits(rep_id: &str) -> bool {
    !rep_id.is_empty()
        && rep_id.len() <= 64
        && rep_id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// `<lead>.<rep>.<action>.<expiry, unix seconds>.<hex MAC>`: one URL path segment.
pub fn sign(keys: &SigningKeys, link: &SalesLink) -> Result<String, LinkError> {
    if !rep_id_fits(&link.rep_id) {
        return Err(LinkError::Malformed);
    }
    let message = format!("{}.{}.{}.{}", link.lead_id, link.rep_id, link.action.as_str(), link.expires_at.timestamp());
    let (_, tag) = keys.sign(PURPOSE, message.as_bytes(), MAC_BYTES)?;
    Ok(format!("{message}.{}", hex::encode(tag)))
}

/// What the token says, if it was signed with any of `keys` and has not expired by `now` (a
/// link lives for days, so one signed just before a key rotation is tried against every key). The
/// signature is checked before the expiry, so an altered link never reads as merely expired; the
/// comparison takes the same time wherever it differs.
pub fn verify(keys: &SigningKeys, token: &str, now: DateTime<Utc>) -> Result<SalesLink, LinkError> {
    let (message, tag) = token.rsplit_once('.').ok_or(LinkError::Malformed)?;
    let tag = decode_tag(tag, MAC_BYTES).ok_or(LinkError::Malformed)?;
    let mut parts = message.split('.');
    let (Some(lead), Some(rep), Some(action), Some(expiry), None) =
        (parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(LinkError::Malformed);
    };
    let lead_id: LeadId = lead.parse().map_err(|_| LinkError::Malformed)?;
    let action = SalesAction::parse(action).ok_or(LinkError::Malformed)?;
    let expiry: i64 = expiry.parse().map_err(|_| LinkError::Malformed)?;
    if !rep_id_fits(rep) {
        return Err(LinkError::Malformed);
    }
    keys.verify(None, PURPOSE, message.as_bytes(), &tag)?;
    let expires_at = DateTime::from_timestamp(expiry, 0).ok_or(LinkError::Malformed)?;
    if expires_at <= now {
        return Err(LinkError::Expired);
    }
    Ok(SalesLink { lead_id, rep_id: rep.to_string(), action, expires_at })
}
