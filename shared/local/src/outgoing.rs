//! Emails and events sent inside a unit of work leave with its writes. Committing the unit before
//! each one (so that nothing went out about a write a crash could still undo) cost a commit per
//! email and event: with two emails and an event a lead, route committed about three times a lead
//! and those commits were a seventh of the stack's CPU (docs/performance.md, section 2).
//!
//! Instead, a sender inside a unit prepares what it sends (an email's file under a pending name,
//! an event's line) and records a parcel in the unit's transaction. Once the unit is committed its
//! parcels are delivered: the email's file linked into place, the lines appended. A crash before
//! the commit undoes the parcel with the writes, and its pending file is deleted at the next
//! start; a crash after it leaves the parcel in the file, delivered at the next start. Delivering
//! twice is harmless: a file is linked only where none is, and events are at least once anyway.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use rusqlite::params;

use crate::db::{Db, DbError};
use crate::error::LocalError;

/// What leaves once the unit that recorded it is committed.
#[derive(Debug)]
pub(crate) enum Parcel {
    /// An email written to `pending`, to be linked to `place`.
    File { pending: PathBuf, place: PathBuf },
    /// Whole lines to append to `file`.
    Lines { file: PathBuf, lines: Vec<u8> },
}

const FILE: &str = "file";
const LINES: &str = "lines";

impl Db {
    /// Records `parcel` in this thread's unit of work: an error if the thread has none (the
    /// caller sends at once then, see [`Db::in_unit`]).
    pub(crate) fn hold(&self, parcel: &Parcel) -> Result<(), DbError> {
        let (kind, target, body) = match parcel {
            Parcel::File { pending, place } => (FILE, self.relative(place), self.relative(pending).into_bytes()),
            Parcel::Lines { file, lines } => (LINES, self.relative(file), lines.clone()),
        };
        self.write(|c| {
            c.prepare_cached("INSERT INTO outgoing (kind, target, body) VALUES (?1, ?2, ?3)")?
                .execute(params![kind, target, body])?;
            Ok(())
        })
    }

    /// Delivers every committed parcel and forgets it; answers how many were delivered. Called
    /// once a unit has ended, and on start for those a crash left. A parcel that cannot be
    /// delivered now stays for the next call.
    pub(crate) fn deliver_parcels(&self) -> Result<usize, LocalError> {
        let rows: Vec<(i64, String, String, Vec<u8>)> = self
            .read(|c| {
                let mut statement = c.prepare_cached("SELECT id, kind, target, body FROM outgoing ORDER BY id")?;
                let rows = statement.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
                Ok(rows.collect::<Result<Vec<_>, _>>()?)
            })
            .map_err(|e| self.local_error(e))?;
        if rows.is_empty() {
            return Ok(0);
        }
        let mut delivered = Vec::with_capacity(rows.len());
        let mut first_failure = None;
        for (id, kind, target, body) in rows {
            let parcel = match kind.as_str() {
                FILE => Parcel::File {
                    pending: self.absolute(&String::from_utf8_lossy(&body)),
                    place: self.absolute(&target),
                },
                _ => Parcel::Lines { file: self.absolute(&target), lines: body },
            };
            match deliver(&parcel) {
                Ok(()) => delivered.push(id),
                Err(e) => {
                    first_failure.get_or_insert(e);
                }
            }
        }
        self.write(|c| {
            let mut forget = c.prepare_cached("DELETE FROM outgoing WHERE id = ?1")?;
            for id in &delivered {
                forget.execute([id])?;
            }
            Ok(())
        })
        .map_err(|e| self.local_error(e))?;
        match first_failure {
            None => Ok(delivered.len()),
            Some(e) => Err(e),
        }
    }

    /// The pending files of parcels not yet delivered, for a sender cleaning its folder on start.
    pub(crate) fn pending_files(&self) -> Result<Vec<PathBuf>, LocalError> {
        self.read(|c| {
            let mut statement = c.prepare_cached("SELECT body FROM outgoing WHERE kind = ?1")?;
            let rows = statement.query_map([FILE], |r| r.get::<_, Vec<u8>>(0))?;
            let mut files = Vec::new();
            for body in rows {
                files.push(self.absolute(&String::from_utf8_lossy(&body?)));
            }
            Ok(files)
        })
        .map_err(|e| self.local_error(e))
    }

    /// Paths inside the data file's folder are kept relative to it, so a folder moved after a
    /// crash still delivers what it holds.
    fn relative(&self, path: &Path) -> String {
        let folder = self.path().parent().unwrap_or(Path::new(""));
        match path.strip_prefix(folder) {
            Ok(inside) if !folder.as_os_str().is_empty() => inside.to_string_lossy().into_owned(),
            _ => path.to_string_lossy().into_owned(),
        }
    }

    fn absolute(&self, stored: &str) -> PathBuf {
        // Joining an absolute path gives that path.
        self.path().parent().unwrap_or(Path::new("")).join(stored)
    }
}

fn deliver(parcel: &Parcel) -> Result<(), LocalError> {
    match parcel {
        Parcel::File { pending, place } => {
            match place_file(pending, place) {
                Ok(()) => {}
                // Already delivered by a run that crashed before forgetting the parcel, or the
                // lead was erased meanwhile (erasure deletes pending files too): nothing to place.
                Err(e) if e.kind() == io::ErrorKind::NotFound && !pending.exists() => {}
                Err(source) => return Err(LocalError::Io { action: "place the email", path: place.clone(), source }),
            }
            match std::fs::remove_file(pending) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
                Err(source) => {
                    Err(LocalError::Io { action: "delete the pending email", path: pending.clone(), source })
                }
            }
        }
        Parcel::Lines { file, lines } => {
            let io = |source| LocalError::Io { action: "append to the events file", path: file.clone(), source };
            let mut out = std::fs::OpenOptions::new().create(true).append(true).open(file).map_err(io)?;
            // One write of whole lines in append mode, as the bus itself writes.
            out.write_all(lines).map_err(io)
        }
    }
}

/// Links `pending` to `place` unless something is there already: a link, unlike a rename, never
/// replaces a file, so an email sent before under the same key stands.
pub(crate) fn place_file(pending: &Path, place: &Path) -> io::Result<()> {
    match std::fs::hard_link(pending, place) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(e),
        // File systems without hard links: a rename is still atomic, only not exclusive.
        Err(_) => std::fs::rename(pending, place),
    }
}
