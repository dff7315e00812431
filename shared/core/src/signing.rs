//! The deployment's signing keys: every link and cookie Leadflow signs (unsubscribe links, the
//! sales actions in assignment emails, console sessions and CSRF tokens) is an HMAC-SHA256 under
//! one of them, each with a purpose of its own so that no value can pass for another kind.
//!
//! A deployment keeps several keys so the key can be rotated without breaking links already in
//! people's mailboxes: new values are signed with the *current* key, and a value is accepted
//! under any key still listed. Unsubscribe tokens name their key (`<lead>.<key id>.<MAC>`), so
//! they are checked against that key alone; values from before key ids existed, and the
//! short-lived ones (sessions, sales links), are tried against every key.
//!
//! On AWS the keys are one Secrets Manager secret (see `docs/signing-keys.md`), read as JSON:
//! `{"current": "2", "1": "<old secret>", "2": "<new secret>"}`.

use std::collections::BTreeMap;
use std::fmt;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The shortest secret a key may have, in characters.
pub const MIN_SECRET_LEN: usize = 32;
/// The longest key id: ids travel in every unsubscribe link.
pub const MAX_KEY_ID_LEN: usize = 16;
/// The id of the one key of a deployment configured with a single secret, and of the secret
/// carried over from before rotation existed.
pub const SINGLE_KEY_ID: &str = "0";
/// A ring larger than this is a mistake in the secret, not a rotation: each key is tried in turn
/// for values that do not name theirs.
pub const MAX_KEYS: usize = 8;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeysError {
    #[error("the signing keys are not a JSON object: {0}")]
    NotJson(String),
    #[error("the signing keys name no \"current\" key")]
    NoCurrent,
    #[error("the current key \"{0}\" is not among the signing keys")]
    CurrentMissing(String),
    #[error("key id \"{0}\" must be 1 to {MAX_KEY_ID_LEN} letters, digits, '-' or '_'")]
    BadKeyId(String),
    #[error("the secret of key \"{0}\" is not a string of at least {MIN_SECRET_LEN} characters")]
    ShortSecret(String),
    #[error("more than {MAX_KEYS} signing keys: remove retired ones")]
    TooMany,
}

/// Why a signature was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("no signing key is configured")]
    NoKey,
    #[error("the signature does not match")]
    Mismatch,
}

/// The keys a deployment signs with. Secrets never show in `Debug` output (ids do).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SigningKeys {
    current: String,
    keys: BTreeMap<String, String>,
}

impl fmt::Debug for SigningKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKeys")
            .field("current", &self.current)
            .field("ids", &self.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// A link's MAC as it is written (lowercase hex of `len` bytes), or `None`. Uppercase is refused:
/// every signed link has one spelling, so no two texts stand for the same link (hex would read
/// either case).
pub fn decode_tag(text: &str, len: usize) -> Option<Vec<u8>> {
    if text.bytes().any(|b| b.is_ascii_uppercase()) {
        return None;
    }
    hex::decode(text).ok().filter(|tag| tag.len() == len)
}

pub fn key_id_is_valid(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_KEY_ID_LEN
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl SigningKeys {
    /// One key with id [`SINGLE_KEY_ID`]; an empty secret gives no key at all (nothing can be
    /// signed, nothing verifies). No length check: the local stack makes its own long secret,
    /// and tests use short ones.
    pub fn single(secret: impl Into<String>) -> Self {
        let secret = secret.into();
        if secret.is_empty() {
            return Self::default();
        }
        Self { current: SINGLE_KEY_ID.to_string(), keys: BTreeMap::from([(SINGLE_KEY_ID.to_string(), secret)]) }
    }

    /// Reads `{"current": "<id>", "<id>": "<secret>", ...}`. Every secret must be at least
    /// [`MIN_SECRET_LEN`] characters. Messages name key ids, never secrets.
    pub fn from_json(text: &str) -> Result<Self, KeysError> {
        let value: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| KeysError::NotJson(format!("line {}, column {}", e.line(), e.column())))?;
        let serde_json::Value::Object(map) = value else {
            return Err(KeysError::NotJson("not an object".into()));
        };
        let current = match map.get("current") {
            Some(serde_json::Value::String(id)) => id.clone(),
            _ => return Err(KeysError::NoCurrent),
        };
        let mut keys = BTreeMap::new();
        for (id, secret) in map.into_iter().filter(|(id, _)| id != "current") {
            if !key_id_is_valid(&id) {
                return Err(KeysError::BadKeyId(id));
            }
            match secret {
                serde_json::Value::String(s) if s.chars().count() >= MIN_SECRET_LEN => {
                    keys.insert(id, s);
                }
                _ => return Err(KeysError::ShortSecret(id)),
            }
        }
        if keys.len() > MAX_KEYS {
            return Err(KeysError::TooMany);
        }
        if !keys.contains_key(&current) {
            return Err(KeysError::CurrentMissing(current));
        }
        Ok(Self { current, keys })
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The id new values are signed under, if any key is configured.
    pub fn current_id(&self) -> Option<&str> {
        (!self.keys.is_empty()).then_some(self.current.as_str())
    }

    /// The ids of every key a value is accepted under.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.keys.keys().map(String::as_str)
    }

    fn mac_with(secret: &str, purpose: &[u8], message: &[u8]) -> HmacSha256 {
        // HMAC takes a key of any length; the error branch of `new_from_slice` cannot happen.
        let mut mac = <HmacSha256 as KeyInit>::new_from_slice(secret.as_bytes())
            .unwrap_or_else(|_| <HmacSha256 as KeyInit>::new(&Default::default()));
        mac.update(purpose);
        mac.update(message);
        mac
    }

    /// The current key's id and the MAC of `message` for `purpose`, truncated to `len` bytes.
    pub fn sign(&self, purpose: &[u8], message: &[u8], len: usize) -> Result<(&str, Vec<u8>), SignatureError> {
        let id = self.current_id().ok_or(SignatureError::NoKey)?;
        let secret = self.keys.get(id).ok_or(SignatureError::NoKey)?;
        let tag = Self::mac_with(secret, purpose, message).finalize().into_bytes();
        Ok((id, tag[..len.min(tag.len())].to_vec()))
    }

    /// Whether `tag` is the MAC of `message` for `purpose` under the key `id` names, or, with no
    /// id, under any key. Each comparison takes the same time wherever the tags differ.
    pub fn verify(&self, id: Option<&str>, purpose: &[u8], message: &[u8], tag: &[u8]) -> Result<(), SignatureError> {
        if self.keys.is_empty() {
            return Err(SignatureError::NoKey);
        }
        let matches = |secret: &String| Self::mac_with(secret, purpose, message).verify_truncated_left(tag).is_ok();
        let ok = match id {
            Some(id) => self.keys.get(id).is_some_and(matches),
            None => self.keys.values().any(matches),
        };
        if ok { Ok(()) } else { Err(SignatureError::Mismatch) }
    }
}

impl From<&str> for SigningKeys {
    fn from(secret: &str) -> Self {
        Self::single(secret)
    }
}

impl From<String> for SigningKeys {
    fn from(secret: String) -> Self {
        Self::single(secret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    fn ring(current: &str) -> SigningKeys {
        SigningKeys::from_json(&format!(r#"{{"current":"{current}","1":"{A}","2":"{B}"}}"#)).unwrap_or_default()
    }

    #[test]
    fn a_tag_is_read_only_as_written_lowercase_and_of_its_length() {
        assert_eq!(decode_tag("00ff", 2), Some(vec![0, 255]));
        for refused in ["00FF", "00fF", "00ff00", "00f", "", "zz00"] {
            assert_eq!(decode_tag(refused, 2), None, "{refused:?}");
        }
    }

    #[test]
    fn a_value_signed_before_a_rotation_still_verifies_after_it() {
        let before = ring("1");
        let (id, tag) = before.sign(b"p", b"m", 16).unwrap_or_default();
        assert_eq!(id, "1");
        let after = ring("2");
        assert_eq!(after.verify(Some("1"), b"p", b"m", &tag), Ok(()));
        assert_eq!(after.verify(None, b"p", b"m", &tag), Ok(()));
        assert_eq!(after.sign(b"p", b"m", 16).map(|(id, _)| id.to_string()), Ok("2".to_string()));
    }

    #[test]
    fn a_named_key_is_the_only_one_tried_and_purposes_do_not_mix() {
        let keys = ring("2");
        let (_, tag) = keys.sign(b"p", b"m", 16).unwrap_or_default();
        assert_eq!(keys.verify(Some("1"), b"p", b"m", &tag), Err(SignatureError::Mismatch));
        assert_eq!(keys.verify(Some("9"), b"p", b"m", &tag), Err(SignatureError::Mismatch));
        assert_eq!(keys.verify(Some("2"), b"q", b"m", &tag), Err(SignatureError::Mismatch));
        assert_eq!(SigningKeys::default().verify(None, b"p", b"m", &tag), Err(SignatureError::NoKey));
    }

    #[test]
    fn malformed_rings_are_refused_naming_ids_never_secrets() {
        let cases = [
            ("[]", KeysError::NotJson("not an object".into())),
            (r#"{"1":"x"}"#, KeysError::NoCurrent),
            (&format!(r#"{{"current":"3","1":"{A}"}}"#), KeysError::CurrentMissing("3".into())),
            (r#"{"current":"1","1":"short"}"#, KeysError::ShortSecret("1".into())),
            (&format!(r#"{{"current":"a b","a b":"{A}"}}"#), KeysError::BadKeyId("a b".into())),
        ];
        for (text, want) in cases {
            assert_eq!(SigningKeys::from_json(text), Err(want.clone()), "{text}");
            assert!(!want.to_string().contains("short"));
        }
        assert!(!format!("{:?}", ring("1")).contains(A));
    }
}
