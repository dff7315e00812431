//! Who is signed in to the console: the session cookie, signed with HMAC-SHA256 so that it can
//! be neither forged nor altered into another person or role, and the CSRF token every form
//! carries, derived from the session so a page of another site cannot know it.
//!
//! Sessions and sign-in codes run on real time, not the deployment's clock: the local stack's
//! `--clock-speed` demo would otherwise end a sign-in within seconds.
//!
//! The session is stateless: the cookie holds who, which role and until when. Signing out
//! clears the cookie; a copy taken before then works until it expires, so sessions are short.

use chrono::{DateTime, Duration, Utc};
use leadflow_core::config::CompiledConfig;
use leadflow_core::model::RepId;
use leadflow_core::signing::{SignatureError, SigningKeys};
use serde::{Deserialize, Serialize};

/// How long a sign-in lasts: a working day.
pub const SESSION_FOR: Duration = Duration::hours(12);

/// The cookie's name.
pub const COOKIE: &str = "leadflow_session";

const MAC_BYTES: usize = 16;

/// What a person may do in the console. Checked on the server by every handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// A rep: their own leads.
    Sales,
    /// Campaigns, leads, reports, the suppression list.
    Marketing,
    /// Everything, and may view the console as any rep.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Sales => "sales",
            Role::Marketing => "marketing",
            Role::Admin => "admin",
        }
    }
}

/// A signed-in person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub email: String,
    pub role: Role,
    /// The rep this person is, when their email is a rep's.
    pub rep_id: Option<RepId>,
    /// An admin looking at the console as this rep sees.
    #[serde(default)]
    pub view_as: Option<RepId>,
    pub expires_at: DateTime<Utc>,
    /// Random per sign-in: the CSRF token is derived from it.
    pub nonce: String,
}

impl Session {
    /// The rep whose leads "My leads" shows: the one an admin views as, else the person's own.
    pub fn acting_rep(&self) -> Option<&RepId> {
        self.view_as.as_ref().or(self.rep_id.as_ref())
    }

    /// Whether this person may open a lead owned by `owner`: marketing and admins may open any;
    /// a rep only their own.
    pub fn may_open(&self, owner: Option<&str>) -> bool {
        match self.role {
            Role::Admin | Role::Marketing => true,
            Role::Sales => owner.is_some_and(|o| self.rep_id.as_deref() == Some(o)),
        }
    }

    /// Whether this person may mark a lead contacted, won or lost: its rep, or an admin.
    pub fn may_work(&self, owner: Option<&str>) -> bool {
        match self.role {
            Role::Admin => true,
            Role::Marketing => false,
            Role::Sales => owner.is_some_and(|o| self.rep_id.as_deref() == Some(o)),
        }
    }
}

/// Who a console email is, by the configuration: an admin or marketer by `[console]` in
/// `leadflow.toml`, else a rep by the routing configuration's email. `None`: nobody we know.
pub fn person_of(config: &CompiledConfig, email: &str) -> Option<(Role, Option<RepId>)> {
    let email = email.trim();
    let rep = config.routing.rep_by_email(email).map(|r| r.id.clone());
    let listed = |list: &[String]| list.iter().any(|e| e.trim().eq_ignore_ascii_case(email));
    let console = &config.settings.console;
    if listed(&console.admins) {
        Some((Role::Admin, rep))
    } else if listed(&console.marketing) {
        Some((Role::Marketing, rep))
    } else {
        rep.map(|r| (Role::Sales, Some(r)))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    #[error("the session cookie is malformed")]
    Malformed,
    #[error("the session cookie's signature does not match")]
    BadSignature,
    #[error("the session expired")]
    Expired,
    #[error("no secret is configured to sign sessions with")]
    NoSecret,
}

impl From<SignatureError> for SessionError {
    fn from(e: SignatureError) -> Self {
        match e {
            SignatureError::NoKey => Self::NoSecret,
            SignatureError::Mismatch => Self::BadSignature,
        }
    }
}

// The keys also sign unsubscribe and one-click links: a purpose of its own keeps a value made for
// one from passing for another. Sessions and CSRF tokens name no key: they live hours, so one
// made just before a key rotation is tried against every key still kept.
const SESSION_PURPOSE: &[u8] = b"leadflow-console-session-v1:";
/// What a sign-in through Cognito carries from its start to its callback (PKCE, state).
pub const OAUTH_PURPOSE: &[u8] = b"leadflow-console-oauth-v1:";
const CSRF_PURPOSE: &[u8] = b"leadflow-console-csrf-v1:";

/// `<hex of the session's JSON>.<hex MAC>`: cookie-safe characters only.
pub fn seal(keys: &SigningKeys, session: &Session) -> Result<String, SessionError> {
    seal_json(keys, SESSION_PURPOSE, session)
}

/// The session the cookie value holds, if it was sealed with one of `keys` and has not expired.
pub fn open(keys: &SigningKeys, value: &str, now: DateTime<Utc>) -> Result<Session, SessionError> {
    let session: Session = open_json(keys, SESSION_PURPOSE, value)?;
    if session.expires_at <= now {
        return Err(SessionError::Expired);
    }
    Ok(session)
}

/// Any value as `<hex of its JSON>.<hex MAC>`, signed for `purpose`.
pub fn seal_json<T: Serialize>(keys: &SigningKeys, purpose: &[u8], value: &T) -> Result<String, SessionError> {
    let json = serde_json::to_vec(value).map_err(|_| SessionError::Malformed)?;
    let (_, tag) = keys.sign(purpose, &json, MAC_BYTES)?;
    Ok(format!("{}.{}", hex::encode(&json), hex::encode(tag)))
}

/// The value [`seal_json`] sealed for `purpose` with one of `keys`; the signature is checked first.
pub fn open_json<T: serde::de::DeserializeOwned>(
    keys: &SigningKeys,
    purpose: &[u8],
    value: &str,
) -> Result<T, SessionError> {
    let (body, tag) = value.split_once('.').ok_or(SessionError::Malformed)?;
    let json = hex::decode(body).map_err(|_| SessionError::Malformed)?;
    let tag = hex::decode(tag).map_err(|_| SessionError::Malformed)?;
    if tag.len() != MAC_BYTES {
        return Err(SessionError::Malformed);
    }
    keys.verify(None, purpose, &json, &tag)?;
    serde_json::from_slice(&json).map_err(|_| SessionError::Malformed)
}

/// The token every console form posts back. Bound to the sign-in, so it changes with each.
pub fn csrf_token(keys: &SigningKeys, session: &Session) -> String {
    match keys.sign(CSRF_PURPOSE, session.nonce.as_bytes(), MAC_BYTES) {
        Ok((_, tag)) => hex::encode(tag),
        // No secret means no session could have been opened either.
        Err(_) => String::new(),
    }
}

/// Whether `given` is this session's CSRF token, compared in constant time.
pub fn csrf_ok(keys: &SigningKeys, session: &Session, given: &str) -> bool {
    let Ok(given) = hex::decode(given.trim()) else { return false };
    if given.len() != MAC_BYTES {
        return false;
    }
    keys.verify(None, CSRF_PURPOSE, session.nonce.as_bytes(), &given).is_ok()
}

/// A new session for a person who just signed in.
pub fn start(email: &str, role: Role, rep_id: Option<RepId>, now: DateTime<Utc>) -> Session {
    let nonce: [u8; 16] = rand::random();
    Session {
        email: email.trim().to_ascii_lowercase(),
        role,
        rep_id,
        view_as: None,
        expires_at: now + SESSION_FOR,
        nonce: hex::encode(nonce),
    }
}

/// The `Set-Cookie` value that keeps `sealed` for the session's life: HttpOnly (no script reads
/// it), SameSite=Lax (another site's form posts without it), Secure over https.
pub fn set_cookie(sealed: &str, secure: bool) -> String {
    cookie(COOKIE, sealed, SESSION_FOR.num_seconds(), secure)
}

/// The `Set-Cookie` value that signs out.
pub fn clear_cookie(secure: bool) -> String {
    cookie(COOKIE, "", 0, secure)
}

/// A console cookie: `name=value` for `max_age` seconds (0 deletes it).
pub fn cookie(name: &str, value: &str, max_age: i64, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{name}={value}; Path=/console; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}")
}

/// The session cookie's value among a request's `Cookie` headers.
pub fn cookie_value<'a>(headers: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    named_cookie(headers, COOKIE)
}

/// The value of the cookie `name` among a request's `Cookie` headers.
pub fn named_cookie<'a>(headers: impl Iterator<Item = &'a str>, name: &str) -> Option<&'a str> {
    headers
        .flat_map(|h| h.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, value)| value.trim())
        .filter(|v| !v.is_empty())
}

/// The role a Cognito user's groups give: the widest of `admin`, `marketing`, `sales`.
pub fn role_of_groups(groups: &[String]) -> Option<Role> {
    let has = |g: &str| groups.iter().any(|x| x == g);
    if has("admin") {
        Some(Role::Admin)
    } else if has("marketing") {
        Some(Role::Marketing)
    } else if has("sales") {
        Some(Role::Sales)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(now: DateTime<Utc>) -> Session {
        start("Ben@Acme.example", Role::Sales, Some("ben".into()), now)
    }

    #[test]
    fn a_sealed_session_opens_until_it_expires() {
        let now = Utc::now();
        let s = session(now);
        let sealed = seal(&"k".into(), &s).unwrap_or_default();
        assert_eq!(open(&"k".into(), &sealed, now), Ok(s.clone()));
        assert_eq!(s.email, "ben@acme.example");
        assert_eq!(open(&"k".into(), &sealed, now + SESSION_FOR), Err(SessionError::Expired));
        assert_eq!(open(&"other".into(), &sealed, now), Err(SessionError::BadSignature));
    }

    #[test]
    fn an_altered_session_is_refused() {
        let now = Utc::now();
        let mut s = session(now);
        let sealed = seal(&"k".into(), &s).unwrap_or_default();
        let (_, tag) = sealed.split_once('.').unwrap_or_default();
        s.role = Role::Admin;
        let json = serde_json::to_vec(&s).unwrap_or_default();
        let forged = format!("{}.{tag}", hex::encode(json));
        assert_eq!(open(&"k".into(), &forged, now), Err(SessionError::BadSignature));
        assert_eq!(open(&"k".into(), "zz.zz", now), Err(SessionError::Malformed));
        assert_eq!(open(&"".into(), &sealed, now), Err(SessionError::NoSecret));
    }

    #[test]
    fn the_csrf_token_belongs_to_one_sign_in() {
        let now = Utc::now();
        let a = session(now);
        let b = session(now);
        let token = csrf_token(&"k".into(), &a);
        assert!(csrf_ok(&"k".into(), &a, &token));
        assert!(!csrf_ok(&"k".into(), &b, &token));
        assert!(!csrf_ok(&"other".into(), &a, &token));
        assert!(!csrf_ok(&"k".into(), &a, ""));
    }

    #[test]
    fn reps_open_and_work_only_their_own_leads() {
        let rep = session(Utc::now());
        assert!(rep.may_open(Some("ben")) && rep.may_work(Some("ben")));
        assert!(!rep.may_open(Some("anna")) && !rep.may_work(Some("anna")) && !rep.may_open(None));
        let marketer = start("m@x", Role::Marketing, None, Utc::now());
        assert!(marketer.may_open(Some("anna")) && !marketer.may_work(Some("anna")));
        let admin = start("a@x", Role::Admin, None, Utc::now());
        assert!(admin.may_open(None) && admin.may_work(Some("anna")));
    }

    #[test]
    fn the_cookie_is_found_among_others() {
        let headers = ["a=1; leadflow_session=abc.def", "b=2"];
        assert_eq!(cookie_value(headers.iter().copied()), Some("abc.def"));
        assert_eq!(cookie_value(["leadflow_session="].iter().copied()), None);
    }
}
