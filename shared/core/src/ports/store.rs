//! The lead store's port, cut into roles: each role trait is what one kind of use needs, and
//! [`LeadStore`] is all of them. Adapters implement each role in a file of that name.

use std::collections::BTreeMap;
use std::future::Future;

use chrono::{DateTime, Utc};

use crate::error::StoreError;
use crate::funnel::LeadFacts;
use crate::model::{Activity, Document, Enrollment, Lead, LeadId, RepId, Suppression, TeamCursor, TeamId};

/// The outcome of claiming an idempotency key at capture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdempotencyClaim {
    /// The key is new and now belongs to this lead id.
    Claimed,
    /// The key was seen before; this is the lead id it was answered with.
    Seen(LeadId),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreateOutcome {
    Created,
    /// The id is taken: by a lead (a redelivered submission), or by the alias a merge of that
    /// submission recorded ([`Leads::resolve_lead`] tells which lead it stands for).
    AlreadyExists,
    /// Another lead has this email: merge into it.
    EmailTaken(LeadId),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOutcome {
    Written,
    /// The stored version is not the one the write was based on: read again and redo.
    VersionConflict,
}

/// The outcome of claiming a side effect (an email, an event) before performing it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EffectClaim {
    /// Perform the effect, then call `finish_effect`.
    Claimed,
    /// It was done already; the detail recorded then (e.g. the message id).
    Done(String),
    /// Someone else holds a live claim: try again later.
    Busy,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AssignOutcome {
    Assigned,
    /// The lead or the team cursor moved on since they were read, or the claim's key is held.
    Conflict,
}

/// A side effect claimed in the same write as the change that calls for it, saving the
/// separate [`Effects::claim_effect`] request. Only a key nobody holds, in any state, can be
/// claimed so: the effect then goes on as after `claim_effect` answered `Claimed`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EffectLease {
    pub key: String,
    pub lease_until: DateTime<Utc>,
}

/// An assignment to commit atomically: the lead with its new owner (`lead.owner`), the team
/// cursor advanced, the owner's open-lead count incremented, and the trail entries that tell it.
#[derive(Debug, Clone)]
pub struct AssignmentWrite {
    pub lead: Lead,
    pub expected_lead_version: u64,
    pub team_cursor: Option<(TeamId, TeamCursor)>,
    /// Written in the same transaction as the assignment (see [`LeadStore`] on trails).
    pub trail: Vec<Activity>,
    /// The assignment email's claim, taken with the assignment.
    pub claim: Option<EffectLease>,
}

/// A page of [`Listings::list_leads`], [`Listings::open_leads_of`] or [`Listings::leads_before`].
#[derive(Debug, Clone, Default)]
pub struct LeadPage {
    pub leads: Vec<Lead>,
    /// Opaque; pass it back for the next page. `None`: this was the last page.
    pub next: Option<String>,
}

/// A page of [`Suppressions::suppressions`].
#[derive(Debug, Clone, Default)]
pub struct SuppressionPage {
    pub entries: Vec<Suppression>,
    /// Opaque; pass it back for the next page. `None`: this was the last page.
    pub next: Option<String>,
}

/// Where an entry stands in [`Suppressions::suppressions`]' order (newest first: `at` to the
/// millisecond, then email key, both descending), and the cursor text that resumes after it. One
/// definition for every store, so that their pages agree; the text holds no address (an email
/// key is a hash).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SuppressionPosition {
    /// `at` in milliseconds since the epoch (truncated, as `timestamp_millis`).
    pub at_ms: i64,
    pub email_key: String,
}

impl SuppressionPosition {
    pub fn of(entry: &Suppression) -> Self {
        Self { at_ms: entry.at.timestamp_millis(), email_key: entry.email_key.clone() }
    }

    /// `<ms>#<email key>`.
    pub fn cursor(&self) -> String {
        format!("{}#{}", self.at_ms, self.email_key)
    }

    /// The position a cursor made by [`Self::cursor`] names; `None` for any other text.
    pub fn parse(cursor: &str) -> Option<Self> {
        let (ms, key) = cursor.split_once('#')?;
        let at_ms: i64 = ms.parse().ok()?;
        // Only the text `cursor` writes: no '+', no leading zeros, no "-0".
        if key.is_empty() || at_ms.to_string() != ms {
            return None;
        }
        Some(Self { at_ms, email_key: key.to_string() })
    }
}

/// A page of [`Listings::funnel_facts`].
#[derive(Debug, Clone, Default)]
pub struct FactsPage {
    pub facts: Vec<LeadFacts>,
    /// Opaque; pass it back for the next page. `None`: this was the last page.
    pub next: Option<String>,
}

/// A page of [`Enrollments::campaign_enrollments`].
#[derive(Debug, Clone, Default)]
pub struct EnrollmentPage {
    pub enrollments: Vec<Enrollment>,
    /// Opaque; pass it back for the next page. `None`: this was the last page.
    pub next: Option<String>,
}

/// The leads themselves: capture's idempotency, creation and merging, versioned updates, erasure.
pub trait Leads: Send + Sync + 'static {
    /// Binds an idempotency key to a lead id until `expires_at`, or tells the id it is bound to.
    /// A key whose binding expired before `now` is free again.
    fn claim_idempotency_key(
        &self,
        key: &str,
        lead_id: LeadId,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> impl Future<Output = Result<IdempotencyClaim, StoreError>> + Send;

    /// Creates the lead, its email key when it is valid, and `trail`, in one atomic write; writes
    /// nothing unless the answer is `Created`. An id recorded as an alias is taken: a redelivered
    /// submission that was merged must not come back as a lead of its own, even after the lead it
    /// merged into changed its address.
    fn create_lead(
        &self,
        lead: &Lead,
        trail: &[Activity],
    ) -> impl Future<Output = Result<CreateOutcome, StoreError>> + Send;

    /// Writes `lead` and `trail` if the stored version is `expected_version`; the stored version
    /// becomes `expected_version + 1`. On a conflict nothing is written.
    fn update_lead(
        &self,
        lead: &Lead,
        expected_version: u64,
        trail: &[Activity],
    ) -> impl Future<Output = Result<WriteOutcome, StoreError>> + Send;

    /// Records that the submission captured as `alias` was merged into `into`; `false` when the
    /// alias was recorded already. Lookups by the alias then find `into`.
    fn record_alias(&self, alias: LeadId, into: LeadId) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// The lead a capture id stands for: itself, or the lead it was merged into.
    fn resolve_lead(&self, id: LeadId) -> impl Future<Output = Result<Option<LeadId>, StoreError>> + Send;

    fn get_lead(&self, id: LeadId) -> impl Future<Output = Result<Option<Lead>, StoreError>> + Send;

    fn find_by_email_key(&self, email_key: &str) -> impl Future<Output = Result<Option<LeadId>, StoreError>> + Send;

    /// Erasure: replaces the lead with `tombstone` (no personal data) at the stored version + 1,
    /// whatever version the tombstone was made from (a write that came in since loses: its
    /// conditional write then fails), deletes `email_key` if it points at this lead, and deletes
    /// the lead's activities. A lead already erased keeps its tombstone as it is; a lead that is
    /// not there is not created. Enrollments are kept (they hold no personal data) but must
    /// already be stopped.
    fn erase_lead(
        &self,
        tombstone: &Lead,
        email_key: Option<&str>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// A lead's trail: read one or many, and record a fact that changes nothing else (an email
/// opened, a delivery). Most entries are written with the change they tell, by the other roles.
pub trait Trails: Send + Sync + 'static {
    /// Stores a fact that changes nothing else (an email opened, a delivery), unless the lead has
    /// an activity with its id already.
    fn record_activity(&self, activity: &Activity) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The lead's activities, oldest first.
    fn activities(&self, lead_id: LeadId) -> impl Future<Output = Result<Vec<Activity>, StoreError>> + Send;

    /// The trails of many leads at once, in the order asked, each oldest first (an unknown lead's
    /// is empty): the console's "try a rule change" reads a thousand, and a store that can read
    /// them in one go or side by side does.
    fn trails(&self, lead_ids: &[LeadId]) -> impl Future<Output = Result<Vec<Vec<Activity>>, StoreError>> + Send;

    /// The lead and its activities, oldest first; `None` for an id that is no lead. What a drip
    /// step reads; a store that keeps both in one place (DynamoDB: one partition) reads them in
    /// one request instead of two.
    fn lead_and_trail(
        &self,
        lead_id: LeadId,
    ) -> impl Future<Output = Result<Option<(Lead, Vec<Activity>)>, StoreError>> + Send
    where
        Self: Leads,
    {
        async move {
            let Some(lead) = self.get_lead(lead_id).await? else {
                return Ok(None);
            };
            Ok(Some((lead, self.activities(lead_id).await?)))
        }
    }
}

/// Routing's state: team cursors, open leads per rep, the assignment write, running SLAs.
pub trait Assignments: Send + Sync + 'static {
    fn team_cursor(&self, team_id: &str) -> impl Future<Output = Result<TeamCursor, StoreError>> + Send;

    /// Open (assigned, not won or lost) leads per rep.
    fn rep_loads(&self) -> impl Future<Output = Result<BTreeMap<RepId, u32>, StoreError>> + Send;

    /// What routing reads for every decision: the cursor of the team the lead matched (the
    /// default one for `None`) and [`Assignments::rep_loads`]. A store that keeps both together
    /// reads them in one request.
    fn routing_state(
        &self,
        team_id: Option<&str>,
    ) -> impl Future<Output = Result<(TeamCursor, BTreeMap<RepId, u32>), StoreError>> + Send {
        async move {
            let cursor = match team_id {
                Some(team) => self.team_cursor(team).await?,
                None => TeamCursor::default(),
            };
            Ok((cursor, self.rep_loads().await?))
        }
    }

    fn assign(&self, write: &AssignmentWrite) -> impl Future<Output = Result<AssignOutcome, StoreError>> + Send;

    /// Leads that are owned, still `new` (not contacted, won or lost) and whose
    /// `owner.sla_due_at` is at or before `now`, oldest due first. The store keeps this index
    /// itself from every lead it writes; it reads work proportional to the answer.
    fn due_slas(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<LeadId>, StoreError>> + Send;
}

/// Side effects of a lead (an email to it or about it) claimed before they are performed and
/// recorded after.
pub trait Effects: Send + Sync + 'static {
    /// Claims the right to perform the side effect `key` of `lead`. A claim not finished by
    /// `lease_until` may be taken over (the claimant is presumed dead).
    fn claim_effect(
        &self,
        lead: LeadId,
        key: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> impl Future<Output = Result<EffectClaim, StoreError>> + Send;

    /// Marks the effect done with `detail`, and stores `trail`, in one atomic write. Called by
    /// the holder of the claim, after the effect; a second finish replaces the first.
    fn finish_effect(
        &self,
        lead: LeadId,
        key: &str,
        detail: &str,
        trail: &[Activity],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Gives back the claim taken until `lease_until` after the effect failed (it did not
    /// happen), so that a retry may claim it at once. Called only instead of `finish_effect`,
    /// never after it. A claim taken over since (another lease) stays, and so does an effect
    /// another claimant finished: a claimant that outlived its lease cannot free what another
    /// holds.
    fn release_effect(
        &self,
        key: &str,
        lease_until: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Drip campaign enrollments: created once, advanced under versions, found when due.
pub trait Enrollments: Send + Sync + 'static {
    /// Creates the enrollment, with `trail`, unless the lead is enrolled in that campaign already
    /// (then nothing is written); `true` if created.
    fn enroll(
        &self,
        enrollment: &Enrollment,
        trail: &[Activity],
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    fn enrollments(&self, lead_id: LeadId) -> impl Future<Output = Result<Vec<Enrollment>, StoreError>> + Send;

    /// Active enrollments whose next step is due at or before `now`, oldest due first. Reads work
    /// proportional to the due enrollments, not to all of them.
    fn due_enrollments(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Enrollment>, StoreError>> + Send;

    /// Writes the enrollment and `trail` if the stored version is `expected_version`.
    fn update_enrollment(
        &self,
        enrollment: &Enrollment,
        expected_version: u64,
        trail: &[Activity],
    ) -> impl Future<Output = Result<WriteOutcome, StoreError>> + Send;

    /// One page of the enrollments in a campaign (any version, any state), in no promised order,
    /// and the cursor of the next page (`None` after the last). For migrating enrolled leads to a
    /// new version on purpose: an admin operation that may read every enrollment, never the hot path.
    fn campaign_enrollments(
        &self,
        campaign_id: &str,
        cursor: Option<String>,
        limit: usize,
    ) -> impl Future<Output = Result<EnrollmentPage, StoreError>> + Send;
}

/// The suppression list: addresses no email may go to.
pub trait Suppressions: Send + Sync + 'static {
    /// Puts the address on the suppression list; `false` when it was there already (the first
    /// entry, and its reason, are kept). `trail` is stored in either case, in the same atomic
    /// write as a new entry; unlike other trails, an entry whose id the lead has already is kept
    /// as it was, as by `record_activity` (a repeated opt-out tells nothing new).
    fn suppress(
        &self,
        entry: &Suppression,
        trail: &[Activity],
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    fn suppression(&self, email_key: &str) -> impl Future<Output = Result<Option<Suppression>, StoreError>> + Send;

    /// One page of the suppression list, newest first (by `at`, then email key: see
    /// [`SuppressionPosition`]), and the cursor of the next page (`None` after the last). A cursor
    /// this store did not hand out is `StoreError::Corrupt`; a `limit` of 0 is taken as 1.
    fn suppressions(
        &self,
        cursor: Option<String>,
        limit: usize,
    ) -> impl Future<Output = Result<SuppressionPage, StoreError>> + Send;
}

/// Versioned documents: campaigns, rules, templates, settings.
pub trait Documents: Send + Sync + 'static {
    /// Stores `doc` if its version is the next one of its name (1 for a new name), else
    /// `VersionConflict`.
    fn put_document(&self, doc: &Document) -> impl Future<Output = Result<WriteOutcome, StoreError>> + Send;

    /// One version of a document; `None` as version means the latest.
    fn document(
        &self,
        name: &str,
        version: Option<u32>,
    ) -> impl Future<Output = Result<Option<Document>, StoreError>> + Send;

    /// The latest version of every document whose name starts with `prefix`, by name.
    fn latest_documents(&self, prefix: &str) -> impl Future<Output = Result<Vec<Document>, StoreError>> + Send;
}

/// Pages over many leads for the console, exports and reports; never on a stage's hot path.
pub trait Listings: Send + Sync + 'static {
    /// One page of all leads, in no promised order, and the cursor of the next page (`None` after
    /// the last). For search, export and reports: it reads every lead, so never on the hot path.
    fn list_leads(
        &self,
        cursor: Option<String>,
        limit: usize,
    ) -> impl Future<Output = Result<LeadPage, StoreError>> + Send;

    /// One page of the funnel's facts ([`LeadFacts::of`]) of the leads captured in `[since,
    /// until)` (an open end when `None`), erased leads included (their tombstones keep what is
    /// counted), in no promised order, and the cursor of the next page (`None` after the last).
    /// Each lead in range is in exactly one page. A page holds at most `limit` facts (a `limit`
    /// of 0 is taken as 1) and may hold fewer, even none, while `next` is `Some`. A cursor this
    /// store did not hand out is `StoreError::Corrupt`. For reports; how much a store reads to
    /// answer is told on its implementation.
    fn funnel_facts(
        &self,
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
        cursor: Option<String>,
        limit: usize,
    ) -> impl Future<Output = Result<FactsPage, StoreError>> + Send;

    /// One page of the leads `rep_id` owns that are still open (not won or lost, not erased), newest first,
    /// and the cursor of the next page (`None` after the last). Read from an index the store keeps
    /// with every write of a lead; reads work proportional to the page.
    ///
    /// A cursor this store did not hand out is `StoreError::Corrupt`; a `limit` of 0 is taken
    /// as 1. A lead that closes or changes hands between two pages is not in the later one;
    /// the cursor still works.
    fn open_leads_of(
        &self,
        rep_id: &str,
        cursor: Option<String>,
        limit: usize,
    ) -> impl Future<Output = Result<LeadPage, StoreError>> + Send;

    /// One page of the leads captured before `before` (every lead when `None`), newest first,
    /// erased leads left out, and the cursor of the next page: the last lead's id (`None` after
    /// the last). Lead ids are ULIDs, so id order is capture order; any lead id is a valid
    /// `before`, which lets a caller start at a date (`LeadId::from_parts(ms, 0)`: the leads
    /// captured before that millisecond). Read from an index; work proportional to the page. A
    /// `limit` of 0 is taken as 1.
    fn leads_before(
        &self,
        before: Option<LeadId>,
        limit: usize,
    ) -> impl Future<Output = Result<LeadPage, StoreError>> + Send;
}

/// The store of leads and everything about them: every role. Handlers ask for this; a use that
/// needs one role may ask for that role alone.
///
/// **Trails.** A write that changes what a lead is or has (created, rescored, assigned, an email
/// sent, an enrollment advanced or ended, an address suppressed) takes the trail entries that
/// tell it (`trail`) and stores them in the same transaction: the change and its entries are
/// one outcome, whenever the process dies. A trail entry replaces an entry of the same lead with
/// the same id (a write is conditional, so that happens only when the same fact is written
/// again, such as an effect finished twice after its lease ran out). Activity ids are unique per
/// lead, not across leads.
pub trait LeadStore:
    Leads + Trails + Assignments + Effects + Enrollments + Suppressions + Documents + Listings
{
}

impl<T: Leads + Trails + Assignments + Effects + Enrollments + Suppressions + Documents + Listings> LeadStore for T {}
