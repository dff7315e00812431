//! The optional CAPTCHA (`[capture.captcha]` in `leadflow.toml`; off unless configured): the
//! token the provider's widget put in the form is checked with the provider's server-side
//! verification before anything is claimed or queued. Turnstile, hCaptcha and reCAPTCHA share
//! the shape: a form POST of `secret` and `response`, answered `{"success": …, "error-codes":
//! […]}` (reCAPTCHA v3 adds a `score`).
//!
//! It fails closed: configured without its secret, or with the provider unreachable, capture
//! answers 503 rather than take submissions unchecked. The token is single-use at every
//! provider, so a retry must pass the widget again; cheap checks run first, so a submission
//! refused for a field keeps its token for the corrected one.

use std::sync::Arc;
use std::time::Duration;

use leadflow_core::config::CaptchaSettings;
use serde::Deserialize;
use tracing::{error, warn};

/// Where capture finds the provider's secret key.
pub const SECRET_VAR: &str = "LEADFLOW_CAPTCHA_SECRET";

/// The longest token sent on to the provider: Turnstile's are at most 2,048 characters.
const MAX_TOKEN_LEN: usize = 4096;

/// What capture checks submissions with.
#[derive(Clone)]
pub enum Captcha {
    /// Not configured: no check.
    Off,
    /// Configured but not usable (no secret): every submission is refused with a 503.
    Unusable {
        field: String,
    },
    On(Arc<Verifier>),
}

pub struct Verifier {
    client: reqwest::Client,
    url: String,
    field: String,
    secret: String,
    min_score: Option<f64>,
}

/// Why a submission did not pass.
#[derive(Debug, Clone, PartialEq)]
pub enum Refusal {
    /// No token in the form: the widget was not completed (or the page has none).
    Missing,
    /// The provider says the token is not good (wrong, used, expired, or a low score).
    Failed,
    /// The provider could not be asked, or refused our own request: not the visitor's fault.
    Unavailable(String),
}

impl Captcha {
    /// From the configuration and [`SECRET_VAR`].
    pub fn from_env(settings: Option<&CaptchaSettings>) -> Self {
        let Some(settings) = settings else { return Self::Off };
        match std::env::var(SECRET_VAR) {
            Ok(secret) if !secret.trim().is_empty() => Self::new(settings, secret.trim().to_string()),
            _ => {
                error!("capture.captcha is configured but {SECRET_VAR} is not set: every submission is refused");
                Self::Unusable { field: settings.field().to_string() }
            }
        }
    }

    pub fn new(settings: &CaptchaSettings, secret: String) -> Self {
        let built = reqwest::Client::builder().timeout(Duration::from_millis(u64::from(settings.timeout_ms))).build();
        match built {
            Ok(client) => Self::On(Arc::new(Verifier {
                client,
                url: settings.verify_url().to_string(),
                field: settings.field().to_string(),
                secret,
                min_score: settings.min_score,
            })),
            Err(e) => {
                error!(error = %e, "no HTTP client for the CAPTCHA check: every submission is refused");
                Self::Unusable { field: settings.field().to_string() }
            }
        }
    }

    /// The form field the widget fills, when a CAPTCHA is configured: never kept as a custom field.
    pub fn field(&self) -> Option<&str> {
        match self {
            Self::Off => None,
            Self::Unusable { field } => Some(field),
            Self::On(v) => Some(&v.field),
        }
    }

    /// Whether the submission's token passes; `Ok` when no CAPTCHA is configured.
    pub async fn check(&self, token: Option<&str>) -> Result<(), Refusal> {
        match self {
            Self::Off => Ok(()),
            Self::Unusable { .. } => Err(Refusal::Unavailable(format!("{SECRET_VAR} is not set"))),
            Self::On(v) => v.check(token).await,
        }
    }
}

#[derive(Deserialize)]
struct Answer {
    success: bool,
    #[serde(default, rename = "error-codes")]
    error_codes: Vec<String>,
    #[serde(default)]
    score: Option<f64>,
}

impl Verifier {
    async fn check(&self, token: Option<&str>) -> Result<(), Refusal> {
        let token = token.map(str::trim).filter(|t| !t.is_empty()).ok_or(Refusal::Missing)?;
        if token.len() > MAX_TOKEN_LEN {
            return Err(Refusal::Failed);
        }
        let sent = self.client.post(&self.url).form(&[("secret", self.secret.as_str()), ("response", token)]).send();
        let response = sent.await.map_err(|e| Refusal::Unavailable(format!("the provider did not answer: {e}")))?;
        if !response.status().is_success() {
            return Err(Refusal::Unavailable(format!("the provider answered {}", response.status())));
        }
        let answer: Answer = response
            .json()
            .await
            .map_err(|e| Refusal::Unavailable(format!("the provider's answer is not JSON: {e}")))?;
        // Codes about our own request are a configuration fault, not a bot.
        if answer.error_codes.iter().any(|c| c.ends_with("-secret") || c == "bad-request" || c == "internal-error") {
            return Err(Refusal::Unavailable(format!("the provider refused the check: {:?}", answer.error_codes)));
        }
        if !answer.success {
            warn!(codes = ?answer.error_codes, "CAPTCHA not passed");
            return Err(Refusal::Failed);
        }
        if let (Some(min), Some(score)) = (self.min_score, answer.score)
            && score < min
        {
            warn!(score, "CAPTCHA score below the minimum");
            return Err(Refusal::Failed);
        }
        Ok(())
    }
}
