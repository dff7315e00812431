//! The lead and what happens to it.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::FieldProblem;

/// A lead's id: a ULID assigned at capture, so ids sort by arrival.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LeadId(pub ulid::Ulid);

impl LeadId {
    pub fn from_parts(millis: u64, random: u128) -> Self {
        Self(ulid::Ulid::from_parts(millis, random))
    }
}

impl fmt::Display for LeadId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for LeadId {
    type Err = ulid::DecodeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ulid::Ulid::from_string(s).map(LeadId)
    }
}

pub type RepId = String;
pub type TeamId = String;
pub type CampaignId = String;

/// What a landing page sent, after capture's cheap checks, before normalization. It is what
/// the validate queue carries, so nothing the visitor typed is lost if validation changes later.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Submission {
    pub lead_id: LeadId,
    pub received_at: DateTime<Utc>,
    /// The form id the page posted (`form` field), used for redirects and attribution.
    pub form: Option<String>,
    pub email: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub phone: Option<String>,
    pub company: Option<String>,
    pub job_title: Option<String>,
    pub country: Option<String>,
    pub time_zone: Option<String>,
    pub consent: Option<RawConsent>,
    pub utm: Utm,
    pub page_url: Option<String>,
    pub referrer: Option<String>,
    /// Fields the form sent that Leadflow has no name for, kept as they came (bounded by capture).
    pub custom: BTreeMap<String, String>,
    /// The address as capture's checks normalized it, so that validation need not do it again;
    /// `email` keeps what was typed. Validation takes it only under the rules it was made by
    /// and after a look that it is a plain address (`validate::build_lead`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checked_email: Option<CheckedEmail>,
}

/// An address normalized by [`crate::normalize::normalize_email`] under the rules numbered
/// `rules` ([`crate::normalize::EMAIL_RULES`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckedEmail {
    pub rules: u32,
    pub address: String,
}

impl Default for LeadId {
    fn default() -> Self {
        LeadId(ulid::Ulid::nil())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct RawConsent {
    pub given: bool,
    pub purpose: Option<String>,
    pub wording: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Utm {
    pub source: Option<String>,
    pub medium: Option<String>,
    pub campaign: Option<String>,
    pub term: Option<String>,
    pub content: Option<String>,
}

/// How the lead's email domain is classified by enrichment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DomainKind {
    Corporate,
    FreeMail,
    Disposable,
}

impl DomainKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DomainKind::Corporate => "corporate",
            DomainKind::FreeMail => "free_mail",
            DomainKind::Disposable => "disposable",
        }
    }
}

/// The lead's contact details, normalized.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Contact {
    /// Normalized address: trimmed, domain lowercased and in punycode.
    pub email: String,
    pub email_domain: String,
    pub domain_kind: DomainKind,
    /// `info@`, `sales@`, … : an address of a function rather than a person.
    pub role_address: bool,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    /// E.164, e.g. `+4930123456`.
    pub phone: Option<String>,
    /// The phone as people write it (`+49 30 123456`), set by validation with `phone`, so that
    /// the stages after it need no phone metadata. Absent on leads an older build stored: they
    /// show `phone` as it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_display: Option<String>,
    /// The region the phone number belongs to (ISO 3166-1 alpha-2), set with `phone`: the lead's
    /// time zone when it gave neither a zone nor a country.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_country: Option<String>,
    pub company: Option<String>,
    pub job_title: Option<String>,
    /// ISO 3166-1 alpha-2, upper case.
    pub country: Option<String>,
    /// IANA time zone name, e.g. `Europe/Berlin`.
    pub time_zone: Option<String>,
}

impl Contact {
    /// The phone as a person should see it: the display form validation kept, else the stored
    /// number as it is (leads an older build stored).
    pub fn phone_shown(&self) -> Option<&str> {
        self.phone_display.as_deref().or(self.phone.as_deref())
    }
}

/// Consent as recorded: what the person agreed to, in which words, when and where.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Consent {
    pub given: bool,
    pub purpose: String,
    pub wording: Option<String>,
    pub at: DateTime<Utc>,
    /// The form or page the consent was given on.
    pub source: String,
}

/// Where a submission came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Touch {
    pub at: DateTime<Utc>,
    pub form: Option<String>,
    pub utm: Utm,
    pub page_url: Option<String>,
    pub referrer: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attribution {
    pub first_touch: Touch,
    pub last_touch: Touch,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Lifecycle {
    #[default]
    Lead,
    Mql,
    Sql,
}

impl Lifecycle {
    pub fn as_str(self) -> &'static str {
        match self {
            Lifecycle::Lead => "lead",
            Lifecycle::Mql => "mql",
            Lifecycle::Sql => "sql",
        }
    }
}

/// What sales says happened to the lead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SalesStatus {
    #[default]
    New,
    Contacted,
    Won,
    Lost,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Grade {
    A,
    B,
    C,
    D,
}

/// One rule's contribution to a score, so that every point can be explained.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoreReason {
    pub rule: String,
    #[serde(rename = "type")]
    pub kind: ScoreRuleKind,
    pub points: f64,
    pub explanation: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScoreRuleKind {
    Fit,
    Behaviour,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Score {
    /// The sum of `reasons[..].points`, rounded to hundredths like each reason.
    pub total: f64,
    pub fit: f64,
    pub behaviour: f64,
    pub grade: Grade,
    pub reasons: Vec<ScoreReason>,
    pub computed_at: DateTime<Utc>,
}

/// Who owns the lead and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Assignment {
    pub rep_id: RepId,
    pub team_id: Option<TeamId>,
    pub assigned_at: DateTime<Utc>,
    pub sla_due_at: DateTime<Utc>,
    /// Why this rep, in sentences a sales manager can read.
    pub explanation: Vec<String>,
    pub via_fallback: bool,
}

/// Whether the lead passed validation; invalid leads are kept, with every reason.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Validity {
    Valid,
    Invalid { reasons: Vec<FieldProblem> },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Lead {
    pub id: LeadId,
    /// Optimistic-locking version: every write names the version it read.
    pub version: u64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub validity: Validity,
    /// Problems that did not make the lead invalid (a phone that could not be parsed, …).
    pub warnings: Vec<FieldProblem>,
    pub contact: Contact,
    pub consent: Option<Consent>,
    pub attribution: Attribution,
    pub custom: BTreeMap<String, String>,
    pub submissions: u32,
    pub score: Option<Score>,
    pub lifecycle: Lifecycle,
    pub status: SalesStatus,
    pub owner: Option<Assignment>,
}

/// The field names rules may test; `custom.<name>` names a custom field.
pub const FIELD_NAMES: &[&str] = &[
    "email",
    "email_domain",
    "domain_kind",
    "role_address",
    "first_name",
    "last_name",
    "phone",
    "company",
    "job_title",
    "country",
    "time_zone",
    "form",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_term",
    "utm_content",
    "page_url",
    "referrer",
    "consent",
    "lifecycle",
    "status",
];

/// Whether rules can test a field of this name.
pub fn is_field_name(name: &str) -> bool {
    FIELD_NAMES.contains(&name) || name.strip_prefix("custom.").is_some_and(|k| !k.is_empty())
}

impl Lead {
    pub fn is_valid(&self) -> bool {
        matches!(self.validity, Validity::Valid)
    }

    /// The value of a named field as rules see it. Names: `email`, `email_domain`,
    /// `domain_kind`, `role_address`, `first_name`, `last_name`, `phone`, `company`,
    /// `job_title`, `country`, `time_zone`, `form`, `utm_source` … `utm_content`, `page_url`,
    /// `referrer`, `consent`, `lifecycle`, `status`, `custom.<name>`.
    pub fn field(&self, name: &str) -> Option<String> {
        self.field_ref(name).map(Cow::into_owned)
    }

    /// [`field`](Self::field) without copying the values the lead holds as text.
    pub fn field_ref(&self, name: &str) -> Option<Cow<'_, str>> {
        let c = &self.contact;
        let t = &self.attribution.last_touch;
        fn text(v: &Option<String>) -> Option<Cow<'_, str>> {
            v.as_deref().map(Cow::Borrowed)
        }
        let v = match name {
            "email" => Some(Cow::Borrowed(c.email.as_str())),
            "email_domain" => Some(Cow::Borrowed(c.email_domain.as_str())),
            "domain_kind" => Some(Cow::Borrowed(c.domain_kind.as_str())),
            "role_address" => Some(Cow::Borrowed(if c.role_address { "true" } else { "false" })),
            "first_name" => text(&c.first_name),
            "last_name" => text(&c.last_name),
            "phone" => text(&c.phone),
            "company" => text(&c.company),
            "job_title" => text(&c.job_title),
            "country" => text(&c.country),
            "time_zone" => text(&c.time_zone),
            "form" => text(&t.form),
            "utm_source" => text(&t.utm.source),
            "utm_medium" => text(&t.utm.medium),
            "utm_campaign" => text(&t.utm.campaign),
            "utm_term" => text(&t.utm.term),
            "utm_content" => text(&t.utm.content),
            "page_url" => text(&t.page_url),
            "referrer" => text(&t.referrer),
            "consent" => {
                Some(Cow::Borrowed(if self.consent.as_ref().is_some_and(|c| c.given) { "true" } else { "false" }))
            }
            "lifecycle" => Some(Cow::Borrowed(self.lifecycle.as_str())),
            "status" => Some(Cow::Owned(
                serde_json::to_value(self.status).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default(),
            )),
            other => other.strip_prefix("custom.").and_then(|k| self.custom.get(k)).map(|v| Cow::Borrowed(v.as_str())),
        };
        v.filter(|s| !s.is_empty())
    }

    /// A display name for emails: first and last name, else the address.
    pub fn display_name(&self) -> String {
        let c = &self.contact;
        match (&c.first_name, &c.last_name) {
            (Some(f), Some(l)) => format!("{f} {l}"),
            (Some(n), None) | (None, Some(n)) => n.clone(),
            (None, None) => c.email.clone(),
        }
    }
}

/// Something that happened to a lead: the audit trail, and the input of behaviour scoring.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Activity {
    /// Deterministic for a given cause, so recording the same fact twice stores it once.
    pub id: String,
    pub lead_id: LeadId,
    pub at: DateTime<Utc>,
    #[serde(flatten)]
    pub kind: ActivityKind,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ActivityKind {
    /// A form submission; `submission_id` is the capture id (the lead id it was answered with).
    FormSubmission {
        submission_id: LeadId,
        form: Option<String>,
    },
    ValidationFailed {
        reasons: Vec<FieldProblem>,
    },
    Scored {
        total: f64,
        grade: Grade,
    },
    StageChanged {
        from: Lifecycle,
        to: Lifecycle,
    },
    Assigned {
        rep_id: RepId,
        team_id: Option<TeamId>,
        explanation: Vec<String>,
    },
    EmailSent {
        email: String,
        message_id: String,
        subject: String,
    },
    EmailOpened {
        message_id: String,
        /// The key of the email that was opened (`drip-…`), when the event carried it.
        #[serde(default)]
        email: Option<String>,
    },
    EmailClicked {
        message_id: String,
        #[serde(default)]
        email: Option<String>,
        url: Option<String>,
    },
    EmailDelivered {
        message_id: String,
    },
    /// A bounce: permanent ones suppress the address, transient ones are only counted.
    EmailBounced {
        message_id: String,
        permanent: bool,
    },
    EmailComplained {
        message_id: String,
    },
    /// An email that will never go out: the mail service rejected it for good (SES
    /// `MessageRejected`), or a drip step could not be rendered. Nobody retries it.
    EmailNotSent {
        email: String,
        reason: String,
    },
    Unsubscribed {
        /// Where the opt-out came from: `link`, `one_click`, `admin`.
        via: String,
    },
    /// Sales changed the lead's status (contacted, won, lost).
    StatusChanged {
        from: SalesStatus,
        to: SalesStatus,
        by: Option<String>,
        /// What the rep wrote with it ("not a fit: a student project").
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
    /// The owner did not contact the lead within the SLA; the lead went to another rep.
    SlaBreached {
        rep_id: RepId,
        rerouted_to: Option<RepId>,
    },
    Enrolled {
        campaign_id: CampaignId,
        version: u32,
    },
    EnrollmentEnded {
        campaign_id: CampaignId,
        reason: String,
    },
    /// A submission ticked consent on a form with double opt-in: nothing is recorded as consent
    /// until the person confirms it from the email (`crate::confirmation`).
    ConsentRequested {
        /// The capture id of the submission.
        submission_id: LeadId,
        form: Option<String>,
        purpose: String,
        /// What the form said next to the checkbox.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        wording: Option<String>,
    },
    /// The confirmation email went out; its link is good until `expires_at`, and confirms what
    /// is written here (the request it was sent for).
    ConfirmationSent {
        email: String,
        message_id: String,
        expires_at: DateTime<Utc>,
        form: Option<String>,
        purpose: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        wording: Option<String>,
    },
    /// The person confirmed from the email's link: consent is recorded on the lead.
    ConsentConfirmed {
        form: Option<String>,
        purpose: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        wording: Option<String>,
    },
    /// A repeat submission for a known address wanted to change who the lead is (name, phone,
    /// company, custom fields, consent); nothing of it was applied, it waits here for a person.
    ChangesHeld {
        submission_id: LeadId,
        form: Option<String>,
        /// Field name to the value the submission gave, for each field it would have changed.
        changes: BTreeMap<String, String>,
    },
}

impl ActivityKind {
    /// Every name [`ActivityKind::name`] can answer, for checking behaviour rules.
    pub const NAMES: &[&str] = &[
        "form_submission",
        "validation_failed",
        "scored",
        "stage_changed",
        "assigned",
        "email_sent",
        "email_open",
        "email_click",
        "email_delivered",
        "email_bounce",
        "email_complaint",
        "email_not_sent",
        "unsubscribed",
        "status_changed",
        "sla_breached",
        "enrolled",
        "enrollment_ended",
        "consent_requested",
        "confirmation_sent",
        "consent_confirmed",
        "changes_held",
    ];

    /// The name behaviour rules match on.
    pub fn name(&self) -> &'static str {
        match self {
            ActivityKind::FormSubmission { .. } => "form_submission",
            ActivityKind::ValidationFailed { .. } => "validation_failed",
            ActivityKind::Scored { .. } => "scored",
            ActivityKind::StageChanged { .. } => "stage_changed",
            ActivityKind::Assigned { .. } => "assigned",
            ActivityKind::EmailSent { .. } => "email_sent",
            ActivityKind::EmailOpened { .. } => "email_open",
            ActivityKind::EmailClicked { .. } => "email_click",
            ActivityKind::EmailDelivered { .. } => "email_delivered",
            ActivityKind::EmailBounced { .. } => "email_bounce",
            ActivityKind::EmailComplained { .. } => "email_complaint",
            ActivityKind::EmailNotSent { .. } => "email_not_sent",
            ActivityKind::Unsubscribed { .. } => "unsubscribed",
            ActivityKind::StatusChanged { .. } => "status_changed",
            ActivityKind::SlaBreached { .. } => "sla_breached",
            ActivityKind::Enrolled { .. } => "enrolled",
            ActivityKind::EnrollmentEnded { .. } => "enrollment_ended",
            ActivityKind::ConsentRequested { .. } => "consent_requested",
            ActivityKind::ConfirmationSent { .. } => "confirmation_sent",
            ActivityKind::ConsentConfirmed { .. } => "consent_confirmed",
            ActivityKind::ChangesHeld { .. } => "changes_held",
        }
    }
}

/// A lead's place in a nurture campaign.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Enrollment {
    pub lead_id: LeadId,
    pub campaign_id: CampaignId,
    /// The campaign version the lead started; it finishes that version.
    pub campaign_version: u32,
    pub enrolled_at: DateTime<Utc>,
    /// Index of the next step to send.
    pub next_step: u32,
    /// When the next step falls due; `None` once the enrollment has ended.
    pub next_due_at: Option<DateTime<Utc>>,
    pub state: EnrollmentState,
    pub version: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum EnrollmentState {
    Active,
    Completed,
    Stopped { reason: String },
}

/// Round-robin position of one team, kept in the store and updated conditionally.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct TeamCursor {
    /// Smooth weighted round-robin credit per rep.
    pub credit: BTreeMap<RepId, i64>,
    pub version: u64,
}

/// Why an address gets no more marketing email.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SuppressionReason {
    Unsubscribed,
    Bounced,
    Complained,
    Erased,
}

impl SuppressionReason {
    pub fn as_str(self) -> &'static str {
        match self {
            SuppressionReason::Unsubscribed => "unsubscribed",
            SuppressionReason::Bounced => "bounced",
            SuppressionReason::Complained => "complained",
            SuppressionReason::Erased => "erased",
        }
    }
}

/// An address on the suppression list, by its email key (the hash of the normalized address),
/// so the list itself holds no address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Suppression {
    pub email_key: String,
    pub reason: SuppressionReason,
    pub at: DateTime<Utc>,
    pub lead_id: Option<LeadId>,
}

/// A versioned configuration document applied through the admin API: a campaign
/// (`campaign:<id>`), the routing (`routing`) or the scoring rules (`scoring`). Versions count up
/// from 1 without gaps; a stored version never changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Document {
    pub name: String,
    pub version: u32,
    /// The document as JSON.
    pub body: String,
    pub saved_at: DateTime<Utc>,
}
