use std::path::PathBuf;

/// Failures of the embedded adapters, worded for the person running the local stack.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error("cannot open the data file {}: {source}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error(
        "the data file {} was written by a newer Leadflow (schema version {found}, this build knows up to {known}); use a newer build or another file",
        path.display()
    )]
    NewerSchema { path: PathBuf, found: i64, known: i64 },
    #[error("the data file {} failed: {source}", path.display())]
    Database {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("the data file {} is unusable in this process after an earlier crash; restart Leadflow", path.display())]
    Poisoned { path: PathBuf },
    #[error("a batch's writes to the data file {} could not be committed; the batch is handled again", path.display())]
    UnitLost { path: PathBuf },
    #[error("the data file {} holds an unreadable item: {what}", path.display())]
    Corrupt { path: PathBuf, what: String },
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}
