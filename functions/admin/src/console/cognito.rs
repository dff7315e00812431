//! Signing in on AWS: Amazon Cognito's managed login, with the authorization code flow and PKCE
//! (a public client: no secret to keep). The console verifies the ID token itself — RS256
//! signature by a key of the pool's JWKS, issuer, audience (this app client), expiry and
//! `token_use` — and keeps its own signed session cookie until the token expires; the refresh
//! token (an HttpOnly cookie) gets a new one while people keep working, for up to its 30 days.
//! Roles are the pool's groups `sales`, `marketing`, `admin`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use leadflow_core::ports::Ports;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use tracing::warn;

use super::session::{self, OAUTH_PURPOSE, Role, Session};
use super::sign_in::{SignIn, safe_next, with_session};
use super::{Console, page, query, see_other, session_cookie_secure};

/// Holds the refresh token between sign-ins.
pub const REFRESH_COOKIE: &str = "leadflow_refresh";
/// Holds the PKCE verifier, state and destination while the person is at Cognito.
pub const OAUTH_COOKIE: &str = "leadflow_oauth";
/// How long the refresh cookie lives: the app client's refresh token validity.
const REFRESH_FOR_SECONDS: i64 = 30 * 24 * 3600;
/// How long a sign-in may take at Cognito.
const OAUTH_FOR_SECONDS: i64 = 600;
/// Where the user pool is.
#[derive(Debug, Clone)]
pub struct CognitoSettings {
    /// `https://<prefix>.auth.<region>.amazoncognito.com`: authorize, token and logout.
    pub domain: String,
    /// `https://cognito-idp.<region>.amazonaws.com/<pool id>`: the tokens' `iss`.
    pub issuer: String,
    pub client_id: String,
    /// The pool's keys: `<issuer>/.well-known/jwks.json` unless told otherwise (a test's moto).
    pub jwks_url: String,
    /// Where people reach the console (the callback and sign-out pages are under it).
    pub console_url: String,
}

impl CognitoSettings {
    /// From `LEADFLOW_COGNITO_DOMAIN`, `_ISSUER`, `_CLIENT_ID` (and `_JWKS_URL`), with
    /// `console_url` the deployment's public URL; `None` when the deployment has no user pool.
    pub fn from_env(var: impl Fn(&str) -> Option<String>, console_url: &str) -> Option<Self> {
        let get = |name: &str| var(name).map(|v| v.trim().trim_end_matches('/').to_string()).filter(|v| !v.is_empty());
        let (domain, issuer, client_id) =
            (get("LEADFLOW_COGNITO_DOMAIN")?, get("LEADFLOW_COGNITO_ISSUER")?, get("LEADFLOW_COGNITO_CLIENT_ID")?);
        let jwks_url = get("LEADFLOW_COGNITO_JWKS_URL").unwrap_or_else(|| format!("{issuer}/.well-known/jwks.json"));
        Some(Self { domain, issuer, client_id, jwks_url, console_url: console_url.trim_end_matches('/').to_string() })
    }

    fn callback_url(&self) -> String {
        format!("{}/console/auth/callback", self.console_url)
    }
}

/// Who a verified ID token says signed in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub email: String,
    pub groups: Vec<String>,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token is not a JWT")]
    Malformed,
    #[error("the token is signed with {0}, not RS256")]
    WrongAlgorithm(String),
    #[error("the token's key is not one of the user pool's")]
    UnknownKey,
    #[error("the token was refused: {0}")]
    Invalid(String),
    #[error("the token expired")]
    Expired,
    #[error("the token is not an ID token")]
    NotAnIdToken,
    #[error("the token carries no email")]
    NoEmail,
    #[error("the user pool's keys cannot be read: {0}")]
    KeysUnavailable(String),
}

/// Checks an ID token against the user pool: its signature by a key of the pool's JWKS, the
/// issuer, the audience, the expiry at `now` and `token_use`. The Lambda admin function gives the
/// one in `leadflow-aws` (`cognito::PoolKeys`), so that the JWT library and its crypto are
/// compiled there and not into the local stack, which never signs in through a user pool.
pub trait IdTokens: Send + Sync {
    fn verify<'a>(
        &'a self,
        token: &'a str,
        now: DateTime<Utc>,
    ) -> Pin<Box<dyn Future<Output = Result<Identity, TokenError>> + Send + 'a>>;
}

/// The user pool as the console talks to it: its keys (cached) and its OAuth endpoints.
pub struct Cognito {
    pub settings: CognitoSettings,
    http: reqwest::Client,
    tokens: Arc<dyn IdTokens>,
}

#[derive(Debug, Deserialize)]
struct TokenAnswer {
    id_token: String,
    #[serde(default)]
    refresh_token: Option<String>,
}

impl Cognito {
    pub fn new(settings: CognitoSettings, tokens: Arc<dyn IdTokens>) -> Self {
        let http = reqwest::Client::builder()
            .timeout(StdDuration::from_secs(5))
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Self { settings, http, tokens }
    }

    pub async fn verify(&self, token: &str, now: DateTime<Utc>) -> Result<Identity, TokenError> {
        self.tokens.verify(token, now).await
    }

    async fn token(&self, form: &[(&str, &str)]) -> Result<TokenAnswer, String> {
        let resp = self
            .http
            .post(format!("{}/oauth2/token", self.settings.domain))
            .form(form)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let resp = resp.error_for_status().map_err(|e| e.to_string())?;
        resp.json::<TokenAnswer>().await.map_err(|e| e.to_string())
    }
}

/// What the sign-in carries through Cognito, sealed in a short-lived cookie.
#[derive(Debug, Serialize, Deserialize)]
struct Pending {
    state: String,
    verifier: String,
    next: String,
    expires_at: DateTime<Utc>,
}

fn random_b64(bytes: usize) -> String {
    let raw: Vec<u8> = (0..bytes).map(|_| rand::random::<u8>()).collect();
    URL_SAFE_NO_PAD.encode(raw)
}

fn set(resp: &mut Response, cookie: &str) {
    if let Ok(v) = HeaderValue::from_str(cookie) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
}

fn cookie_of<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    session::named_cookie(headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()), name)
}

fn refused(status: StatusCode, line: &str) -> Response {
    page(status, "sign_in.html", json!({ "local": false, "cognito": true, "next": "/console", "refused": line }))
}

/// Sends the browser to Cognito's managed login, remembering where it was going.
pub fn start<P: Ports>(console: &Console<P>, cognito: &Cognito, next: &str) -> Response {
    let secret = console.ports.config().settings.signing_keys.clone();
    let pending = Pending {
        state: random_b64(24),
        verifier: random_b64(48),
        next: safe_next(Some(next)),
        expires_at: Utc::now() + chrono::Duration::seconds(OAUTH_FOR_SECONDS),
    };
    let Ok(sealed) = session::seal_json(&secret, OAUTH_PURPOSE, &pending) else {
        return refused(StatusCode::SERVICE_UNAVAILABLE, "Sign-in is not available: no signing secret is configured.");
    };
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(pending.verifier.as_bytes()));
    let s = &cognito.settings;
    let callback = s.callback_url();
    let q = query(&[
        ("response_type", "code"),
        ("client_id", &s.client_id),
        ("redirect_uri", &callback),
        ("scope", "openid email profile"),
        ("state", &pending.state),
        ("code_challenge", &challenge),
        ("code_challenge_method", "S256"),
    ]);
    let mut resp = see_other(&format!("{}/oauth2/authorize?{q}", s.domain));
    set(
        &mut resp,
        &session::cookie(OAUTH_COOKIE, &sealed, OAUTH_FOR_SECONDS, session_cookie_secure(&console.ports.config())),
    );
    resp
}

/// The session an identity gets here: its role from its groups; a rep by its email. `Err`: why
/// it gets none, for the person.
fn session_of<P: Ports>(console: &Console<P>, who: &Identity) -> Result<Session, &'static str> {
    let config = console.ports.config();
    let Some(role) = session::role_of_groups(&who.groups) else {
        return Err(
            "Your account is in none of the groups sales, marketing or admin. Ask an administrator to add you to one.",
        );
    };
    let rep = config.routing.rep_by_email(&who.email).map(|r| r.id.clone());
    if role == Role::Sales && rep.is_none() {
        return Err(
            "Your account is in the sales group, but no rep in the routing configuration has your email address.",
        );
    }
    let mut s = session::start(&who.email, role, rep, Utc::now());
    // The session ends with the token; the refresh cookie gets a new one.
    s.expires_at = s.expires_at.min(who.expires_at);
    Ok(s)
}

#[derive(Debug, Default, Deserialize)]
pub struct CallbackQuery {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

/// `GET /console/auth/callback`: Cognito sends the browser back with a code; it is exchanged
/// (with the PKCE verifier) for tokens, and the ID token for a session.
pub async fn callback<P: Ports>(
    State(console): State<Arc<Console<P>>>,
    Query(q): Query<CallbackQuery>,
    headers: HeaderMap,
) -> Response {
    let SignIn::Cognito(cognito) = &console.sign_in else {
        return refused(StatusCode::NOT_FOUND, "Sign-in through a user pool is not set up here.");
    };
    let secure = session_cookie_secure(&console.ports.config());
    let secret = console.ports.config().settings.signing_keys.clone();
    let pending: Option<Pending> = cookie_of(&headers, OAUTH_COOKIE)
        .and_then(|v| session::open_json(&secret, OAUTH_PURPOSE, v).ok())
        .filter(|p: &Pending| p.expires_at > Utc::now());
    let (Some(pending), Some(code), Some(state)) = (pending, q.code, q.state) else {
        let why = match q.error {
            Some(e) => format!("The sign-in was not completed ({e}). Try again."),
            None => "This sign-in took too long or was started in another browser. Try again.".to_string(),
        };
        return refused(StatusCode::BAD_REQUEST, &why);
    };
    if state != pending.state {
        return refused(
            StatusCode::BAD_REQUEST,
            "This sign-in does not match the one this browser started. Try again.",
        );
    }
    let callback = cognito.settings.callback_url();
    let answer = cognito
        .token(&[
            ("grant_type", "authorization_code"),
            ("client_id", cognito.settings.client_id.as_str()),
            ("code", code.as_str()),
            ("redirect_uri", callback.as_str()),
            ("code_verifier", pending.verifier.as_str()),
        ])
        .await;
    let answer = match answer {
        Ok(a) => a,
        Err(e) => {
            warn!(error = %e, "the sign-in code could not be exchanged");
            return refused(StatusCode::BAD_GATEWAY, "The sign-in service did not accept this sign-in. Try again.");
        }
    };
    signed_in(&console, cognito, &answer, &pending.next, secure).await
}

async fn signed_in<P: Ports>(
    console: &Console<P>,
    cognito: &Cognito,
    answer: &TokenAnswer,
    next: &str,
    secure: bool,
) -> Response {
    let who = match cognito.verify(&answer.id_token, Utc::now()).await {
        Ok(who) => who,
        Err(e) => {
            warn!(error = %e, "an ID token was refused");
            return refused(StatusCode::FORBIDDEN, "The sign-in could not be verified. Try again.");
        }
    };
    let session = match session_of(console, &who) {
        Ok(s) => s,
        Err(why) => return refused(StatusCode::FORBIDDEN, why),
    };
    let mut resp = with_session(&*console.ports, &session, see_other(&safe_next(Some(next))));
    set(&mut resp, &session::cookie(OAUTH_COOKIE, "", 0, secure));
    if let Some(refresh) = &answer.refresh_token {
        set(&mut resp, &session::cookie(REFRESH_COOKIE, refresh, REFRESH_FOR_SECONDS, secure));
    }
    resp
}

#[derive(Debug, Default, Deserialize)]
pub struct NextQuery {
    #[serde(default)]
    next: Option<String>,
}

/// `GET /console/auth/refresh`: a new session from the refresh token, when the last one ended;
/// without one (or when Cognito refuses it), the managed login again.
pub async fn refresh<P: Ports>(
    State(console): State<Arc<Console<P>>>,
    Query(q): Query<NextQuery>,
    headers: HeaderMap,
) -> Response {
    let SignIn::Cognito(cognito) = &console.sign_in else {
        return see_other("/console/sign-in");
    };
    let next = safe_next(q.next.as_deref());
    let secure = session_cookie_secure(&console.ports.config());
    let Some(token) = cookie_of(&headers, REFRESH_COOKIE) else { return start(&console, cognito, &next) };
    let answer = cognito
        .token(&[
            ("grant_type", "refresh_token"),
            ("client_id", cognito.settings.client_id.as_str()),
            ("refresh_token", token),
        ])
        .await;
    match answer {
        Ok(answer) => signed_in(&console, cognito, &answer, &next, secure).await,
        Err(e) => {
            warn!(error = %e, "a refresh token was refused");
            let mut resp = start(&console, cognito, &next);
            set(&mut resp, &session::cookie(REFRESH_COOKIE, "", 0, secure));
            resp
        }
    }
}

/// Where signing out ends: Cognito's logout (which ends its own session too), then the
/// signed-out page.
pub fn sign_out_location(cognito: &Cognito) -> String {
    let s = &cognito.settings;
    let back = format!("{}/console/signed-out", s.console_url);
    format!("{}/logout?{}", s.domain, query(&[("client_id", &s.client_id), ("logout_uri", &back)]))
}

/// Whether a browser without a session still holds a refresh token.
pub fn can_refresh(headers: &HeaderMap) -> bool {
    cookie_of(headers, REFRESH_COOKIE).is_some()
}

/// The cookie that forgets the refresh token.
pub fn clear_refresh(secure: bool) -> String {
    session::cookie(REFRESH_COOKIE, "", 0, secure)
}
