//! From a submission to a lead: normalization, validation, enrichment, and merging a repeat
//! submission into the lead that has the same email.

use chrono::{DateTime, Utc};

use crate::error::FieldProblem;
use crate::model::{Lead, Submission};

#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ValidationSettings {
    /// Region used to read phone numbers written without a country code when the lead gave none.
    pub default_country: Option<String>,
}

/// Capture's synchronous checks, cheap enough to answer in the request: the email's syntax,
/// control characters and lengths. Every problem found, not just the first.
pub fn check_submission(sub: &Submission) -> Result<(), Vec<FieldProblem>> {
    let _ = sub;
    todo!("check_submission")
}

/// A new lead (version 0) from a submission. Problems that make it unusable make it invalid;
/// the others become warnings.
pub fn build_lead(sub: &Submission, settings: &ValidationSettings) -> Lead {
    let _ = (sub, settings);
    todo!("build_lead")
}

/// The existing lead with a repeat submission merged in.
pub fn merge_into(existing: &Lead, incoming: &Lead, now: DateTime<Utc>) -> Lead {
    let _ = (existing, incoming, now);
    todo!("merge_into")
}
