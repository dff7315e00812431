//! Unsubscribe tokens: the lead id, signed with HMAC-SHA256 under a secret only the deployment
//! knows, so a link cannot be forged or altered to unsubscribe someone else. A token never
//! expires: an unsubscribe link in a years-old email must still work (CAN-SPAM, RFC 8058).

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::model::LeadId;

type HmacSha256 = Hmac<Sha256>;

/// Bytes of the MAC kept in the token: 128 bits is beyond guessing and keeps links short.
const MAC_BYTES: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the unsubscribe link is malformed")]
    Malformed,
    #[error("the unsubscribe link's signature does not match")]
    BadSignature,
    #[error("no unsubscribe secret is configured")]
    NoSecret,
}

fn mac(secret: &str, lead_id: LeadId) -> Result<HmacSha256, TokenError> {
    if secret.is_empty() {
        return Err(TokenError::NoSecret);
    }
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).map_err(|_| TokenError::NoSecret)?;
    mac.update(b"leadflow-unsubscribe-v1:");
    mac.update(lead_id.to_string().as_bytes());
    Ok(mac)
}

/// `<lead id>.<hex MAC>`: URL-safe as it is.
pub fn sign(secret: &str, lead_id: LeadId) -> Result<String, TokenError> {
    let tag = mac(secret, lead_id)?.finalize().into_bytes();
    Ok(format!("{lead_id}.{}", hex::encode(&tag[..MAC_BYTES])))
}

/// The lead a token was signed for; the comparison takes the same time wherever it differs.
pub fn verify(secret: &str, token: &str) -> Result<LeadId, TokenError> {
    let (id, tag) = token.split_once('.').ok_or(TokenError::Malformed)?;
    let lead_id: LeadId = id.parse().map_err(|_| TokenError::Malformed)?;
    let tag = hex::decode(tag).map_err(|_| TokenError::Malformed)?;
    if tag.len() != MAC_BYTES {
        return Err(TokenError::Malformed);
    }
    mac(secret, lead_id)?.verify_truncated_left(&tag).map_err(|_| TokenError::BadSignature)?;
    Ok(lead_id)
}
