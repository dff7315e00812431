//! The local mailer: every email becomes an RFC 5322 file in an outbox folder, where a mail
//! client can open it and tests can parse it.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Utc};
use leadflow_core::email::to_mime;
use leadflow_core::error::MailError;
use leadflow_core::model::LeadId;
use leadflow_core::ports::{Mailer, OutgoingEmail};
use sha2::{Digest, Sha256};

use crate::error::LocalError;
use crate::outgoing::{Parcel, place_file};
use crate::store::SqliteStore;
use crate::unit_of_work::JoinsUnits;

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
    units: JoinsUnits,
}

impl OutboxMailer {
    /// Uses the folder `dir`, creating it if need be, and deletes the temporary files a killed
    /// predecessor left half-written there (only names this mailer writes). The folder is the
    /// process's own, like its data file: no other process writes to it meanwhile.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, LocalError> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir).map_err(|source| LocalError::Io {
            action: "create the outbox folder",
            path: dir.clone(),
            source,
        })?;
        remove_leftovers(&dir, is_temp_file_name)?;
        Ok(Self { dir, temp_seq: AtomicU64::new(0), units: JoinsUnits::default() })
    }

    /// An email sent inside a [`UnitOfWork`](crate::UnitOfWork) of `store`'s leaves with the
    /// unit's writes, once they are committed. First delivers what a crash left undelivered, then
    /// deletes the pending files of emails whose writes a crash undid.
    pub fn joins_units_of(self, store: &SqliteStore) -> Result<Self, LocalError> {
        let units = JoinsUnits::of(store)?;
        let kept = units.db().map(|db| db.pending_files()).transpose()?.unwrap_or_default();
        remove_leftovers(&self.dir, |name| is_pending_file_name(name) && !kept.iter().any(|k| k.ends_with(name)))?;
        Ok(Self { units, ..self })
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
        let seq = self.temp_seq.fetch_add(1, Ordering::Relaxed);
        if self.units.in_unit().map_err(MailError::Unavailable)? {
            // Linked into place once the unit's writes are committed.
            let pending = self.dir.join(format!(".{stem}.{}.{seq}.{PENDING}", std::process::id()));
            std::fs::write(&pending, &mime).map_err(|e| unavailable("write", &pending, &e))?;
            let held = self.units.hold(&Parcel::File { pending: pending.clone(), place: path });
            if held.is_err() {
                let _ = std::fs::remove_file(&pending);
            }
            return held.map(|()| message_id).map_err(MailError::Unavailable);
        }
        // Written aside and then linked into place, so a reader never sees half a message.
        let temp = self.dir.join(format!(".{stem}.{}.{seq}.{TEMP}", std::process::id()));
        std::fs::write(&temp, &mime).map_err(|e| unavailable("write", &temp, &e))?;
        // If a concurrent send of the same key got there first, its file stands and so does the
        // answer.
        let placed = place_file(&temp, &path).map_err(|e| unavailable("move into place", &path, &e));
        // Only a leftover temporary file if this fails; the message itself is in place or not.
        let _ = std::fs::remove_file(&temp);
        placed.map(|()| message_id)
    }

    /// Erasure: deletes every email file (and leftover temporary file) whose key contains the
    /// lead id, which the keys of all emails about a lead do (`assignment-<lead id>-<rep>`,
    /// `drip-<lead id>-…`); answers how many files were deleted. The outbox keeps no index: the
    /// file names are the keys.
    pub fn erase_lead(&self, lead_id: LeadId) -> Result<usize, MailError> {
        let needle = lead_id.to_string();
        let entries = std::fs::read_dir(&self.dir).map_err(|e| unavailable("list", &self.dir, &e))?;
        let mut deleted = 0;
        for entry in entries {
            let entry = entry.map_err(|e| unavailable("list", &self.dir, &e))?;
            let name = entry.file_name();
            let Some(stem) = name.to_str().and_then(stem_of_file_name) else {
                continue;
            };
            let path = entry.path();
            if !names_lead(stem, &path, &needle)? {
                continue;
            }
            match std::fs::remove_file(&path) {
                Ok(()) => deleted += 1,
                // Gone already (a concurrent erasure, a temporary file moved on).
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(unavailable("delete", &path, &e)),
            }
        }
        Ok(deleted)
    }
}

/// The last part of a temporary file's name: written aside, linked into place at once.
const TEMP: &str = "tmp";
/// The last part of a pending file's name: an email sent inside a unit of work, linked into
/// place once the unit's writes are committed.
const PENDING: &str = "pending";

/// Deletes every file in `dir` whose name `is_leftover`; answers how many.
fn remove_leftovers(dir: &Path, is_leftover: impl Fn(&str) -> bool) -> Result<usize, LocalError> {
    let io = |action, path: &Path, source| LocalError::Io { action, path: path.to_path_buf(), source };
    let mut removed = 0;
    for entry in std::fs::read_dir(dir).map_err(|e| io("list the outbox folder", dir, e))? {
        let entry = entry.map_err(|e| io("list the outbox folder", dir, e))?;
        let name = entry.file_name();
        if !name.to_str().is_some_and(&is_leftover) {
            continue;
        }
        let path = entry.path();
        match std::fs::remove_file(&path) {
            Ok(()) => removed += 1,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io("delete a leftover temporary file", &path, e)),
        }
    }
    Ok(removed)
}

/// Whether `name` is a temporary file this mailer writes: `.<stem>.<pid>.<seq>.tmp`, a write
/// that never got linked into place, so an email that was not sent (its send is retried and
/// writes a whole file).
fn is_temp_file_name(name: &str) -> bool {
    is_aside(name, TEMP)
}

/// Whether `name` is a pending file this mailer writes: `.<stem>.<pid>.<seq>.pending`.
fn is_pending_file_name(name: &str) -> bool {
    is_aside(name, PENDING)
}

fn is_aside(name: &str, last: &str) -> bool {
    let Some(inner) = name.strip_prefix('.') else {
        return false;
    };
    let mut parts = inner.split('.');
    let (Some(stem), Some(pid), Some(seq), Some(end), None) =
        (parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let number = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    end == last && stem_of_file_name(&format!("{stem}.eml")).is_some() && number(pid) && number(seq)
}

/// The stem of a file the outbox writes: `<stem>.eml`, or the temporary or pending
/// `.<stem>.<pid>.<seq>.tmp|pending`. Stems hold no `.` (it is encoded), so anything else is not
/// the outbox's.
fn stem_of_file_name(name: &str) -> Option<&str> {
    let stem = match name.strip_prefix('.') {
        Some(aside) => {
            let inner = aside.strip_suffix(TEMP).or_else(|| aside.strip_suffix(PENDING))?.strip_suffix('.')?;
            inner.split('.').next()?
        }
        None => name.strip_suffix(".eml")?,
    };
    (!stem.is_empty() && !stem.contains('.')).then_some(stem)
}

/// Whether the email filed under `stem` is about the lead whose id is `needle`: its key contains
/// the id. A shortened stem keeps only the key's beginning; when the id is not there, the file
/// itself is searched for it.
fn names_lead(stem: &str, path: &Path, needle: &str) -> Result<bool, MailError> {
    let (kept, shortened) = match stem.split_once('~') {
        Some((kept, _digest)) => (kept, true),
        None => (stem, false),
    };
    if key_of_stem(kept).contains(needle) {
        return Ok(true);
    }
    if !shortened {
        return Ok(false);
    }
    match std::fs::read(path) {
        Ok(bytes) => Ok(bytes.windows(needle.len()).any(|w| w == needle.as_bytes())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(unavailable("read", path, &e)),
    }
}

/// The key (or, of a shortened stem, the beginning of the key) a stem encodes: the inverse of
/// [`file_stem`]. An escape cut short by shortening stays as it is.
fn key_of_stem(stem: &str) -> String {
    let bytes = stem.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = bytes
            .get(i + 1..i + 3)
            .filter(|_| bytes[i] == b'%')
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(b) => {
                out.push(b);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
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

    async fn erase(&self, lead_id: LeadId) -> Result<usize, MailError> {
        self.erase_lead(lead_id)
    }
}

#[cfg(test)]
mod tests {
    use super::{file_stem, is_pending_file_name, is_temp_file_name, key_of_stem, stem_of_file_name};

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

    #[test]
    fn stems_decode_back_to_their_keys() {
        for key in ["assignment-01ARZ3NDEKTSV4RRFFQ69G5FAV-rep_1", "../etc/passwd", "a%2Fb", "%", "é ~.x"] {
            assert_eq!(key_of_stem(&file_stem(key)), key);
        }
        // A shortened stem decodes to the key's beginning, an escape cut in half kept as it is.
        assert_eq!(key_of_stem("ab%2"), "ab%2");
    }

    #[test]
    fn file_names_of_the_outbox_give_their_stems_and_others_none() {
        assert_eq!(stem_of_file_name("drip-X-welcome-v1-0.eml"), Some("drip-X-welcome-v1-0"));
        assert_eq!(stem_of_file_name(".drip-X-welcome-v1-0.4242.7.tmp"), Some("drip-X-welcome-v1-0"));
        assert_eq!(stem_of_file_name(".drip-X-welcome-v1-0.4242.7.pending"), Some("drip-X-welcome-v1-0"));
        assert_eq!(stem_of_file_name("notes.txt"), None);
        assert_eq!(stem_of_file_name("a.b.eml"), None);
        assert_eq!(stem_of_file_name(".eml"), None);
    }

    #[test]
    fn only_the_mailers_own_temporary_names_count_as_temporary() {
        assert!(is_temp_file_name(".assignment-01ARZ3NDEKTSV4RRFFQ69G5FAV-ben.4242.0.tmp"));
        assert!(is_temp_file_name(".drip-X-welcome-v1-0.1.17.tmp"));
        assert!(is_pending_file_name(".drip-X-welcome-v1-0.1.17.pending"));
        assert!(!is_temp_file_name(".drip-X-welcome-v1-0.1.17.pending"));
        assert!(!is_pending_file_name(".drip-X-welcome-v1-0.1.17.tmp"));
        for other in [
            "assignment-01ARZ3NDEKTSV4RRFFQ69G5FAV-ben.eml",
            ".notes.tmp",
            ".notes.x.1.tmp",
            ".stem.1.tmp",
            ".stem.1.2.3.tmp",
            ".stem.pid.1.tmp",
            "stem.1.2.tmp",
            ".a.b.1.2.tmp",
        ] {
            assert!(!is_temp_file_name(other), "{other}");
        }
    }
}
