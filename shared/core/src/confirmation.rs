//! Double opt-in, and what a submission nobody has confirmed may do to a lead.
//!
//! Anyone can type anyone's address into a form, so consent ticked on a form with double opt-in
//! (`[forms.<id>] double_opt_in`, on unless a form turns it off) is only a request:
//! validation takes it off the new lead and writes a `consent_requested` entry
//! ([`hold_consent`]); the route stage emails the address a signed link ([`standing`] says
//! when, [`email`] what); the link's page shows what would be confirmed, and only its button —
//! a POST, since mail scanners open links — records consent ([`confirm`]). Until then the lead
//! enters no nurture campaign: the score stage asks [`standing`] before enrolling.
//!
//! A repeat submission for a known address cannot rewrite the lead either: see [`repeat`].
//!
//! Links are signed with the deployment's keys ([`crate::signing`]) under a purpose of their
//! own, so an unsubscribe token or a sales action can never pass for one, nor one for them.

pub mod repeat;

use std::sync::LazyLock;

use chrono::{DateTime, Duration, Utc};
use minijinja::{Environment, context};
use serde::{Deserialize, Serialize};

use crate::email::{NO_TRACK, RenderError, one_line};
use crate::model::{Activity, ActivityKind, Consent, Lead, LeadId};
use crate::outgoing::{EmailCategory, Mailbox, OutgoingEmail};
use crate::settings::Settings;
use crate::signing::{SignatureError, SigningKeys, decode_tag, key_id_is_valid};

pub use repeat::merge_repeat;

/// How long a confirmation link works. Long enough for a holiday; after it, the person asks
/// again from a form and a new link is sent.
pub const VALID_FOR: Duration = Duration::days(30);

/// Where the links point, under the public URL: `/confirm/<token>`.
pub const PATH_PREFIX: &str = "/confirm/";

/// Bytes of the MAC kept in the token: 128 bits is beyond guessing and keeps links short.
const MAC_BYTES: usize = 16;

const PURPOSE: &[u8] = b"leadflow-consent-confirmation-v1:";

/// What a verified link says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfirmLink {
    pub lead_id: LeadId,
    /// Whole seconds: the token carries the expiry as unix seconds.
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    #[error("the confirmation link is malformed")]
    Malformed,
    #[error("the confirmation link's signature does not match")]
    BadSignature,
    #[error("the confirmation link expired")]
    Expired,
    #[error("no key is configured to sign links with")]
    NoSecret,
}

impl From<SignatureError> for LinkError {
    fn from(e: SignatureError) -> Self {
        match e {
            SignatureError::NoKey => Self::NoSecret,
            SignatureError::Mismatch => Self::BadSignature,
        }
    }
}

/// `<lead id>.<expiry, unix seconds>.<key id>.<hex MAC>`: one URL path segment. The key id keeps
/// a link working across a rotation of the signing key while it is valid.
pub fn sign(keys: &SigningKeys, link: &ConfirmLink) -> Result<String, LinkError> {
    let message = format!("{}.{}", link.lead_id, link.expires_at.timestamp());
    let (key_id, tag) = keys.sign(PURPOSE, message.as_bytes(), MAC_BYTES)?;
    Ok(format!("{message}.{key_id}.{}", hex::encode(tag)))
}

/// What the token says, if one of `keys` signed it and it has not expired by `now`. The MAC
/// covers the token's text as written (another spelling of the same id or time is refused), and
/// is checked before the expiry, so an altered link never reads as merely expired.
pub fn verify(keys: &SigningKeys, token: &str, now: DateTime<Utc>) -> Result<ConfirmLink, LinkError> {
    let mut parts = token.split('.');
    let (Some(lead), Some(expiry), Some(key_id), Some(tag), None) =
        (parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(LinkError::Malformed);
    };
    let lead_id: LeadId = lead.parse().map_err(|_| LinkError::Malformed)?;
    let seconds: i64 = expiry.parse().map_err(|_| LinkError::Malformed)?;
    let tag = decode_tag(tag, MAC_BYTES).ok_or(LinkError::Malformed)?;
    if !key_id_is_valid(key_id) {
        return Err(LinkError::Malformed);
    }
    let message = &token[..lead.len() + 1 + expiry.len()];
    keys.verify(Some(key_id), PURPOSE, message.as_bytes(), &tag)?;
    let expires_at = DateTime::from_timestamp(seconds, 0).ok_or(LinkError::Malformed)?;
    if expires_at <= now {
        return Err(LinkError::Expired);
    }
    Ok(ConfirmLink { lead_id, expires_at })
}

/// What a person asked for on a form, waiting for their confirmation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    pub at: DateTime<Utc>,
    pub form: Option<String>,
    pub purpose: String,
    pub wording: Option<String>,
}

/// The confirmation email to send now: its key (once per key, at least once) and the request
/// it confirms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Due {
    pub key: String,
    pub request: Request,
}

impl Due {
    /// Whether this email, found due earlier from the trail, is still to be sent to `lead` at
    /// `now`: what can change after [`standing`] named it is the lead (consent confirmed, the
    /// address gone) and the clock (the link would be dead on arrival). A send since then used
    /// this same key, so the key's once-only send answers that.
    pub fn still_due(&self, lead: &Lead, now: DateTime<Utc>) -> bool {
        !lead.consent.as_ref().is_some_and(|c| c.given) && sendable(lead, self.request.at, now)
    }
}

/// A confirmation email can go to `lead` for a request made at `requested_at`: a request whose
/// link would be dead on arrival (a message held up for weeks) gets none.
fn sendable(lead: &Lead, requested_at: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    lead.is_valid()
        && !lead.contact.email.trim().is_empty()
        && expiry_of(requested_at).is_some_and(|expiry| expiry > now)
}

/// Where a lead's consent stands, from the lead and its trail.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Standing {
    /// A request waits for confirmation (or was never confirmed): the lead enters no nurture
    /// campaign, whatever the campaign's `requires_consent`.
    pub awaiting: bool,
    /// The confirmation email to send, if one is due now.
    pub due: Option<Due>,
}

/// Whether consent is awaited and whether a confirmation email is due. One email per request
/// while its link is valid: the first request of a lead gets `confirm-<lead>`; a request made
/// after that link expired gets a new email, keyed by the send before it, so two workers
/// looking at the same trail always name the same email.
pub fn standing(lead: &Lead, trail: &[Activity], now: DateTime<Utc>) -> Standing {
    if lead.consent.as_ref().is_some_and(|c| c.given) {
        return Standing::default();
    }
    let Some(request) = latest_request(trail) else { return Standing::default() };
    let last_sent = trail
        .iter()
        .filter_map(|a| match &a.kind {
            ActivityKind::ConfirmationSent { expires_at, .. } => Some((a.at, *expires_at)),
            _ => None,
        })
        .max();
    let sendable = sendable(lead, request.at, now);
    let key = match last_sent {
        None => Some(format!("confirm-{}", lead.id)),
        Some((sent_at, expires_at)) if expires_at <= now && request.at > sent_at => {
            Some(format!("confirm-{}-{}", lead.id, sent_at.timestamp_millis()))
        }
        Some(_) => None,
    };
    Standing { awaiting: true, due: key.filter(|_| sendable).map(|key| Due { key, request }) }
}

fn latest_request(trail: &[Activity]) -> Option<Request> {
    trail
        .iter()
        .filter_map(|a| match &a.kind {
            ActivityKind::ConsentRequested { form, purpose, wording, .. } => {
                Some(Request { at: a.at, form: form.clone(), purpose: purpose.clone(), wording: wording.clone() })
            }
            _ => None,
        })
        .max_by_key(|r| r.at)
}

/// A new lead's consent under double opt-in: consent ticked on a form that asks for
/// confirmation is taken off the lead, and the request is answered as the trail entry to store
/// with it. Consent declined, or given on a form without double opt-in, stays as it came.
pub fn hold_consent(lead: &mut Lead, settings: &Settings, submission_id: LeadId) -> Option<Activity> {
    let consent = lead.consent.as_ref().filter(|c| c.given)?;
    let form = lead.attribution.first_touch.form.clone();
    if !settings.form(form.as_deref()).double_opt_in {
        return None;
    }
    let entry = requested(lead.id, submission_id, lead.created_at, form, consent);
    lead.consent = None;
    Some(entry)
}

/// The `consent_requested` entry of a submission; one per submission.
pub(crate) fn requested(
    lead_id: LeadId,
    submission_id: LeadId,
    at: DateTime<Utc>,
    form: Option<String>,
    consent: &Consent,
) -> Activity {
    Activity {
        id: format!("consent-requested-{submission_id}"),
        lead_id,
        at,
        kind: ActivityKind::ConsentRequested {
            submission_id,
            form,
            purpose: consent.purpose.clone(),
            wording: consent.wording.clone(),
        },
    }
}

/// When the link for a request made at `requested_at` stops working, in whole seconds as the
/// link says it. Fixed by the request, so that every rendering of its email is the same email.
pub fn expiry_of(requested_at: DateTime<Utc>) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(requested_at.checked_add_signed(VALID_FOR)?.timestamp(), 0)
}

/// The three templates, compiled once: they are the program's own (a test renders them), and
/// compiling them for every email was about half of its cost (a profile of the local stack).
static TEMPLATES: LazyLock<Result<Environment<'static>, minijinja::Error>> = LazyLock::new(|| {
    let mut env = Environment::new();
    env.add_template("confirm.subject", SUBJECT)?;
    env.add_template("confirm.txt", TEXT)?;
    env.add_template("confirm.html", HTML)?;
    Ok(env)
});

/// The confirmation email of `due`, and when its link expires. Transactional: it is what the
/// person asked for, carries no unsubscribe headers, and says nothing the submitter typed (not
/// even the name), so that it cannot be made to carry someone's message to a stranger's inbox.
pub fn email(lead: &Lead, due: &Due, settings: &Settings) -> Result<(OutgoingEmail, DateTime<Utc>), ConfirmEmailError> {
    let expires_at = expiry_of(due.request.at).ok_or(ConfirmEmailError::Link(LinkError::Malformed))?;
    let token =
        sign(&settings.signing_keys, &ConfirmLink { lead_id: lead.id, expires_at }).map_err(ConfirmEmailError::Link)?;
    let url = format!("{}{PATH_PREFIX}{token}", settings.public_url.trim_end_matches('/'));
    let sender = settings.sender.name.clone().filter(|n| !n.trim().is_empty()).unwrap_or_else(|| "us".to_string());
    let ctx = context! {
        sender => sender,
        // Built by us from the configured public URL and a token of hex and digits: escaping
        // would turn its slashes into entities that some mail clients show as they are.
        url => minijinja::Value::from_safe_string(url.replace('"', "%22")),
        expires => expires_at.format("%-d %B %Y").to_string(),
        postal_address => &settings.postal_address,
        no_track => minijinja::Value::from_safe_string(NO_TRACK.to_string()),
    };
    let render = |name: &str| {
        TEMPLATES
            .as_ref()
            .map_err(|e| e.to_string())
            .and_then(|env| env.get_template(name).and_then(|t| t.render(&ctx)).map_err(|e| e.to_string()))
            .map_err(|message| ConfirmEmailError::Render(RenderError { template: name.into(), message }))
    };
    let subject = render("confirm.subject")?;
    let text = render("confirm.txt")?;
    let html = render("confirm.html")?;
    let email = OutgoingEmail {
        key: due.key.clone(),
        category: EmailCategory::Transactional,
        from: settings.sender.clone(),
        to: Mailbox { name: None, email: lead.contact.email.clone() },
        subject: one_line(&subject),
        text,
        html,
        headers: Vec::new(),
        tags: vec![("lead_id".into(), lead.id.to_string()), ("email".into(), due.key.clone())],
    };
    Ok((email, expires_at))
}

#[derive(Debug, thiserror::Error)]
pub enum ConfirmEmailError {
    #[error("the confirmation link cannot be signed: {0}")]
    Link(LinkError),
    #[error(transparent)]
    Render(RenderError),
}

const SUBJECT: &str = "Please confirm your subscription";

const TEXT: &str = "Hello,

please confirm that you want {{ sender }} to send you email. Someone, probably you, asked for it \
with this address on our website.

Confirm: {{ url }}

If it was not you, ignore this email: without your confirmation you get no marketing email from \
us. The link works until {{ expires }}.
{% if postal_address %}
--
{{ postal_address }}
{% endif %}";

// The link is left untracked: a click-tracking redirect would put a third party between the
// person and the page, and a scanner's click would count as interest.
const HTML: &str = "<!DOCTYPE html>
<html lang=\"en\">
<head>
<meta charset=\"utf-8\">
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">
<title>Please confirm your subscription</title>
</head>
<body style=\"margin:0;padding:16px;font-family:-apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif;\
font-size:16px;line-height:1.5;color:#1c1917\">
<div style=\"max-width:600px;margin:0 auto\">
<p>Hello,</p>
<p>please confirm that you want {{ sender }} to send you email. Someone, probably you, asked for \
it with this address on our website.</p>
<p><a {{ no_track }} href=\"{{ url }}\" style=\"display:inline-block;padding:12px 20px;background:#1c1917;\
color:#ffffff;text-decoration:none;border-radius:6px\">Confirm my subscription</a></p>
<p>If it was not you, ignore this email: without your confirmation you get no marketing email \
from us. The link works until {{ expires }}.</p>
{% if postal_address %}<p style=\"color:#57534e;font-size:12px\">{{ postal_address }}</p>{% endif %}
</div>
</body>
</html>";

/// What a link's page shows and its button confirms: the request the email was sent for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Confirmable {
    pub form: Option<String>,
    pub purpose: String,
    pub wording: Option<String>,
}

/// The request behind `link`: the `confirmation_sent` entry with the link's expiry. `None` when
/// the trail has no such send (the lead was erased, or the link is not one we sent).
pub fn confirmable(trail: &[Activity], link: &ConfirmLink) -> Option<Confirmable> {
    trail.iter().rev().find_map(|a| match &a.kind {
        ActivityKind::ConfirmationSent { expires_at, form, purpose, wording, .. }
            if expires_at.timestamp() == link.expires_at.timestamp() =>
        {
            Some(Confirmable { form: form.clone(), purpose: purpose.clone(), wording: wording.clone() })
        }
        _ => None,
    })
}

/// What pressing the button does.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Store this lead (consent given: when, on which form, to what words) with this entry.
    Confirm { lead: Box<Lead>, entry: Box<Activity> },
    /// The lead's consent is recorded already: nothing to do.
    Already,
    /// No email with this link was sent to this lead: nothing to confirm.
    Unknown,
}

/// Consent as confirmed from `link` at `now`, or why nothing changes.
pub fn confirm(lead: &Lead, trail: &[Activity], link: &ConfirmLink, now: DateTime<Utc>) -> Outcome {
    if lead.consent.as_ref().is_some_and(|c| c.given) {
        return Outcome::Already;
    }
    let Some(what) = confirmable(trail, link) else { return Outcome::Unknown };
    let mut confirmed = lead.clone();
    confirmed.consent = Some(Consent {
        given: true,
        purpose: what.purpose.clone(),
        wording: what.wording.clone(),
        at: now,
        source: what.form.clone().unwrap_or_else(|| "unknown".to_string()),
    });
    confirmed.updated_at = now;
    let entry = Activity {
        id: format!("consent-confirmed-{}", link.expires_at.timestamp()),
        lead_id: lead.id,
        at: now,
        kind: ActivityKind::ConsentConfirmed { form: what.form, purpose: what.purpose, wording: what.wording },
    };
    Outcome::Confirm { lead: Box::new(confirmed), entry: Box::new(entry) }
}
