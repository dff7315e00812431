//! A client of the admin API, for the `leadflow` command line: one method per route it uses.
//!
//! Two ways in: plain HTTP with a bearer token, for the local stack (`leadflow dev`); and
//! requests signed with AWS SigV4 (service `execute-api`), over HTTPS, for a deployment on AWS,
//! where API Gateway checks IAM in front of the admin API.

use std::time::{Duration, SystemTime};

use reqwest::{Method, StatusCode, Url};
use serde_json::Value;

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

/// The service name API Gateway's IAM authorization checks signatures for.
pub const EXECUTE_API: &str = "execute-api";

/// How requests prove who sends them.
#[derive(Debug, Clone)]
pub enum Auth {
    /// `authorization: Bearer <token>` (or nothing), over plain HTTP: the local stack.
    Bearer(Option<String>),
    /// Every request signed with AWS SigV4: a deployment behind API Gateway's IAM authorization.
    SigV4(SigV4),
}

/// What SigV4 signing needs: credentials, a region and a service name.
#[derive(Clone)]
pub struct SigV4 {
    access_key_id: String,
    secret_access_key: String,
    session_token: Option<String>,
    region: String,
    service: String,
}

impl std::fmt::Debug for SigV4 {
    // Never the secret or the session token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigV4")
            .field("access_key_id", &self.access_key_id)
            .field("region", &self.region)
            .field("service", &self.service)
            .finish_non_exhaustive()
    }
}

impl SigV4 {
    /// Signing for `service` in `region` with these credentials.
    pub fn new(
        access_key_id: impl Into<String>,
        secret_access_key: impl Into<String>,
        session_token: Option<String>,
        region: impl Into<String>,
        service: impl Into<String>,
    ) -> Self {
        Self {
            access_key_id: access_key_id.into(),
            secret_access_key: secret_access_key.into(),
            session_token: session_token.filter(|t| !t.is_empty()),
            region: region.into(),
            service: service.into(),
        }
    }

    /// Signing for `execute-api`, with the region given (`--region`) or else `AWS_REGION` or
    /// `AWS_DEFAULT_REGION`, and the credentials of `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`
    /// and (for temporary credentials) `AWS_SESSION_TOKEN`, as `var` reads them.
    pub fn from_env(region: Option<&str>, var: impl Fn(&str) -> Option<String>) -> Result<Self, ClientError> {
        let var = |name: &str| var(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        let key = var("AWS_ACCESS_KEY_ID");
        let secret = var("AWS_SECRET_ACCESS_KEY");
        let (key, secret) = match (key, secret) {
            (Some(k), Some(s)) => (k, s),
            (k, s) => {
                let missing: Vec<&str> = [("AWS_ACCESS_KEY_ID", k.is_none()), ("AWS_SECRET_ACCESS_KEY", s.is_none())]
                    .into_iter()
                    .filter_map(|(name, absent)| absent.then_some(name))
                    .collect();
                return Err(ClientError::Signing {
                    code: "missing_credentials",
                    message: format!(
                        "an AWS deployment's admin API takes SigV4-signed requests, which need AWS credentials: \
                         set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for temporary \
                         credentials); not set: {}",
                        missing.join(", ")
                    ),
                });
            }
        };
        let region = region.map(str::trim).filter(|r| !r.is_empty()).map(str::to_string);
        let Some(region) = region.or_else(|| var("AWS_REGION")).or_else(|| var("AWS_DEFAULT_REGION")) else {
            return Err(ClientError::Signing {
                code: "missing_region",
                message: "SigV4-signed requests need the deployment's AWS region: pass --region or set AWS_REGION \
                          (or AWS_DEFAULT_REGION)"
                    .to_string(),
            });
        };
        Ok(Self::new(key, secret, var("AWS_SESSION_TOKEN"), region, EXECUTE_API))
    }

    /// Signs `req` as it stands (method, URL, headers and body) as of `time`: adds
    /// `x-amz-date`, `authorization` and, with a session token, `x-amz-security-token`.
    pub fn sign(&self, req: &mut reqwest::Request, time: SystemTime) -> Result<(), ClientError> {
        use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
        use aws_sigv4::sign::v4;

        let failed = |e: &dyn std::fmt::Display| ClientError::Signing {
            code: "signing_failed",
            message: format!("cannot sign the request: {e}"),
        };
        let credentials = aws_credential_types::Credentials::new(
            &self.access_key_id,
            &self.secret_access_key,
            self.session_token.clone(),
            None,
            "leadflow",
        );
        let identity = credentials.into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name(&self.service)
            .time(time)
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| failed(&e))?
            .into();
        let headers = req
            .headers()
            .iter()
            .map(|(name, value)| value.to_str().map(|v| (name.as_str(), v)))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| failed(&e))?;
        let body = match req.body() {
            None => SignableBody::Bytes(&[]),
            Some(body) => match body.as_bytes() {
                Some(bytes) => SignableBody::Bytes(bytes),
                None => return Err(failed(&"a streamed body cannot be signed")),
            },
        };
        let signable = SignableRequest::new(req.method().as_str(), req.url().as_str(), headers.into_iter(), body)
            .map_err(|e| failed(&e))?;
        let (instructions, _signature) = sign(signable, &params).map_err(|e| failed(&e))?.into_parts();
        let (signed_headers, _params) = instructions.into_parts();
        for header in signed_headers {
            let name = reqwest::header::HeaderName::from_bytes(header.name().as_bytes()).map_err(|e| failed(&e))?;
            let mut value = reqwest::header::HeaderValue::from_str(header.value()).map_err(|e| failed(&e))?;
            value.set_sensitive(header.sensitive());
            req.headers_mut().insert(name, value);
        }
        Ok(())
    }
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

    // --- leads --------------------------------------------------------------------------

    pub async fn lead_show(&self, id: &str) -> Result<Value, ClientError> {
        self.json(Method::GET, self.url(&["admin", "leads", id], &[]), None).await
    }

    pub async fn lead_find(&self, email: &str) -> Result<Value, ClientError> {
        self.json(Method::GET, self.url(&["admin", "leads"], &[("email", Some(email))]), None).await
    }

    pub async fn lead_search(&self, filters: &LeadFilters) -> Result<Value, ClientError> {
        self.json(Method::GET, self.url(&["admin", "leads"], &filters.query()), None).await
    }

    /// Marks the lead `status` (`contacted`, `won`, `lost`).
    pub async fn lead_mark(
        &self,
        id: &str,
        status: &str,
        by: Option<&str>,
        note: Option<&str>,
    ) -> Result<Value, ClientError> {
        let body = serde_json::json!({ "status": status, "by": by, "note": note });
        self.json(Method::POST, self.url(&["admin", "leads", id, "status"], &[]), Some(Body::Json(body))).await
    }

    /// Every lead matching `filters`, as the API writes it (CSV or JSON text).
    pub async fn lead_export(&self, format: &str, filters: &LeadFilters) -> Result<String, ClientError> {
        let mut query = filters.query();
        query.push(("format", Some(format)));
        let (_, text) = self.send(Method::GET, self.url(&["admin", "leads", "export"], &query), None).await?;
        Ok(text)
    }

    pub async fn lead_erase(&self, id: &str) -> Result<Value, ClientError> {
        self.json(Method::DELETE, self.url(&["admin", "leads", id], &[]), None).await
    }

    // --- reports ------------------------------------------------------------------------

    pub async fn funnel(&self, by: &str, since: Option<&str>, until: Option<&str>) -> Result<Value, ClientError> {
        let query = [("by", Some(by)), ("since", since), ("until", until)];
        self.json(Method::GET, self.url(&["admin", "reports", "funnel"], &query), None).await
    }

    // --- reps ---------------------------------------------------------------------------

    pub async fn reps(&self) -> Result<Value, ClientError> {
        self.json(Method::GET, self.url(&["admin", "reps"], &[]), None).await
    }

    pub async fn rep(&self, id: &str) -> Result<Value, ClientError> {
        self.json(Method::GET, self.url(&["admin", "reps", id], &[]), None).await
    }

    /// Creates the rep or changes the fields of `patch`.
    pub async fn rep_set(&self, id: &str, patch: Value) -> Result<Value, ClientError> {
        self.json(Method::PUT, self.url(&["admin", "reps", id], &[]), Some(Body::Json(patch))).await
    }

    /// Out of office between two RFC 3339 times.
    pub async fn rep_ooo(&self, id: &str, from: &str, until: &str) -> Result<Value, ClientError> {
        let body = serde_json::json!({ "from": from, "until": until });
        self.json(Method::POST, self.url(&["admin", "reps", id, "ooo"], &[]), Some(Body::Json(body))).await
    }

    pub async fn rep_back(&self, id: &str) -> Result<Value, ClientError> {
        self.json(Method::DELETE, self.url(&["admin", "reps", id, "ooo"], &[]), None).await
    }

    // --- teams --------------------------------------------------------------------------

    pub async fn teams(&self) -> Result<Value, ClientError> {
        self.json(Method::GET, self.url(&["admin", "teams"], &[]), None).await
    }

    pub async fn team(&self, id: &str) -> Result<Value, ClientError> {
        self.json(Method::GET, self.url(&["admin", "teams", id], &[]), None).await
    }

    // --- dead letters --------------------------------------------------------------------

    /// `GET /admin/dead-letters`: every stage's, or `stage`'s.
    pub async fn dead_letters(&self, stage: Option<&str>, limit: Option<&str>) -> Result<Value, ClientError> {
        self.json(Method::GET, self.url(&["admin", "dead-letters"], &[("stage", stage), ("limit", limit)]), None).await
    }

    pub async fn dead_letters_redrive(&self, stage: &str) -> Result<Value, ClientError> {
        self.json(Method::POST, self.url(&["admin", "dead-letters", stage, "redrive"], &[]), None).await
    }

    // --- the local stack's console ------------------------------------------------------

    /// A one-time console sign-in link from the local stack (`POST /dev/sign-in-link`): for
    /// `email` (default: the local admin), landing on `next` (a console path).
    pub async fn sign_in_link(&self, email: Option<&str>, next: Option<&str>) -> Result<Value, ClientError> {
        // Fields not given are left out, so that the stack's defaults apply.
        let mut body = serde_json::Map::new();
        if let Some(email) = email {
            body.insert("email".into(), Value::String(email.to_string()));
        }
        if let Some(next) = next {
            body.insert("next".into(), Value::String(next.to_string()));
        }
        let url = self.url(&["dev", "sign-in-link"], &[]);
        self.json(Method::POST, url, Some(Body::Json(Value::Object(body)))).await
    }

    // --- campaigns ----------------------------------------------------------------------

    /// Applies a campaign file; `format` is `yaml`, `json` or `toml`.
    pub async fn campaign_apply(&self, text: String, format: &str) -> Result<Value, ClientError> {
        let content_type = match format {
            "json" => "application/json",
            "toml" => "application/toml",
            _ => "application/yaml",
        };
        self.json(Method::POST, self.url(&["admin", "campaigns"], &[]), Some(Body::Text(text, content_type))).await
    }

    pub async fn campaigns(&self) -> Result<Value, ClientError> {
        self.json(Method::GET, self.url(&["admin", "campaigns"], &[]), None).await
    }

    pub async fn campaign(&self, id: &str) -> Result<Value, ClientError> {
        self.json(Method::GET, self.url(&["admin", "campaigns", id], &[]), None).await
    }

    pub async fn campaign_pause(&self, id: &str) -> Result<Value, ClientError> {
        self.json(Method::POST, self.url(&["admin", "campaigns", id, "pause"], &[]), None).await
    }

    pub async fn campaign_resume(&self, id: &str) -> Result<Value, ClientError> {
        self.json(Method::POST, self.url(&["admin", "campaigns", id, "resume"], &[]), None).await
    }

    /// Moves enrolled leads of older versions (or of `from_version` only) to the latest.
    pub async fn campaign_migrate(&self, id: &str, from_version: Option<u32>) -> Result<Value, ClientError> {
        let body = serde_json::json!({ "from_version": from_version });
        self.json(Method::POST, self.url(&["admin", "campaigns", id, "migrate"], &[]), Some(Body::Json(body))).await
    }

    /// A new schedule (RFC 3339 times; `None`: no bound).
    pub async fn campaign_schedule(
        &self,
        id: &str,
        start: Option<&str>,
        end: Option<&str>,
    ) -> Result<Value, ClientError> {
        let body = serde_json::json!({ "start": start, "end": end });
        self.json(Method::POST, self.url(&["admin", "campaigns", id, "schedule"], &[]), Some(Body::Json(body))).await
    }

    pub async fn campaign_preview(
        &self,
        id: &str,
        lead: &str,
        step: &str,
        version: Option<&str>,
    ) -> Result<Value, ClientError> {
        let query = [("lead", Some(lead)), ("step", Some(step)), ("version", version)];
        self.json(Method::GET, self.url(&["admin", "campaigns", id, "preview"], &query), None).await
    }
}

/// The filters of lead search and export.
#[derive(Debug, Clone, Default)]
pub struct LeadFilters {
    pub q: Option<String>,
    pub status: Option<String>,
    pub lifecycle: Option<String>,
    pub owner: Option<String>,
    pub source: Option<String>,
    pub limit: Option<String>,
    pub cursor: Option<String>,
}

impl LeadFilters {
    fn query(&self) -> Vec<(&'static str, Option<&str>)> {
        vec![
            ("q", self.q.as_deref()),
            ("status", self.status.as_deref()),
            ("lifecycle", self.lifecycle.as_deref()),
            ("owner", self.owner.as_deref()),
            ("source", self.source.as_deref()),
            ("limit", self.limit.as_deref()),
            ("cursor", self.cursor.as_deref()),
        ]
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

/// The API's `{"error": {"code", "message", "field"}}`, or what else came back.
fn api_error(status: StatusCode, text: &str) -> ClientError {
    let parsed: Option<Value> = serde_json::from_str(text).ok();
    let error = parsed.as_ref().map(|v| &v["error"]);
    match error.and_then(|e| e["code"].as_str().zip(e["message"].as_str()).map(|(c, m)| (e, c, m))) {
        Some((e, code, message)) => ClientError::Api {
            status: status.as_u16(),
            code: code.to_string(),
            message: message.to_string(),
            field: e["field"].as_str().map(str::to_string),
        },
        None => ClientError::Unexpected { status: status.as_u16(), body: excerpt(text) },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "AKIDEXAMPLE";
    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

    /// 2015-08-30T12:36:00Z, the time of AWS's SigV4 test suite.
    fn suite_time() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_440_938_160)
    }

    fn header<'a>(req: &'a reqwest::Request, name: &str) -> Option<&'a str> {
        req.headers().get(name).and_then(|v| v.to_str().ok())
    }

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

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: Vec<(String, String)> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }

    /// AWS's SigV4 test suite, `get-vanilla`: GET / with only host and x-amz-date signed.
    #[test]
    fn signs_the_get_vanilla_vector_of_the_sigv4_test_suite() {
        let signer = SigV4::new(KEY, SECRET, None, "us-east-1", "service");
        let url = Url::parse("https://example.amazonaws.com/").unwrap_or_else(|e| panic!("{e}"));
        let mut req = reqwest::Request::new(Method::GET, url);
        if let Err(e) = signer.sign(&mut req, suite_time()) {
            panic!("not signed: {e}");
        }
        assert_eq!(header(&req, "x-amz-date"), Some("20150830T123600Z"));
        assert_eq!(
            header(&req, "authorization"),
            Some(
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
                 SignedHeaders=host;x-amz-date, \
                 Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
            )
        );
        assert!(header(&req, "x-amz-security-token").is_none());
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

    #[test]
    fn credentials_and_region_come_from_the_environment() {
        let missing = SigV4::from_env(Some("eu-west-1"), env(&[("AWS_SECRET_ACCESS_KEY", "shh-secret")])).err();
        assert_eq!(missing.as_ref().map(ClientError::code), Some("missing_credentials"));
        let message = missing.map(|e| e.message()).unwrap_or_default();
        assert!(message.contains("not set: AWS_ACCESS_KEY_ID") && !message.contains("shh-secret"), "{message}");

        let keys = [("AWS_ACCESS_KEY_ID", "AKID"), ("AWS_SECRET_ACCESS_KEY", "shh-secret")];
        let no_region = SigV4::from_env(None, env(&keys)).err();
        assert_eq!(no_region.as_ref().map(ClientError::code), Some("missing_region"));

        let region = |flag: Option<&str>, vars: &[(&str, &str)]| {
            let all: Vec<(&str, &str)> = keys.iter().chain(vars).copied().collect();
            SigV4::from_env(flag, env(&all)).map(|s| s.region).ok()
        };
        let both = [("AWS_REGION", "eu-west-1"), ("AWS_DEFAULT_REGION", "us-east-1")];
        assert_eq!(region(Some("eu-central-1"), &both).as_deref(), Some("eu-central-1"));
        assert_eq!(region(None, &both).as_deref(), Some("eu-west-1"));
        assert_eq!(region(None, &both[1..]).as_deref(), Some("us-east-1"));

        let signer = SigV4::from_env(Some("eu-west-1"), env(&keys)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(signer.service, EXECUTE_API);
        assert!(signer.session_token.is_none());
        assert!(!format!("{signer:?}").contains("shh-secret"));
    }
}
