//! The deployment's settings (`leadflow.toml`) and the texts configuration is compiled from.
//! Below campaigns and templates, which render with them, and the compiled configuration,
//! which holds them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::ConfigError;
use crate::outgoing::Mailbox;
use crate::validate::ValidationSettings;
use crate::wait::FrequencyCap;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    /// The From of every email.
    pub sender: Mailbox,
    /// Where people reach this deployment (links in emails).
    pub public_url: String,
    /// The sender's postal address, printed in marketing emails.
    #[serde(default)]
    pub postal_address: String,
    #[serde(default)]
    pub capture: CaptureSettings,
    /// Per-form settings, by the `form` field the page posts.
    #[serde(default)]
    pub forms: BTreeMap<String, FormSettings>,
    #[serde(default)]
    pub validation: ValidationSettings,
    #[serde(default)]
    pub nurture: NurtureSettings,
    #[serde(default)]
    pub console: ConsoleSettings,
    /// The keys that sign every link (unsubscribe, double opt-in, sales actions) and console
    /// sessions. Never in a file: on AWS the functions read them from Secrets Manager at start;
    /// the local stack keeps its own in the data folder.
    #[serde(skip)]
    pub signing_keys: crate::signing::SigningKeys,
}

/// Who may use the console besides the reps, by email. A rep (by the email in the routing
/// configuration) signs in as sales; on AWS the Cognito groups decide instead.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct ConsoleSettings {
    pub admins: Vec<String>,
    pub marketing: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CaptureSettings {
    /// Origins allowed to post (CORS and the Origin check); `*` allows any.
    pub allowed_origins: Vec<String>,
    /// A field humans never fill: when it has a value the submission is answered and dropped.
    pub honeypot_field: String,
    pub max_custom_fields: usize,
    pub max_body_bytes: usize,
    /// Hours an Idempotency-Key keeps answering with the same lead id.
    pub idempotency_hours: u32,
    /// A CAPTCHA every submission must pass (`[capture.captcha]`); none by default.
    pub captcha: Option<CaptchaSettings>,
}

impl Default for CaptureSettings {
    fn default() -> Self {
        Self {
            allowed_origins: Vec::new(),
            honeypot_field: "_gotcha".into(),
            max_custom_fields: 20,
            max_body_bytes: 16 * 1024,
            idempotency_hours: 24,
            captcha: None,
        }
    }
}

/// A CAPTCHA checked by its provider's server-side verification (`siteverify`: Turnstile,
/// hCaptcha and reCAPTCHA share its form POST and its `success` answer). The secret is never in
/// a file: capture reads it from `LEADFLOW_CAPTCHA_SECRET`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaptchaSettings {
    pub provider: CaptchaProvider,
    /// The verification endpoint; the provider's own unless set (a test's fake, a proxy).
    #[serde(default)]
    pub verify_url: Option<String>,
    /// The form field the provider's widget fills; the provider's usual one unless set.
    #[serde(default)]
    pub field: Option<String>,
    /// How long capture waits for the provider, 100 to 10,000 ms.
    #[serde(default = "default_captcha_timeout_ms")]
    pub timeout_ms: u32,
    /// reCAPTCHA v3 only: the lowest score accepted, 0.0 to 1.0. Answers without a score pass on
    /// `success` alone.
    #[serde(default)]
    pub min_score: Option<f64>,
}

fn default_captcha_timeout_ms() -> u32 {
    3000
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CaptchaProvider {
    Turnstile,
    Hcaptcha,
    Recaptcha,
}

impl CaptchaSettings {
    pub fn verify_url(&self) -> &str {
        self.verify_url.as_deref().unwrap_or(match self.provider {
            CaptchaProvider::Turnstile => "https://challenges.cloudflare.com/turnstile/v0/siteverify",
            CaptchaProvider::Hcaptcha => "https://api.hcaptcha.com/siteverify",
            CaptchaProvider::Recaptcha => "https://www.google.com/recaptcha/api/siteverify",
        })
    }

    pub fn field(&self) -> &str {
        self.field.as_deref().unwrap_or(match self.provider {
            CaptchaProvider::Turnstile => "cf-turnstile-response",
            CaptchaProvider::Hcaptcha => "h-captcha-response",
            CaptchaProvider::Recaptcha => "g-recaptcha-response",
        })
    }

    pub(crate) fn check(&self) -> Result<(), ConfigError> {
        let invalid = |what: &str, message: &str| {
            Err(ConfigError::Invalid {
                what: format!("leadflow.toml: capture.captcha.{what}"),
                message: message.into(),
            })
        };
        if !(100..=10_000).contains(&self.timeout_ms) {
            return invalid("timeout_ms", "must be 100 to 10000 milliseconds");
        }
        if self.min_score.is_some_and(|s| !(0.0..=1.0).contains(&s)) {
            return invalid("min_score", "must be 0.0 to 1.0");
        }
        let url = self.verify_url();
        if !(url.starts_with("https://") || url.starts_with("http://")) || url.len() > 2048 {
            return invalid("verify_url", "must be an http(s) address");
        }
        let field = self.field();
        if field.is_empty() || field.len() > 64 {
            return invalid("field", "must be 1 to 64 characters");
        }
        Ok(())
    }
}

/// Rules for every campaign.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct NurtureSettings {
    /// At most this many marketing emails per lead in a period, across all campaigns.
    pub frequency_cap: Option<FrequencyCap>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FormSettings {
    /// Thank-you page a plain HTML form is sent to (303) after a submission.
    pub redirect: Option<String>,
    /// Double opt-in: consent ticked on this form is recorded only once the person confirms it
    /// from the email sent to the address (`leadflow_core::confirmation`). On unless a form says
    /// `double_opt_in = false`, and a form not listed has it on: anyone can type anyone's address.
    pub double_opt_in: bool,
}

impl Default for FormSettings {
    fn default() -> Self {
        Self { redirect: None, double_opt_in: true }
    }
}

impl Settings {
    /// The settings of the form a submission names; a form not listed (or none) has the defaults.
    pub fn form(&self, form: Option<&str>) -> FormSettings {
        form.and_then(|f| self.forms.get(f)).cloned().unwrap_or_default()
    }
}

/// The texts configuration is made of.
#[derive(Debug, Clone, Default)]
pub struct ConfigSources {
    pub settings: String,
    pub scoring: String,
    pub routing: String,
    /// `(file name, text)` of each campaign.
    pub campaigns: Vec<(String, String)>,
    pub assignment_subject: String,
    pub assignment_text: String,
    pub assignment_html: String,
    /// How the texts above are read: TOML as written, or JSON made from it at build time.
    pub reader: crate::config::SourceReader,
}
