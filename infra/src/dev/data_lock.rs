//! One local stack per data folder. A second stack on the same SQLite file would take the
//! first one's in-flight messages back at start (`recover_in_flight`) and release its email
//! claims, so leads would be handled and emails sent twice; it is refused instead.
//!
//! The lock is the operating system's file lock (`flock` on Unix, `LockFileEx` on Windows) on
//! `leadflow.lock` in the folder, held for as long as the stack runs. The kernel drops it when
//! the process ends, however it ends (a `kill -9` included), so a crash never leaves a stale
//! lock to clear by hand. The file stays; it only holds the pid of the last stack that ran.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use tracing::warn;

/// The lock file's name in the data folder.
pub const LOCK_FILE: &str = "leadflow.lock";

/// The folder's lock; dropping it (the stack shut down) lets another stack start there.
#[derive(Debug)]
pub struct DataLock {
    _file: File,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "the data folder {} is in use by another local stack{}; stop that one first, or give this one a folder of its own with --data-dir",
        .dir.display(),
        .pid.map(|p| format!(" (pid {p})")).unwrap_or_default()
    )]
    Busy { dir: PathBuf, pid: Option<u32> },
    #[error("cannot lock the data folder {} ({}): {source}", .dir.display(), LOCK_FILE)]
    Io { dir: PathBuf, source: std::io::Error },
}

/// Locks `dir` for this process, or says which process has it.
pub fn lock(dir: &Path) -> Result<DataLock, LockError> {
    let io = |source| LockError::Io { dir: dir.to_path_buf(), source };
    // Not truncated on open: until this process holds the lock, the file names the one that does.
    let mut file =
        OpenOptions::new().read(true).write(true).create(true).truncate(false).open(dir.join(LOCK_FILE)).map_err(io)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let mut text = String::new();
            // Empty for a moment after the holder took the lock, unreadable on Windows: no pid then.
            let pid = file.read_to_string(&mut text).ok().and_then(|_| text.trim().parse().ok());
            return Err(LockError::Busy { dir: dir.to_path_buf(), pid });
        }
        Err(TryLockError::Error(e)) => return Err(io(e)),
    }
    // The pid is only for the message a second stack prints: the lock holds without it.
    let written = file.set_len(0).and_then(|()| file.rewind()).and_then(|()| writeln!(file, "{}", std::process::id()));
    if let Err(e) = written {
        warn!(error = %e, "cannot write the pid into the data folder's lock file");
    }
    Ok(DataLock { _file: file })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_the_folder_is_refused_with_the_holder_s_pid_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().expect("temp dir");
        let first = lock(dir.path()).expect("the first lock");
        // flock locks belong to the open file, so a second open in this process is refused too.
        match lock(dir.path()) {
            Err(LockError::Busy { dir: named, pid }) => {
                assert_eq!(named, dir.path());
                assert_eq!(pid, Some(std::process::id()));
            }
            other => panic!("expected Busy, got {other:?}"),
        }
        drop(first);
        assert!(lock(dir.path()).is_ok(), "free again once the holder is gone");
    }

    #[test]
    fn the_message_names_the_folder_and_the_pid() {
        let e = LockError::Busy { dir: PathBuf::from("/tmp/x"), pid: Some(42) };
        assert_eq!(
            e.to_string(),
            "the data folder /tmp/x is in use by another local stack (pid 42); stop that one first, or give this one a folder of its own with --data-dir"
        );
        let e = LockError::Busy { dir: PathBuf::from("/tmp/x"), pid: None };
        assert!(e.to_string().starts_with("the data folder /tmp/x is in use by another local stack; "));
    }
}
