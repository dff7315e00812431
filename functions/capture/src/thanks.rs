//! The default thank-you page (`GET /thanks`), where a plain HTML form lands when its form id has
//! no `redirect` of its own, branded by the `[thanks]` table of `leadflow.toml`.

use std::sync::{Arc, OnceLock};

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use leadflow_core::ports::Ports;
use minijinja::Environment;
use serde::{Deserialize, Serialize};
use tracing::{error, warn};

/// Where a browser's form post goes when its form has no `redirect`.
pub const PATH: &str = "/thanks";

/// `[thanks]` in `leadflow.toml`. Read here rather than in the shared settings: only capture
/// shows this page, and the shared settings ignore tables they do not know.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ThanksSettings {
    pub heading: String,
    pub message: String,
    /// `#rgb` or `#rrggbb`; anything else is ignored, since it is written into the page's CSS.
    pub brand_color: String,
    /// A link back to the site (http or https only); none when absent.
    pub back_url: Option<String>,
    pub back_label: String,
}

const DEFAULT_COLOR: &str = "#1f883d";

impl Default for ThanksSettings {
    fn default() -> Self {
        Self {
            heading: "Thank you \u{2014} we\u{2019}ll be in touch".into(),
            message: "Your details reached us. Someone from our team will get back to you soon.".into(),
            brand_color: DEFAULT_COLOR.into(),
            back_url: None,
            back_label: "Back to the site".into(),
        }
    }
}

#[derive(Deserialize)]
struct SettingsFile {
    #[serde(default)]
    thanks: ThanksSettings,
}

impl ThanksSettings {
    /// The `[thanks]` table of a `leadflow.toml` text, made safe to print: a setting that does
    /// not parse leaves the defaults (the page must show whatever the file says) and is logged.
    pub fn from_settings_text(text: &str) -> Self {
        let mut s = match toml::from_str::<SettingsFile>(text) {
            Ok(file) => file.thanks,
            Err(e) => {
                warn!(error = %e, "[thanks] in leadflow.toml does not parse; the default thank-you page is shown");
                Self::default()
            }
        };
        if !is_hex_color(&s.brand_color) {
            warn!(brand_color = %s.brand_color, "[thanks] brand_color is not #rgb or #rrggbb; the default is used");
            s.brand_color = DEFAULT_COLOR.into();
        }
        if let Some(url) = &s.back_url
            && !(url.starts_with("https://") || url.starts_with("http://"))
        {
            warn!(back_url = %url, "[thanks] back_url is not an http(s) address; no link is shown");
            s.back_url = None;
        }
        s
    }
}

fn is_hex_color(c: &str) -> bool {
    c.strip_prefix('#').is_some_and(|h| matches!(h.len(), 3 | 6) && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn templates() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        // The `.html` name turns on minijinja's HTML auto-escaping.
        let mut env = Environment::new();
        if let Err(e) = env.add_template("thanks.html", include_str!("../templates/thanks.html")) {
            error!(error = %e, "the thank-you template does not compile");
        }
        env
    })
}

/// The page, with no script allowed, never framed.
pub async fn page<P: Ports>(State(ports): State<Arc<P>>) -> Response {
    let settings = ThanksSettings::from_settings_text(ports.settings().text());
    let (status, body) = match templates().get_template("thanks.html").and_then(|t| t.render(&settings)) {
        Ok(html) => (StatusCode::OK, html),
        Err(e) => {
            error!(error = %e, "the thank-you page failed to render");
            (
                StatusCode::OK,
                "<!DOCTYPE html><title>Thank you</title><p>Thank you. We\u{2019}ll be in touch.</p>".into(),
            )
        }
    };
    let mut resp = (status, body).into_response();
    let headers = resp.headers_mut();
    for (name, value) in [
        (header::CONTENT_TYPE, "text/html; charset=utf-8"),
        // Nothing personal on it; a short cache so a branding change shows within minutes.
        (header::CACHE_CONTROL, "public, max-age=300"),
        (header::REFERRER_POLICY, "strict-origin-when-cross-origin"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'",
        ),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_that_could_break_out_of_the_page_are_dropped() {
        let s = ThanksSettings::from_settings_text(
            "public_url = \"x\"\n[thanks]\nbrand_color = \"red;}body{display:none\"\nback_url = \"javascript:alert(1)\"\n",
        );
        assert_eq!(s.brand_color, DEFAULT_COLOR);
        assert_eq!(s.back_url, None);
        let s = ThanksSettings::from_settings_text(
            "[thanks]\nbrand_color = \"#0A6\"\nback_url = \"https://acme.example/\"\n",
        );
        assert_eq!(s.brand_color, "#0A6");
        assert_eq!(s.back_url.as_deref(), Some("https://acme.example/"));
    }

    #[test]
    fn an_unknown_key_leaves_the_defaults() {
        assert_eq!(ThanksSettings::from_settings_text("[thanks]\nheadline = \"typo\"\n"), ThanksSettings::default());
    }
}
