//! Moving a campaign's enrolled leads to its latest version on purpose: a use case the JSON API
//! and the console share, so it lives here rather than in either.

use leadflow_core::error::StoreError;
use leadflow_core::model::{ActivityKind, EnrollmentState};
use leadflow_core::ports::{Clock, Ports, WriteOutcome};

use crate::{StageError, activity, live};
use leadflow_core::ports::Enrollments;

/// What a migration did: moved to `to_version`, kept on their own version (their next step has
/// no counterpart in the latest), changed by the scheduler while being moved (run it again).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Migration {
    pub to_version: u32,
    pub migrated: u64,
    pub kept: u64,
    pub changed: u64,
}

/// Why nothing was moved.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error("no campaign has this id")]
    NotFound,
    /// `from_version` is not older than the latest version.
    #[error("must be a version older than the latest, {latest}")]
    NotOlder { latest: u32 },
    #[error(transparent)]
    Store(#[from] StoreError),
    /// An older version the leads are on cannot be read or compiled.
    #[error(transparent)]
    Version(StageError),
}

/// Moves the active enrollments of campaign `id`'s older versions (only `from_version`'s, when
/// given) to the latest version. Each continues at the step of the same id, due when it was
/// due; a lead whose next step has no counterpart in the latest version finishes its own
/// version, and is counted as kept.
pub async fn migrate_enrollments<P: Ports>(
    ports: &P,
    id: &str,
    from_version: Option<u32>,
) -> Result<Migration, MigrateError> {
    let store = ports.store();
    let config = live::refresh(ports, true).await;
    let latest = config.campaign(id).cloned().ok_or(MigrateError::NotFound)?;
    let to = latest.campaign.version;
    if from_version.is_some_and(|v| v == 0 || v >= to) {
        return Err(MigrateError::NotOlder { latest: to });
    }
    let mut done = Migration { to_version: to, ..Migration::default() };
    let mut cursor = None;
    loop {
        let page = store.campaign_enrollments(id, cursor, 500).await?;
        for e in page.enrollments {
            let wanted = from_version.is_none_or(|v| v == e.campaign_version);
            if e.state != EnrollmentState::Active || e.campaign_version >= to || !wanted {
                continue;
            }
            let from =
                live::campaign_version(ports, &config, id, e.campaign_version).await.map_err(MigrateError::Version)?;
            let Some(moved) = from.and_then(|from| latest.migrate(&e, &from)) else {
                done.kept += 1;
                continue;
            };
            let enrolled = activity(
                e.lead_id,
                format!("enrolled-{id}-v{to}"),
                ports.clock().now(),
                ActivityKind::Enrolled { campaign_id: id.to_string(), version: to },
            );
            match store.update_enrollment(&moved, e.version, &[enrolled]).await? {
                WriteOutcome::Written => done.migrated += 1,
                // The scheduler moved it on meanwhile; running the migration again takes it.
                WriteOutcome::VersionConflict => done.changed += 1,
            }
        }
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    Ok(done)
}
