//! Unsubscribe tokens: the lead id, signed with HMAC-SHA256 under a secret only the deployment
//! knows, so a link cannot be forged or altered to unsubscribe someone else. A token never
//! expires: an unsubscribe link in a years-old email must still work (CAN-SPAM, RFC 8058), so
//! a token names the key it was signed with and stays valid while that key is kept.

use crate::model::LeadId;
use crate::signing::{SignatureError, SigningKeys, decode_tag, key_id_is_valid};

/// Bytes of the MAC kept in the token: 128 bits is beyond guessing and keeps links short.
const MAC_BYTES: usize = 16;
const PURPOSE: &[u8] = b"leadflow-unsubscribe-v1:";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the unsubscribe link is malformed")]
    Malformed,
    #[error("the unsubscribe link's signature does not match")]
    BadSignature,
    #[error("no unsubscribe secret is configured")]
    NoSecret,
}

impl From<SignatureError> for TokenError {
    fn from(e: SignatureError) -> Self {
        match e {
            SignatureError::NoKey => Self::NoSecret,
            SignatureError::Mismatch => Self::BadSignature,
        }
    }
}

/// `<lead id>.<key id>.<hex MAC>`: URL-safe as it is. The key id lets the link outlive a
/// rotation of the signing key (see [`crate::signing`]).
pub fn sign(keys: &SigningKeys, lead_id: LeadId) -> Result<String, TokenError> {
    let (key_id, tag) = keys.sign(PURPOSE, lead_id.to_string().as_bytes(), MAC_BYTES)?;
    Ok(format!("{lead_id}.{key_id}.{}", hex::encode(tag)))
}

/// A token's parts: the lead, the key it names (none in tokens from before key ids) and the MAC.
fn parts(token: &str) -> Option<(LeadId, Option<&str>, Vec<u8>)> {
    let mut it = token.split('.');
    let (lead, key_id, tag) = match (it.next(), it.next(), it.next(), it.next()) {
        (Some(lead), Some(tag), None, None) => (lead, None, tag),
        (Some(lead), Some(key_id), Some(tag), None) if key_id_is_valid(key_id) => (lead, Some(key_id), tag),
        _ => return None,
    };
    let lead_id = lead.parse().ok()?;
    let tag = decode_tag(tag, MAC_BYTES)?;
    Some((lead_id, key_id, tag))
}

/// Whether `token` has the shape [`sign`] gives (or gave, before key ids), signed or not.
pub fn is_token_shaped(token: &str) -> bool {
    parts(token).is_some()
}

/// The lead a token was signed for; the comparison takes the same time wherever it differs.
pub fn verify(keys: &SigningKeys, token: &str) -> Result<LeadId, TokenError> {
    let (lead_id, key_id, tag) = parts(token).ok_or(TokenError::Malformed)?;
    keys.verify(key_id, PURPOSE, lead_id.to_string().as_bytes(), &tag)?;
    Ok(lead_id)
}
