//! A client of the admin API, for the `leadflow` command line: one method per route it uses.
//!
//! Two ways in: plain HTTP with a bearer token, for the local stack (`leadflow dev`); and
//! requests signed with AWS SigV4 (service `execute-api`), over HTTPS, for a deployment on AWS,
//! where API Gateway checks IAM in front of the admin API.
//!
//! This module is the plumbing every request goes through (addresses, authentication, errors);
//! `routes` has the calls, `sigv4` the signing.

mod routes;
mod sigv4;

use std::time::{Duration, SystemTime};

use leadflow_app::api_error::ApiError;
use reqwest::{Method, StatusCode, Url};
use serde_json::Value;

pub use routes::LeadFilters;
pub use sigv4::{EXECUTE_API, SigV4};

/// The address of the local stack.
pub const DEFAULT_URL: &str = "http://127.0.0.1:8080";

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The API answered with an error of its own.
    #[error("{code}: {message}")]
    Api { status: u16, code: String, message: String, field: Option<String> },
    #[error("`{url}` is not an address the admin API can be reached at: {why}")]
    BadUrl { url: String, why: String },
    #[error("cannot reach the admin API at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    /// SigV4 signing could not be done: credentials or region missing (`missing_credentials`,
    /// `missing_region`), or the request not signable (`signing_failed`).
    #[error("{message}")]
    Signing { code: &'static str, message: String },
    /// Something else answered (a proxy, another service).
    #[error("the admin API answered {status} with something that is not an API answer: {body}")]
    Unexpected { status: u16, body: String },
}

impl ClientError {
    /// The error code, as printed: the API's own, or one for what went wrong on this side.
    pub fn code(&self) -> &str {
        match self {
            ClientError::Api { code, .. } => code,
            ClientError::BadUrl { .. } => "bad_url",
            ClientError::Unreachable { .. } => "unreachable",
            ClientError::Signing { code, .. } => code,
            ClientError::Unexpected { .. } => "unexpected_answer",
        }
    }

    /// The message, as printed after the code.
    pub fn message(&self) -> String {
        match self {
            ClientError::Api { message, .. } => message.clone(),
            other => other.to_string(),
        }
    }

    pub fn field(&self) -> Option<&str> {
        match self {
            ClientError::Api { field, .. } => field.as_deref(),
            _ => None,
        }
    }
}

/// A request body.
pub enum Body {
    Json(Value),
    /// Text with its content type (a campaign in YAML).
    Text(String, &'static str),
}

/// How requests prove who sends them.
#[derive(Debug, Clone)]
pub enum Auth {
    /// `authorization: Bearer <token>` (or nothing), over plain HTTP: the local stack.
    Bearer(Option<String>),
    /// Every request signed with AWS SigV4: a deployment behind API Gateway's IAM authorization.
    SigV4(SigV4),
}

pub struct AdminClient {
    base: Url,
    auth: Auth,
    http: reqwest::Client,
}

impl AdminClient {
    /// A client of the admin API at `url` (plain HTTP: the local stack), with `token` as its
    /// bearer token.
    pub fn new(url: &str, token: Option<String>) -> Result<Self, ClientError> {
        Self::with_auth(url, Auth::Bearer(token))
    }

    /// A client of the admin API at `url`: `http://` with either way in, `https://` with SigV4
    /// only (a bearer token is no way into a deployment on AWS).
    pub fn with_auth(url: &str, auth: Auth) -> Result<Self, ClientError> {
        let bad = |why: &str| ClientError::BadUrl { url: url.to_string(), why: why.to_string() };
        let base = Url::parse(url).map_err(|e| bad(&e.to_string()))?;
        match (base.scheme(), &auth) {
            ("http", _) | ("https", Auth::SigV4(_)) => {}
            ("https", Auth::Bearer(_)) => {
                return Err(bad(
                    "an https address is a deployment on AWS, which takes SigV4-signed requests, not a bearer \
                     token; the command line signs them with the AWS credentials of the environment",
                ));
            }
            (other, _) => return Err(bad(&format!("the scheme {other} is neither http nor https"))),
        }
        if base.cannot_be_a_base() {
            return Err(bad("not an http address"));
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            .build()
            .map_err(|e| ClientError::Unreachable { url: url.to_string(), reason: causes(&e) })?;
        let auth = match auth {
            Auth::Bearer(token) => Auth::Bearer(token.filter(|t| !t.is_empty())),
            sigv4 => sigv4,
        };
        Ok(Self { base, auth, http })
    }

    /// Whether requests are SigV4-signed (a deployment on AWS) rather than carrying a bearer token.
    pub fn signs(&self) -> bool {
        matches!(self.auth, Auth::SigV4(_))
    }

    /// The URL of `segments` under the base, each segment escaped, with `query`.
    fn url(&self, segments: &[&str], query: &[(&str, Option<&str>)]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty();
            path.extend(segments);
        }
        let given: Vec<_> = query.iter().filter_map(|(k, v)| v.map(|v| (*k, v))).collect();
        if !given.is_empty() {
            url.query_pairs_mut().extend_pairs(given);
        }
        url
    }

    /// The request as it is sent at `time`: bearer token or SigV4 signature included.
    fn prepare(
        &self,
        method: Method,
        url: Url,
        body: Option<Body>,
        time: SystemTime,
    ) -> Result<reqwest::Request, ClientError> {
        let shown = url.to_string();
        let mut req = self.http.request(method, url);
        if let Auth::Bearer(Some(t)) = &self.auth {
            req = req.bearer_auth(t);
        }
        req = match body {
            Some(Body::Json(v)) => req.json(&v),
            Some(Body::Text(text, content_type)) => req.header("content-type", content_type).body(text),
            None => req,
        };
        let mut req = req.build().map_err(|e| ClientError::Unreachable { url: shown, reason: causes(&e) })?;
        if let Auth::SigV4(signer) = &self.auth {
            signer.sign(&mut req, time)?;
        }
        Ok(req)
    }

    async fn send(&self, method: Method, url: Url, body: Option<Body>) -> Result<(String, String), ClientError> {
        let shown = url.to_string();
        let req = self.prepare(method, url, body, SystemTime::now())?;
        let unreachable = |e: reqwest::Error| ClientError::Unreachable { url: shown.clone(), reason: causes(&e) };
        let resp = self.http.execute(req).await.map_err(unreachable)?;
        let status = resp.status();
        let content_type =
            resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
        let text = resp.text().await.map_err(unreachable)?;
        if status.is_success() {
            return Ok((content_type, text));
        }
        Err(api_error(status, &text))
    }

    async fn json(&self, method: Method, url: Url, body: Option<Body>) -> Result<Value, ClientError> {
        let (_, text) = self.send(method, url, body).await?;
        serde_json::from_str(&text).map_err(|_| ClientError::Unexpected { status: 200, body: excerpt(&text) })
    }
}

/// An error and its causes, `: `-separated ("error sending request: connection refused").
fn causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut next = e.source();
    while let Some(cause) = next {
        let line = cause.to_string();
        if !text.contains(&line) {
            text.push_str(": ");
            text.push_str(&line);
        }
        next = cause.source();
    }
    text
}

fn excerpt(text: &str) -> String {
    let cut: String = text.chars().take(200).collect();
    if cut.len() < text.len() { format!("{cut}…") } else { cut }
}

/// The API's error body (the one every surface writes, [`ApiError`]), or what else came back.
fn api_error(status: StatusCode, text: &str) -> ClientError {
    match ApiError::from_body(status.as_u16(), text) {
        Some(ApiError { status, code, message, field, .. }) => ClientError::Api { status, code, message, field },
        None => ClientError::Unexpected { status: status.as_u16(), body: excerpt(text) },
    }
}

#[cfg(test)]
mod tests {
    use super::sigv4::tests::{KEY, SECRET, header, suite_time};
    use super::*;

    fn signing_client(url: &str, session_token: Option<&str>) -> AdminClient {
        let signer = SigV4::new(KEY, SECRET, session_token.map(str::to_string), "eu-west-1", EXECUTE_API);
        match AdminClient::with_auth(url, Auth::SigV4(signer)) {
            Ok(c) => c,
            Err(e) => panic!("no client: {e}"),
        }
    }

    fn prepared(client: &AdminClient, method: Method, url: Url, body: Option<Body>) -> reqwest::Request {
        match client.prepare(method, url, body, suite_time()) {
            Ok(r) => r,
            Err(e) => panic!("not signed: {e}"),
        }
    }

    /// The client's own requests: the body, its content type and the session token are signed
    /// (expected values computed with an independent SigV4 implementation).
    #[test]
    fn the_clients_requests_are_signed_with_body_content_type_and_session_token() {
        let client = signing_client("https://abc123.execute-api.eu-west-1.amazonaws.com", Some("SESSIONTOKEN"));
        let url = client.url(&["admin", "campaigns"], &[]);
        let body = Body::Text("id: welcome\n".to_string(), "application/yaml");
        let req = prepared(&client, Method::POST, url, Some(body));
        assert_eq!(header(&req, "x-amz-security-token"), Some("SESSIONTOKEN"));
        assert_eq!(
            header(&req, "authorization"),
            Some(
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/eu-west-1/execute-api/aws4_request, \
                 SignedHeaders=content-type;host;x-amz-date;x-amz-security-token, \
                 Signature=f0f9347411ba0e3d4ce28fec37353171a6ffcc32de13269f94a13f20af45de29"
            )
        );

        let client = signing_client("https://abc123.execute-api.eu-west-1.amazonaws.com", None);
        let url = client.url(&["admin", "leads"], &[("email", Some("ana@acme.io"))]);
        let req = prepared(&client, Method::GET, url, None);
        assert_eq!(
            header(&req, "authorization"),
            Some(
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/eu-west-1/execute-api/aws4_request, \
                 SignedHeaders=host;x-amz-date, \
                 Signature=530afd8df95fa5eb77fbdb097fb88d7b2e7e9afdbb74a3da0e64865bc0cc5d3f"
            )
        );
    }

    #[test]
    fn bearer_requests_carry_the_token_and_no_signature() {
        let client = match AdminClient::new("http://127.0.0.1:8080", Some("tok".into())) {
            Ok(c) => c,
            Err(e) => panic!("no client: {e}"),
        };
        let req = prepared(&client, Method::GET, client.url(&["admin", "reps"], &[]), None);
        assert_eq!(header(&req, "authorization"), Some("Bearer tok"));
        assert!(header(&req, "x-amz-date").is_none());
    }

    #[test]
    fn https_takes_sigv4_and_not_a_bearer_token() {
        let bearer = AdminClient::new("https://admin.example.com", Some("tok".into())).err();
        assert_eq!(bearer.as_ref().map(ClientError::code), Some("bad_url"));
        assert!(bearer.map(|e| e.message()).unwrap_or_default().contains("SigV4"));
        assert!(
            AdminClient::with_auth("https://admin.example.com", Auth::SigV4(SigV4::new("k", "s", None, "r", "x")))
                .is_ok()
        );
        let ftp = AdminClient::with_auth("ftp://admin.example.com", Auth::SigV4(SigV4::new("k", "s", None, "r", "x")));
        assert_eq!(ftp.err().as_ref().map(ClientError::code), Some("bad_url"));
    }
}
