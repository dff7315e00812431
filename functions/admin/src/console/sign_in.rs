//! Signing in and out. In the local stack a person signs in with a one-time code that the
//! operator mints on the machine (`leadflow dev` prints one for the local admin; `leadflow
//! console link --as <email>` makes one for anybody the configuration knows) and that only a
//! browser on the same machine can redeem. No shared password exists to leak.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{Extensions, HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use chrono::{DateTime, Duration, Utc};
use leadflow_core::model::RepId;
use leadflow_core::ports::Ports;
use serde::Deserialize;
use serde_json::json;

use super::session::{self, Role, Session};
use super::{Console, Signed, page, see_other, session_cookie_secure};

/// How long a minted code may wait to be used.
pub const CODE_VALID_FOR: Duration = Duration::minutes(15);

/// Codes waiting at once; minting more drops the oldest, so a script minting in a loop cannot
/// grow the process without bound.
const MAX_PENDING: usize = 64;

/// Who the link `leadflow dev` prints signs in: the person who started it, as admin.
pub const LOCAL_ADMIN: &str = "admin@localhost";

/// How people sign in to this deployment.
#[derive(Clone)]
pub enum SignIn {
    /// The local stack: one-time codes, redeemed from this machine only.
    Local(Arc<LocalCodes>),
    /// A deployment's Amazon Cognito user pool (managed login).
    Cognito(Arc<super::cognito::Cognito>),
    /// No sign-in is set up here: the console's pages say so rather than open.
    NotSetUp,
}

#[derive(Debug, Clone)]
struct Pending {
    email: String,
    role: Role,
    rep_id: Option<RepId>,
    expires_at: DateTime<Utc>,
}

/// One-time sign-in codes, kept in the local stack's memory: a restart forgets them, which only
/// means minting another.
#[derive(Default)]
pub struct LocalCodes {
    pending: Mutex<HashMap<String, Pending>>,
}

/// A code minted for someone.
#[derive(Debug, Clone)]
pub struct Minted {
    pub code: String,
    pub email: String,
    pub role: Role,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MintError {
    #[error("{0} is not a rep in routing.toml nor listed under [console] in leadflow.toml, so it cannot sign in")]
    UnknownPerson(String),
}

impl LocalCodes {
    pub fn new() -> Self {
        Self::default()
    }

    /// A code for `email` (the local admin when `None`), by the role the configuration gives it.
    pub fn mint(
        &self,
        config: &leadflow_core::config::CompiledConfig,
        email: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Minted, MintError> {
        let email = email.map(str::trim).filter(|e| !e.is_empty());
        let (email, role, rep_id) = match email {
            None => (LOCAL_ADMIN.to_string(), Role::Admin, None),
            Some(e) if e.eq_ignore_ascii_case(LOCAL_ADMIN) => (LOCAL_ADMIN.to_string(), Role::Admin, None),
            Some(e) => match session::person_of(config, e) {
                Some((role, rep)) => (e.to_ascii_lowercase(), role, rep),
                None => return Err(MintError::UnknownPerson(e.to_string())),
            },
        };
        let code = hex::encode(rand::random::<[u8; 16]>());
        let expires_at = now + CODE_VALID_FOR;
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        pending.retain(|_, p| p.expires_at > now);
        while pending.len() >= MAX_PENDING {
            let oldest = pending.iter().min_by_key(|(_, p)| p.expires_at).map(|(c, _)| c.clone());
            match oldest {
                Some(c) => pending.remove(&c),
                None => break,
            };
        }
        pending.insert(code.clone(), Pending { email: email.clone(), role, rep_id, expires_at });
        Ok(Minted { code, email, role, expires_at })
    }

    fn peek(&self, code: &str, now: DateTime<Utc>) -> Option<Pending> {
        let pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        pending.get(code).filter(|p| p.expires_at > now).cloned()
    }

    /// Takes the code: it signs in once.
    fn redeem(&self, code: &str, now: DateTime<Utc>) -> Option<Pending> {
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        pending.remove(code).filter(|p| p.expires_at > now)
    }
}

/// Where to go after signing in: a console path of this site, nothing else (an open redirect
/// would let a link send a fresh session's browser anywhere).
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with("/console") && !n.contains("//") && !n.contains('\\') && n.len() <= 512 => {
            n.to_string()
        }
        _ => "/console".to_string(),
    }
}

fn from_this_machine(extensions: &Extensions) -> bool {
    extensions.get::<ConnectInfo<SocketAddr>>().is_some_and(|ConnectInfo(addr)| addr.ip().is_loopback())
}

#[derive(Debug, Default, Deserialize)]
pub struct NextQuery {
    #[serde(default)]
    next: Option<String>,
}

/// `GET /console/sign-in`: how to sign in here.
pub async fn sign_in_page<P: Ports>(State(console): State<Arc<Console<P>>>, Query(q): Query<NextQuery>) -> Response {
    let next = safe_next(q.next.as_deref());
    if let SignIn::Cognito(cognito) = &console.sign_in {
        return super::cognito::start(&console, cognito, &next);
    }
    let local = matches!(console.sign_in, SignIn::Local(_));
    page(StatusCode::OK, "sign_in.html", json!({ "local": local, "next": next }))
}

/// `GET /console/signed-out`: where signing out ends.
pub async fn signed_out_page() -> Response {
    page(StatusCode::OK, "signed_out.html", json!({}))
}

fn code_refused() -> Response {
    page(
        StatusCode::FORBIDDEN,
        "sign_in.html",
        json!({
            "local": true,
            "next": "/console",
            "refused": "This sign-in link was used already, has expired, or is not one this Leadflow made. Ask for a new one.",
        }),
    )
}

fn not_from_here() -> Response {
    page(
        StatusCode::FORBIDDEN,
        "sign_in.html",
        json!({
            "local": true,
            "next": "/console",
            "refused": "Sign-in links work only in a browser on the machine that runs leadflow dev.",
        }),
    )
}

/// `GET /console/sign-in/code/{code}`: who the link signs in, and the button that does it.
/// Opening it changes nothing.
pub async fn code_page<P: Ports>(
    State(console): State<Arc<Console<P>>>,
    Path(code): Path<String>,
    Query(q): Query<NextQuery>,
    extensions: Extensions,
) -> Response {
    let SignIn::Local(codes) = &console.sign_in else { return code_refused() };
    if !from_this_machine(&extensions) {
        return not_from_here();
    }
    match codes.peek(&code, Utc::now()) {
        Some(p) => page(
            StatusCode::OK,
            "sign_in_code.html",
            json!({ "email": p.email, "role": p.role.as_str(), "next": safe_next(q.next.as_deref()) }),
        ),
        None => code_refused(),
    }
}

#[derive(Debug, Default, Deserialize)]
struct CodeForm {
    #[serde(default)]
    next: Option<String>,
}

/// `POST /console/sign-in/code/{code}`: signs in, once, and goes where the person was headed.
pub async fn redeem<P: Ports>(
    State(console): State<Arc<Console<P>>>,
    Path(code): Path<String>,
    extensions: Extensions,
    body: axum::body::Bytes,
) -> Response {
    let SignIn::Local(codes) = &console.sign_in else { return code_refused() };
    if !from_this_machine(&extensions) {
        return not_from_here();
    }
    let now = Utc::now();
    let Some(p) = codes.redeem(&code, now) else { return code_refused() };
    let form: CodeForm = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let session = session::start(&p.email, p.role, p.rep_id, now);
    let next = safe_next(form.next.as_deref());
    with_session(&*console.ports, &session, see_other(&next))
}

/// `resp` with the cookie that keeps `session`.
pub fn with_session<P: Ports>(ports: &P, session: &Session, mut resp: Response) -> Response {
    let config = ports.config();
    match session::seal(&config.settings.signing_keys, session) {
        Ok(sealed) => {
            let cookie = session::set_cookie(&sealed, session_cookie_secure(&config));
            if let Ok(v) = HeaderValue::from_str(&cookie) {
                resp.headers_mut().append(header::SET_COOKIE, v);
            }
            resp
        }
        Err(_) => page(
            StatusCode::SERVICE_UNAVAILABLE,
            "sign_in.html",
            json!({ "local": false, "next": "/console", "refused": "Sign-in is not available: no signing secret is configured." }),
        ),
    }
}

/// `POST /console/sign-out`.
/// Takes the CSRF token like every form, so another site cannot sign people out.
pub async fn sign_out<P: Ports>(
    State(console): State<Arc<Console<P>>>,
    signed: Signed,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Err(refused) = signed.form::<NextQuery, P>(&*console.ports, &headers, &body) {
        return *refused;
    }
    let secure = session_cookie_secure(&console.ports.config());
    let mut cookies = vec![session::clear_cookie(secure)];
    let location = match &console.sign_in {
        SignIn::Cognito(cognito) => {
            cookies.push(super::cognito::clear_refresh(secure));
            super::cognito::sign_out_location(cognito)
        }
        _ => "/console/signed-out".to_string(),
    };
    let mut resp = see_other(&location);
    for cookie in cookies {
        if let Ok(v) = HeaderValue::from_str(&cookie) {
            resp.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    resp
}

/// The local stack's `POST /dev/sign-in-link` answer: a link for `email` (the local admin when
/// `None`) under `base_url`.
pub fn link_json(minted: &Minted, base_url: &str, next: Option<&str>) -> serde_json::Value {
    let next = safe_next(next);
    let url = format!(
        "{}/console/sign-in/code/{}?{}",
        base_url.trim_end_matches('/'),
        minted.code,
        super::query(&[("next", &next)])
    );
    json!({ "url": url, "email": minted.email, "role": minted.role.as_str(), "expires_at": minted.expires_at })
}

/// The header check a state-changing request passes besides its CSRF token: a browser names the
/// page's origin, which must be this host.
pub fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        // Browsers send Origin with every POST; a client that sends none is no browser, and the
        // token still binds the form to the session.
        return true;
    };
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
    let origin_host = origin.split_once("://").map_or("", |(_, rest)| rest);
    !host.is_empty() && origin_host.eq_ignore_ascii_case(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_console_paths_are_followed_after_sign_in() {
        assert_eq!(safe_next(Some("/console/leads/01K")), "/console/leads/01K");
        for bad in ["https://evil.example", "//evil.example", "/console//evil", "/admin/leads", "/console\\x"] {
            assert_eq!(safe_next(Some(bad)), "/console", "{bad}");
        }
        assert_eq!(safe_next(None), "/console");
    }

    #[test]
    fn the_origin_must_be_this_host() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8080"));
        assert!(same_origin(&h));
        h.insert(header::ORIGIN, HeaderValue::from_static("http://127.0.0.1:8080"));
        assert!(same_origin(&h));
        h.insert(header::ORIGIN, HeaderValue::from_static("http://127.0.0.1:9999"));
        assert!(!same_origin(&h));
        h.insert(header::ORIGIN, HeaderValue::from_static("null"));
        assert!(!same_origin(&h));
    }
}
