//! Admin: the authorized API for sales and marketing ops.
//!
//! | route | what |
//! |---|---|
//! | `GET /admin/leads?email=` | one lead by address |
//! | `GET /admin/leads?q=&status=&lifecycle=&owner=&source=&limit=&cursor=` | search (scans, see [`leads`]) |
//! | `GET /admin/leads/export?format=csv\|json&…` | every lead matching the same filters |
//! | `GET /admin/leads/{id}` | one lead with score reasons, owner, enrollments, trail |
//! | `POST /admin/leads/{id}/status` | contacted, won, lost |
//! | `DELETE /admin/leads/{id}` | erasure |
//! | `GET /admin/reports/funnel?by=source\|campaign\|week` | captured → valid → MQL → assigned → SQL → contacted → won |
//! | `GET /admin/reps`, `GET/PUT /admin/reps/{id}`, `POST/DELETE /admin/reps/{id}/ooo` | reps |
//! | `GET /admin/teams`, `GET/PUT /admin/teams/{id}` | teams |
//! | `GET/PUT /admin/rules/routing`, `GET/PUT /admin/rules/scoring` | whole rule sets |
//! | `GET /admin/campaigns`, `POST /admin/campaigns` (apply YAML or JSON) | campaigns |
//! | `GET /admin/campaigns/{id}` | latest version and the version list |
//! | `POST /admin/campaigns/{id}/pause`, `/resume`, `/schedule` | each a new version |
//! | `GET /admin/campaigns/{id}/preview?lead=&step=` | a drip email rendered for a lead |
//! | `POST /admin/campaigns/{id}/migrate` | move enrolled leads to the latest version |
//! | `GET /admin/dead-letters?stage=&limit=`, `POST /admin/dead-letters/{stage}/redrive` | dead letters ([`dead_letters::router`], merged by the builders) |
//!
//! Every route checks [`AdminAuth`] first. Every error answers
//! `{"error": {"code", "message", "field"}}`; a failing store answers 503.

pub mod campaigns;
pub mod config_docs;
pub mod console;
pub mod dead_letters;
pub mod error;
pub mod extract;
pub mod leads;
pub mod report;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};
use leadflow_core::ports::Ports;

pub use error::ApiError;

/// How callers prove they may use the admin API.
#[derive(Clone)]
pub enum AdminAuth {
    /// A bearer token (the local stack).
    Bearer(Arc<str>),
    /// Authorization is done in front of the function (API Gateway with IAM on AWS).
    Upstream,
}

pub struct AppState<P> {
    pub ports: Arc<P>,
    pub auth: AdminAuth,
}

pub type State<P> = axum::extract::State<Arc<AppState<P>>>;

pub fn router<P: Ports>(ports: Arc<P>, auth: AdminAuth) -> Router {
    Router::new()
        .route("/admin/leads", get(leads::search::<P>))
        .route("/admin/leads/export", get(leads::export::<P>))
        .route("/admin/leads/{id}", get(leads::show::<P>).delete(leads::erase::<P>))
        .route("/admin/leads/{id}/status", post(leads::set_status::<P>))
        .route("/admin/reports/funnel", get(report::funnel::<P>))
        .route("/admin/reps", get(config_docs::list_reps::<P>))
        .route("/admin/reps/{id}", get(config_docs::get_rep::<P>).put(config_docs::put_rep::<P>))
        .route("/admin/reps/{id}/ooo", post(config_docs::set_ooo::<P>).delete(config_docs::clear_ooo::<P>))
        .route("/admin/teams", get(config_docs::list_teams::<P>))
        .route("/admin/teams/{id}", get(config_docs::get_team::<P>).put(config_docs::put_team::<P>))
        .route("/admin/rules/routing", get(config_docs::get_routing::<P>).put(config_docs::put_routing::<P>))
        .route("/admin/rules/scoring", get(config_docs::get_scoring::<P>).put(config_docs::put_scoring::<P>))
        .route("/admin/campaigns", get(campaigns::list::<P>).post(campaigns::apply::<P>))
        .route("/admin/campaigns/{id}", get(campaigns::show::<P>))
        .route("/admin/campaigns/{id}/pause", post(campaigns::pause::<P>))
        .route("/admin/campaigns/{id}/resume", post(campaigns::resume::<P>))
        .route("/admin/campaigns/{id}/schedule", post(campaigns::schedule::<P>))
        .route("/admin/campaigns/{id}/preview", get(campaigns::preview::<P>))
        .route("/admin/campaigns/{id}/migrate", post(campaigns::migrate::<P>))
        .with_state(Arc::new(AppState { ports, auth }))
}
