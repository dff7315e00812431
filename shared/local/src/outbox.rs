//! The local mailer: every email becomes an RFC 5322 file in an outbox folder, where a mail
//! client can open it and tests can parse it.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Utc};
use leadflow_core::email::to_mime;
use leadflow_core::error::MailError;
use leadflow_core::ports::{Mailer, OutgoingEmail};
use sha2::{Digest, Sha256};

use crate::error::LocalError;

const MESSAGE_ID_DOMAIN: &str = "leadflow.local";

/// Beyond this the stem is shortened and made unique with a hash, so that names stay within
/// every file system's 255-byte limit with room for the temporary-file decoration.
const MAX_STEM: usize = 160;

/// Writes `<outbox>/<key>.eml`. One file per email key: sending a key a second time writes
/// nothing and answers the same message id, so retried sends are harmless.
#[derive(Debug)]
pub struct OutboxMailer {
    dir: PathBuf,
    temp_seq: AtomicU64,
}

impl OutboxMailer {
    /// Uses the folder `dir`, creating it if need be.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, LocalError> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir).map_err(|source| LocalError::Io {
            action: "create the outbox folder",
            path: dir.clone(),
            source,
        })?;
        Ok(Self { dir, temp_seq: AtomicU64::new(0) })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the email with this key is (or would be) written.
    pub fn path_for(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{}.eml", file_stem(key)))
    }

    /// The message id an email with this key is sent with (without the angle brackets, as the
    /// `Message-ID` header's content is usually quoted and as mail parsers return it).
    pub fn message_id_for(key: &str) -> String {
        format!("{}@{MESSAGE_ID_DOMAIN}", file_stem(key))
    }

    fn send_now(&self, email: &OutgoingEmail, now: DateTime<Utc>) -> Result<String, MailError> {
        let stem = file_stem(&email.key);
        let message_id = format!("{stem}@{MESSAGE_ID_DOMAIN}");
        let path = self.dir.join(format!("{stem}.eml"));
        if path.try_exists().map_err(|e| unavailable("look for", &path, &e))? {
            return Ok(message_id);
        }
        let mime = to_mime(email, &message_id, now);
        if mime.is_empty() {
            return Err(MailError::Unavailable(format!("the email {} could not be built as MIME", email.key)));
        }
        // Written aside and then linked into place, so a reader never sees half a message.
        let seq = self.temp_seq.fetch_add(1, Ordering::Relaxed);
        let temp = self.dir.join(format!(".{stem}.{}.{seq}.tmp", std::process::id()));
        std::fs::write(&temp, &mime).map_err(|e| unavailable("write", &temp, &e))?;
        let placed = match std::fs::hard_link(&temp, &path) {
            // A link, unlike a rename, never replaces an existing file: if a concurrent send of
            // the same key got there first, its file stands and so does the answer.
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
            // File systems without hard links: a rename is still atomic, only not exclusive.
            Err(_) => std::fs::rename(&temp, &path).map_err(|e| unavailable("move into place", &path, &e)),
        };
        // Only a leftover temporary file if this fails; the message itself is in place or not.
        let _ = std::fs::remove_file(&temp);
        placed.map(|()| message_id)
    }
}

fn unavailable(action: &str, path: &Path, e: &io::Error) -> MailError {
    MailError::Unavailable(format!("cannot {action} {}: {e}", path.display()))
}

/// A file name (and message-id left part) for an email key that is injective: letters, digits,
/// `-` and `_` stay, every other byte becomes `%XX`, so distinct keys never share a file.
fn file_stem(key: &str) -> String {
    if key.is_empty() {
        // No encoded key is a lone `%`.
        return "%".to_string();
    }
    let mut stem = String::with_capacity(key.len());
    for b in key.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
            stem.push(char::from(b));
        } else {
            stem.push_str(&format!("%{b:02X}"));
        }
    }
    if stem.len() > MAX_STEM {
        // `~` never appears in an encoded key, so a shortened name cannot equal a full one.
        let digest = hex::encode(Sha256::digest(key.as_bytes()));
        stem.truncate(MAX_STEM - digest.len() - 1);
        stem.push('~');
        stem.push_str(&digest);
    }
    stem
}

impl Mailer for OutboxMailer {
    async fn send(&self, email: &OutgoingEmail, now: DateTime<Utc>) -> Result<String, MailError> {
        self.send_now(email, now)
    }
}

#[cfg(test)]
mod tests {
    use super::file_stem;

    #[test]
    fn stems_are_safe_and_distinct() {
        assert_eq!(
            file_stem("assignment-01ARZ3NDEKTSV4RRFFQ69G5FAV-rep_1"),
            "assignment-01ARZ3NDEKTSV4RRFFQ69G5FAV-rep_1"
        );
        assert_eq!(file_stem("../etc/passwd"), "%2E%2E%2Fetc%2Fpasswd");
        assert_ne!(file_stem("a/b"), file_stem("a%2Fb"));
        assert_ne!(file_stem(""), file_stem("%"));
        let long_a = "x".repeat(500) + "a";
        let long_b = "x".repeat(500) + "b";
        assert!(file_stem(&long_a).len() <= super::MAX_STEM);
        assert_ne!(file_stem(&long_a), file_stem(&long_b));
    }
}
