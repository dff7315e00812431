//! An `Idempotency-Key` (or `submission_id`) is bound to the submission it first came with.
//!
//! A retry — the same key with the same fields — is answered with the first submission's lead
//! id and changes nothing. The same key with other fields is another submission, perhaps
//! another person's on a page that reuses its key: it is refused with `409
//! idempotency_key_reused` rather than answered as a duplicate and dropped.
//!
//! The store binds a key to a lead id and nothing else, so the binding is two keys: the client's
//! key, and the key together with the fields' fingerprint, each bound to the lead id of the
//! first submission that had it. Same fields: both name the same lead. Other fields: the
//! fingerprint's key names a lead the client's key does not.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use leadflow_core::model::LeadId;
use leadflow_core::ports::{IdempotencyClaim, LeadStore};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use leadflow_app::api_error::ApiError;

use crate::unavailable;

/// What makes a submission the same one: its fields but the key itself (capture has taken a
/// CAPTCHA's token out already; a retry carries a new one). Taken before the fields move into
/// the submission.
pub fn fingerprint(key: &str, fields: &Map<String, Value>) -> String {
    let kept: BTreeMap<&String, &Value> = fields.iter().filter(|(name, _)| name.as_str() != "submission_id").collect();
    let mut hash = Sha256::new();
    hash.update(b"leadflow-submission-v1\0");
    hash.update(key.as_bytes());
    hash.update(b"\0");
    // Keys in order and values as parsed, so the same fields are the same text however a client
    // orders or spaces them. Serializing a map of JSON values cannot fail.
    hash.update(serde_json::to_vec(&kept).unwrap_or_default());
    hex::encode(hash.finalize())
}

/// The lead id a submission with `key` (already hashed) goes under: `lead_id` when the key is
/// new, the first submission's when this is a retry; an error when the key came with other
/// fields before. `fingerprint` is [`fingerprint`] of the key and the submission's fields.
pub async fn claim<S: LeadStore>(
    store: &S,
    key: &str,
    fingerprint: String,
    lead_id: LeadId,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> Result<LeadId, ApiError> {
    let bind = |k: String, id: LeadId| async move {
        match store.claim_idempotency_key(&k, id, now, expires_at).await {
            Ok(IdempotencyClaim::Claimed) => Ok(id),
            Ok(IdempotencyClaim::Seen(first)) => Ok(first),
            Err(e) => Err(unavailable(e.to_string())),
        }
    };
    // The fields' binding first: if the process dies between the two, the retry finds it and
    // the client's key still free, and goes on as the first attempt would have.
    let with_these_fields = bind(fingerprint, lead_id).await?;
    let with_this_key = bind(key.to_string(), with_these_fields).await?;
    if with_this_key == with_these_fields {
        Ok(with_this_key)
    } else {
        Err(ApiError::conflict(
            "idempotency_key_reused",
            "This idempotency key was used for a submission with other fields. Send each new submission with a \
             new key; a retry sends the same fields with the same key.",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(text: &str) -> Map<String, Value> {
        serde_json::from_str(text).unwrap_or_default()
    }

    #[test]
    fn the_fingerprint_is_of_the_fields_not_their_spelling() {
        let a = fingerprint("k", &fields(r#"{"email":"a@x.io","first_name":"A"}"#));
        let b = fingerprint("k", &fields(r#"{ "first_name": "A", "email": "a@x.io", "submission_id": "k" }"#));
        assert_eq!(a, b);
        assert_ne!(a, fingerprint("k", &fields(r#"{"email":"a@x.io","first_name":"B"}"#)));
        assert_ne!(a, fingerprint("j", &fields(r#"{"email":"a@x.io","first_name":"A"}"#)), "per key");
    }
}
