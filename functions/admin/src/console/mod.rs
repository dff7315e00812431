//! The console: server-rendered pages for sales and marketing, from the same router on Lambda
//! and in `leadflow dev`. Templates live in `functions/admin/templates` and are compiled once;
//! HTML is escaped by minijinja's auto-escaping, whatever a lead typed into a form.

pub mod act;

use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use leadflow_core::ports::Ports;
use minijinja::Environment;
use serde::Serialize;
use tracing::error;

/// The console's routes that need no session: the assignment email's one-click actions carry
/// their own signed credential.
pub fn public_router<P: Ports>(ports: Arc<P>) -> Router {
    Router::new().route("/console/act/{token}", get(act::confirm::<P>).post(act::perform::<P>)).with_state(ports)
}

fn templates() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        // Names ending in .html are escaped; every page is one.
        for (name, text) in [
            ("layout.html", include_str!("../../templates/layout.html")),
            ("act_confirm.html", include_str!("../../templates/act_confirm.html")),
            ("act_result.html", include_str!("../../templates/act_result.html")),
        ] {
            if let Err(e) = env.add_template(name, text) {
                // The templates ship inside the binary and are rendered by the tests: this is
                // a build mistake, told on the first page rather than by a panic.
                error!(template = name, error = %e, "a console template does not compile");
            }
        }
        env
    })
}

/// A page with the console's security headers: never cached (pages hold personal data and
/// links hold credentials), never sent as a referrer, never framed, no script.
pub(crate) fn page(status: StatusCode, template: &str, ctx: impl Serialize) -> Response {
    let rendered = templates().get_template(template).and_then(|t| t.render(ctx));
    let (status, body) = match rendered {
        Ok(html) => (status, html),
        Err(e) => {
            error!(template, error = %e, "a console page failed to render");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "<!DOCTYPE html><title>Error</title><p>This page could not be shown.</p>".into(),
            )
        }
    };
    let mut resp = (status, body).into_response();
    let headers = resp.headers_mut();
    for (name, value) in [
        (header::CONTENT_TYPE, "text/html; charset=utf-8"),
        (header::CACHE_CONTROL, "no-store"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    resp
}
