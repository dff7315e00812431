//! A rep's leads: "My leads" (the open ones, newest first, from the store's index of open leads
//! by owner) and the lead page (everything about one lead, and the buttons that mark it
//! contacted, won or lost with a note).

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::{DateTime, Utc};
use leadflow_app::sales::{self, MarkError};
use leadflow_core::config::CompiledConfig;
use leadflow_core::erasure::{erased_at, is_erased};
use leadflow_core::error::StoreError;
use leadflow_core::local_time::{in_words, time_left};
use leadflow_core::model::{Activity, ActivityKind, Enrollment, Lead, LeadId, SalesStatus, Touch, Validity};
use leadflow_core::ports::{Clock, Ports};
use serde::Deserialize;
use serde_json::{Value, json};
use tracing::warn;

use super::act::MAX_NOTE_CHARS;
use super::session::Role;
use super::{Console, Signed, query, see_other};
use leadflow_core::ports::{Enrollments, Leads, Listings, Trails};

/// Leads on one page of "My leads".
pub const PAGE_SIZE: usize = 25;

fn not_found(signed: &Signed) -> Response {
    signed.refusal(StatusCode::NOT_FOUND, "No such lead", "No lead has this address. It may have been erased.")
}

/// The time zone a person reads times in: the rep's own, else UTC.
fn reader_zone(config: &CompiledConfig, signed: &Signed) -> String {
    signed
        .session
        .acting_rep()
        .and_then(|r| config.routing.rep(r))
        .map_or_else(|| "UTC".to_string(), |r| r.time_zone.clone())
}

#[derive(Debug, Default, Deserialize)]
pub struct MineQuery {
    #[serde(default)]
    cursor: Option<String>,
}

/// `GET /console/leads/mine`: the acting rep's open leads, newest first, a page at a time.
pub async fn mine<P: Ports>(
    State(console): State<Arc<Console<P>>>,
    signed: Signed,
    Query(q): Query<MineQuery>,
) -> Response {
    let Some(rep_id) = signed.session.acting_rep().cloned() else {
        return signed.forbidden(
            "You are not a rep",
            "My leads lists a rep's leads. Admins can view the console as a rep from the home page.",
        );
    };
    let ports = &*console.ports;
    let config = ports.config();
    let now = ports.clock().now();
    // A cursor is a lead id; anything else was not made by this page.
    let cursor = q.cursor.filter(|c| c.parse::<LeadId>().is_ok());
    let page = match ports.store().open_leads_of(&rep_id, cursor, PAGE_SIZE).await {
        Ok(p) => p,
        Err(e) => {
            warn!(error = %e, "my leads could not be read");
            return signed.unavailable();
        }
    };
    let rep = config.routing.rep(&rep_id);
    let zone = rep.map_or("UTC", |r| r.time_zone.as_str());
    let leads: Vec<Value> = page.leads.iter().map(|l| row(l, zone, now)).collect();
    let next = page.next.map(|c| format!("/console/leads/mine?{}", query(&[("cursor", &c)])));
    signed.page(
        StatusCode::OK,
        "my_leads.html",
        json!({
            "rep_name": rep.map_or(rep_id.as_str(), |r| r.name.as_str()),
            "zone": zone,
            "leads": leads,
            "next": next,
        }),
    )
}

fn row(lead: &Lead, zone: &str, now: DateTime<Utc>) -> Value {
    let sla = lead.owner.as_ref().filter(|_| lead.status == SalesStatus::New).map(|o| {
        json!({
            "left": time_left(o.sla_due_at, now),
            "overdue": o.sla_due_at <= now,
            "due": in_words(o.sla_due_at, zone),
        })
    });
    json!({
        "id": lead.id,
        "name": lead.display_name(),
        "company": lead.contact.company,
        "job_title": lead.contact.job_title,
        "grade": lead.score.as_ref().map(|s| s.grade),
        "score": lead.score.as_ref().map(|s| s.total),
        "status": lead.status.as_str(),
        "sla": sla,
        "created": in_words(lead.created_at, zone),
    })
}

#[derive(Debug, Default, Deserialize)]
pub struct ShowQuery {
    #[serde(default)]
    done: Option<String>,
}

/// The lead `id` names, following a merge.
pub(crate) async fn resolved<P: Ports>(ports: &P, id: LeadId) -> Result<Option<Lead>, StoreError> {
    let store = ports.store();
    let Some(id) = store.resolve_lead(id).await? else { return Ok(None) };
    store.get_lead(id).await
}

/// The lead `raw` names (following a merge; an erased one too), else the page to show:
/// `not_found`'s for an address that names no lead.
pub(crate) async fn stored_lead<P: Ports>(
    ports: &P,
    signed: &Signed,
    raw: &str,
    not_found: fn(&Signed) -> Response,
) -> Result<Lead, Response> {
    let Ok(id) = raw.parse::<LeadId>() else { return Err(not_found(signed)) };
    match resolved(ports, id).await {
        Ok(Some(lead)) => Ok(lead),
        Ok(None) => Err(not_found(signed)),
        Err(e) => {
            warn!(lead_id = %id, error = %e, "a console page could not read its lead");
            Err(signed.unavailable())
        }
    }
}

/// The lead `raw` names (following a merge), if the person may open it; else the page to show.
async fn readable_lead<P: Ports>(ports: &P, signed: &Signed, raw: &str) -> Result<Lead, Response> {
    let lead = stored_lead(ports, signed, raw, not_found).await?;
    match refusal(signed, &lead) {
        Some(page) => Err(page),
        None => Ok(lead),
    }
}

/// The page that refuses `lead` to the person: it was erased, or it is not theirs to see.
fn refusal(signed: &Signed, lead: &Lead) -> Option<Response> {
    if is_erased(lead) {
        let when = erased_at(lead).map_or_else(|| "earlier".to_string(), |at| in_words(at, "UTC"));
        let line = format!("Its personal data was erased {when}. What reports count is kept.");
        return Some(signed.refusal(StatusCode::GONE, "This lead was erased", &line));
    }
    let owner = lead.owner.as_ref().map(|o| o.rep_id.as_str());
    (!signed.session.may_open(owner)).then(|| {
        signed.forbidden(
            "This lead is not yours",
            "It belongs to another rep. Ask your sales manager if it should be yours.",
        )
    })
}

/// What the lead page shows of a lead besides the lead itself.
struct Around {
    trail: Vec<Activity>,
    enrollments: Vec<Enrollment>,
}

/// The lead `id` names (following a merge) with its trail and enrollments. The id usually names
/// the lead itself, so the lead with its trail (one request on DynamoDB, which keeps them in one
/// partition) and the enrollments are read side by side; only an id a merge left behind costs
/// the alias's read and a second round.
async fn lead_with_around<P: Ports>(ports: &P, id: LeadId) -> Result<Option<(Lead, Around)>, StoreError> {
    let store = ports.store();
    let read = async |id: LeadId| {
        let (lead, enrollments) = tokio::join!(store.lead_and_trail(id), store.enrollments(id));
        Ok::<_, StoreError>(lead?.map(|(lead, trail)| (lead, trail, enrollments)))
    };
    let found = match read(id).await? {
        Some(found) => Some(found),
        None => match store.resolve_lead(id).await? {
            Some(merged_into) if merged_into != id => read(merged_into).await?,
            _ => None,
        },
    };
    match found {
        Some((lead, trail, enrollments)) => Ok(Some((lead, Around { trail, enrollments: enrollments? }))),
        None => Ok(None),
    }
}

/// `GET /console/leads/{id}`: contact, score with its reasons and history, why this rep,
/// consent, attribution, enrollments, the whole trail, and the status buttons.
pub async fn show<P: Ports>(
    State(console): State<Arc<Console<P>>>,
    signed: Signed,
    Path(raw): Path<String>,
    Query(q): Query<ShowQuery>,
) -> Response {
    let ports = &*console.ports;
    let Ok(id) = raw.parse::<LeadId>() else { return not_found(&signed) };
    let (lead, around) = match lead_with_around(ports, id).await {
        Ok(Some(found)) => found,
        Ok(None) => return not_found(&signed),
        Err(e) => {
            warn!(lead_id = %id, error = %e, "a lead page could not read its lead");
            return signed.unavailable();
        }
    };
    if let Some(page) = refusal(&signed, &lead) {
        return page;
    }
    let notice = q.done.as_deref().and_then(|d| match d {
        "contacted" => Some("Marked contacted. The SLA clock has stopped."),
        "won" => Some("Marked won. Its nurture emails have stopped."),
        "lost" => Some("Marked lost. Its nurture emails have stopped."),
        _ => None,
    });
    page_of(ports, &signed, &lead, &around, Telling { status: StatusCode::OK, notice, note_error: None, note: "" })
}

/// What the lead page tells besides the lead: the answer's status, a notice at the top, and the
/// note form as it was sent, with what was wrong next to it.
struct Telling<'a> {
    status: StatusCode,
    notice: Option<&'a str>,
    note_error: Option<&'a str>,
    note: &'a str,
}

impl<'a> Telling<'a> {
    /// A status change refused: `why` next to the note form, which keeps `note`.
    fn refused(status: StatusCode, why: &'a str, note: &'a str) -> Self {
        Self { status, notice: None, note_error: Some(why), note }
    }
}

/// The lead page of `lead` after a refused status change, reading its trail and enrollments.
async fn lead_page<P: Ports>(ports: &P, signed: &Signed, lead: &Lead, telling: Telling<'_>) -> Response {
    let store = ports.store();
    let around = match tokio::join!(store.activities(lead.id), store.enrollments(lead.id)) {
        (Ok(trail), Ok(enrollments)) => Around { trail, enrollments },
        (Err(e), _) | (_, Err(e)) => {
            warn!(lead_id = %lead.id, error = %e, "a lead page could not read the trail");
            return signed.unavailable();
        }
    };
    page_of(ports, signed, lead, &around, telling)
}

fn page_of<P: Ports>(ports: &P, signed: &Signed, lead: &Lead, around: &Around, telling: Telling<'_>) -> Response {
    let (activities, enrollments) = (&around.trail, &around.enrollments);
    let Telling { status, notice, note_error, note } = telling;
    let config = ports.config();
    let now = ports.clock().now();
    let zone = reader_zone(&config, signed);
    let c = &lead.contact;
    let owner = lead.owner.as_ref().map(|o| {
        let rep = config.routing.rep(&o.rep_id);
        let rep_zone = rep.map_or("UTC", |r| r.time_zone.as_str());
        json!({
            "rep_name": rep.map_or(o.rep_id.as_str(), |r| r.name.as_str()),
            "team": o.team_id,
            "assigned": in_words(o.assigned_at, &zone),
            "sla_running": lead.status == SalesStatus::New,
            "sla_due": in_words(o.sla_due_at, rep_zone),
            "sla_left": time_left(o.sla_due_at, now),
            "sla_overdue": o.sla_due_at <= now,
            "explanation": o.explanation,
            "via_fallback": o.via_fallback,
        })
    });
    let score = lead.score.as_ref().map(|s| {
        let reasons: Vec<Value> = s
            .reasons
            .iter()
            .map(|r| json!({ "points": signed_points(r.points), "explanation": r.explanation, "kind": r.kind }))
            .collect();
        json!({ "total": s.total, "fit": s.fit, "behaviour": s.behaviour, "grade": s.grade, "reasons": reasons })
    });
    let history: Vec<Value> = activities
        .iter()
        .filter_map(|a| match &a.kind {
            ActivityKind::Scored { total, grade } => {
                Some(json!({ "at": in_words(a.at, &zone), "total": total, "grade": grade }))
            }
            _ => None,
        })
        .collect();
    let mut trail: Vec<&Activity> = activities.iter().collect();
    trail.sort_by(|a, b| b.at.cmp(&a.at).then_with(|| b.id.cmp(&a.id)));
    let trail: Vec<Value> =
        trail.iter().map(|a| json!({ "at": in_words(a.at, &zone), "text": describe(&config, &a.kind) })).collect();
    let enrollments: Vec<Value> = enrollments
        .iter()
        .map(|e| {
            let state = match &e.state {
                leadflow_core::model::EnrollmentState::Active => "active".to_string(),
                leadflow_core::model::EnrollmentState::Completed => "completed".to_string(),
                leadflow_core::model::EnrollmentState::Stopped { reason } => format!("stopped: {reason}"),
            };
            json!({
                "campaign": e.campaign_id,
                "version": e.campaign_version,
                "state": state,
                "next_step": e.next_step + 1,
                "next_due": e.next_due_at.map(|d| in_words(d, &zone)),
            })
        })
        .collect();
    let owner_id = lead.owner.as_ref().map(|o| o.rep_id.as_str());
    let actions: Vec<Value> = if signed.session.may_work(owner_id) {
        [SalesStatus::Contacted, SalesStatus::Won, SalesStatus::Lost]
            .into_iter()
            .filter(|to| *to != lead.status && lead.status.may_become(*to).is_ok())
            .map(|to| json!({ "status": to.as_str(), "label": action_label(to) }))
            .collect()
    } else {
        Vec::new()
    };
    let invalid: Vec<String> = match &lead.validity {
        Validity::Valid => Vec::new(),
        Validity::Invalid { reasons } => reasons.iter().map(|r| format!("{}: {}", r.field, r.message)).collect(),
    };
    signed.page(
        status,
        "lead.html",
        json!({
            "id": lead.id,
            "name": lead.display_name(),
            "company": c.company,
            "job_title": c.job_title,
            "email": c.email,
            "phone": c.phone.as_deref().map(|p| json!({ "tel": p, "shown": c.phone_shown() })),
            "country": c.country,
            "time_zone": c.time_zone,
            "status": lead.status.as_str(),
            "lifecycle": lead.lifecycle.as_str(),
            "invalid": invalid,
            "created": in_words(lead.created_at, &zone),
            "submissions": lead.submissions,
            "score": score,
            "history": history,
            "owner": owner,
            "consent": lead.consent.as_ref().map(|k| json!({
                "given": k.given, "wording": k.wording, "at": in_words(k.at, &zone), "source": k.source,
            })),
            "first_touch": touch(&lead.attribution.first_touch, &zone),
            "last_touch": touch(&lead.attribution.last_touch, &zone),
            "custom": lead.custom,
            "enrollments": enrollments,
            "trail": trail,
            "actions": actions,
            "notice": notice,
            "note": note,
            "note_error": note_error,
            "max_note": MAX_NOTE_CHARS,
            "zone": zone,
            "readonly_reason": (signed.session.role == Role::Marketing).then_some("Marketing can read leads; their reps mark them."),
            "can_erase": signed.session.role == Role::Admin,
        }),
    )
}

fn signed_points(p: f64) -> String {
    if p >= 0.0 { format!("+{p}") } else { format!("{p}") }
}

fn action_label(status: SalesStatus) -> &'static str {
    match status {
        SalesStatus::Contacted => "I've contacted them",
        SalesStatus::Won => "Won",
        SalesStatus::Lost => "Lost",
        SalesStatus::New => "New",
    }
}

fn touch(t: &Touch, zone: &str) -> Value {
    json!({
        "at": in_words(t.at, zone),
        "form": t.form,
        "source": t.utm.source,
        "medium": t.utm.medium,
        "campaign": t.utm.campaign,
        "page_url": t.page_url,
        "referrer": t.referrer,
    })
}

/// One trail entry as a sentence.
fn describe(config: &CompiledConfig, kind: &ActivityKind) -> String {
    let rep_name = |id: &str| config.routing.rep(id).map_or_else(|| id.to_string(), |r| r.name.clone());
    match kind {
        ActivityKind::FormSubmission { form, .. } => match form {
            Some(f) => format!("Submitted the form “{f}”"),
            None => "Submitted a form".to_string(),
        },
        ActivityKind::ValidationFailed { reasons } => {
            let fields: Vec<&str> = reasons.iter().map(|r| r.field.as_str()).collect();
            format!("Failed validation ({})", fields.join(", "))
        }
        ActivityKind::Scored { total, grade } => format!("Scored {total} (grade {grade:?})"),
        ActivityKind::StageChanged { from, to } => format!("Moved from {} to {}", from.as_str(), to.as_str()),
        ActivityKind::Assigned { rep_id, team_id, .. } => match team_id {
            Some(t) => format!("Assigned to {} (team {t})", rep_name(rep_id)),
            None => format!("Assigned to {}", rep_name(rep_id)),
        },
        ActivityKind::EmailSent { subject, .. } => format!("Email sent: “{subject}”"),
        ActivityKind::EmailOpened { .. } => "Opened an email".to_string(),
        ActivityKind::EmailClicked { url, .. } => match url {
            Some(u) => format!("Clicked {u}"),
            None => "Clicked a link in an email".to_string(),
        },
        ActivityKind::EmailDelivered { .. } => "An email was delivered".to_string(),
        ActivityKind::EmailBounced { permanent, .. } => {
            if *permanent {
                "An email bounced for good; the address gets no more email".to_string()
            } else {
                "An email bounced for now".to_string()
            }
        }
        ActivityKind::EmailComplained { .. } => "Marked an email as spam".to_string(),
        ActivityKind::EmailNotSent { reason, .. } => format!("An email was not sent, for good: {reason}"),
        ActivityKind::Unsubscribed { via } => format!("Unsubscribed ({via})"),
        ActivityKind::StatusChanged { from, to, by, note } => {
            let mut s = format!("Marked {} (was {})", to.as_str(), from.as_str());
            if let Some(by) = by {
                s.push_str(&format!(" by {}", rep_name(by)));
            }
            if let Some(note) = note {
                s.push_str(&format!(": “{note}”"));
            }
            s
        }
        ActivityKind::SlaBreached { rep_id, rerouted_to } => match rerouted_to {
            Some(to) => format!("{} missed the SLA; moved to {}", rep_name(rep_id), rep_name(to)),
            None => format!("{} missed the SLA", rep_name(rep_id)),
        },
        ActivityKind::Enrolled { campaign_id, version } => format!("Enrolled in {campaign_id} (version {version})"),
        ActivityKind::EnrollmentEnded { campaign_id, reason } => format!("Left {campaign_id}: {reason}"),
        ActivityKind::ConsentRequested { form, purpose, .. } => match form {
            Some(f) => format!("Ticked consent ({purpose}) on “{f}”; waiting for the confirmation"),
            None => format!("Ticked consent ({purpose}); waiting for the confirmation"),
        },
        ActivityKind::ConfirmationSent { expires_at, .. } => {
            format!("Confirmation sent; the link works until {}", expires_at.format("%-d %b %Y"))
        }
        ActivityKind::ConsentConfirmed { purpose, .. } => format!("Consent confirmed from the email ({purpose})"),
        ActivityKind::ChangesHeld { changes, .. } => {
            let fields: Vec<String> = changes.iter().map(|(field, value)| format!("{field} “{value}”")).collect();
            format!("A repeat submission was not applied, for review; it gave {}", fields.join(", "))
        }
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct StatusForm {
    #[serde(default)]
    status: String,
    #[serde(default)]
    note: String,
}

/// `POST /console/leads/{id}/status`: marks the lead, with the note kept on its trail.
pub async fn mark<P: Ports>(
    State(console): State<Arc<Console<P>>>,
    signed: Signed,
    Path(raw): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let ports = &*console.ports;
    let form: StatusForm = match signed.form(ports, &headers, &body) {
        Ok(f) => f,
        Err(refused) => return *refused,
    };
    let lead = match readable_lead(ports, &signed, &raw).await {
        Ok(l) => l,
        Err(page) => return page,
    };
    if !signed.session.may_work(lead.owner.as_ref().map(|o| o.rep_id.as_str())) {
        return signed.forbidden("Only the lead's rep marks it", "Your role can read this lead, not change it.");
    }
    let status = match form.status.as_str() {
        "contacted" => SalesStatus::Contacted,
        "won" => SalesStatus::Won,
        "lost" => SalesStatus::Lost,
        _ => {
            let telling = Telling::refused(StatusCode::UNPROCESSABLE_ENTITY, "Choose one of the buttons.", &form.note);
            return lead_page(ports, &signed, &lead, telling).await;
        }
    };
    let note = form.note.trim();
    if note.chars().count() > MAX_NOTE_CHARS {
        let message = format!("A note may be at most {MAX_NOTE_CHARS} characters.");
        let telling = Telling::refused(StatusCode::UNPROCESSABLE_ENTITY, &message, note);
        return lead_page(ports, &signed, &lead, telling).await;
    }
    let note = (!note.is_empty()).then(|| note.to_string());
    // The trail says who: the rep by id (shown by name), anybody else by email.
    let by = signed.session.rep_id.clone().unwrap_or_else(|| signed.session.email.clone());
    match sales::mark(ports, lead.id, status, Some(by), note).await {
        Ok(_) => see_other(&format!("/console/leads/{}?{}", lead.id, query(&[("done", status.as_str())]))),
        Err(MarkError::NotFound | MarkError::Erased) => not_found(&signed),
        Err(e @ MarkError::Refused { .. }) => {
            let why = e.to_string();
            lead_page(ports, &signed, &lead, Telling::refused(StatusCode::CONFLICT, &why, "")).await
        }
        Err(MarkError::Stage(e)) => {
            warn!(lead_id = %lead.id, error = %e, "a status change could not be saved");
            signed.unavailable()
        }
    }
}
