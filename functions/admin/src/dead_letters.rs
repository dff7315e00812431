//! The dead letters of the stage queues, for operators:
//!
//! | route | what |
//! |---|---|
//! | `GET /admin/dead-letters?stage=&limit=` | each stage's dead letters (or one stage's), with the failure reason |
//! | `POST /admin/dead-letters/{stage}/redrive` | puts a stage's dead letters back on its queue |
//!
//! A router of its own, over the [`DeadLetters`] port rather than [`Ports`](leadflow_core::ports::Ports):
//! only the admin has dead letters to show, and the stage handlers never see them. Both
//! builders (the Lambda's `main` and the local stack) merge it into the admin router. Same
//! authorization and error shape as every other admin route.

use std::sync::Arc;

use axum::Router;
use axum::extract::{FromRequestParts, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use leadflow_core::dead_letters::{DeadLetterList, MAX_LIST};
use leadflow_core::error::QueueError;
use leadflow_core::ports::{DeadLetters, Stage};
use serde::Deserialize;
use serde_json::json;
use tracing::{info, warn};

use crate::AdminAuth;
use crate::error::{ApiError, ApiResult};
use crate::extract::{PathParams, QueryParams};

/// A listing's size when the request names none.
const DEFAULT_LIMIT: usize = 20;

pub struct DeadLetterState<D> {
    dead_letters: Arc<D>,
    auth: AdminAuth,
}

type St<D> = State<Arc<DeadLetterState<D>>>;

pub fn router<D: DeadLetters>(dead_letters: Arc<D>, auth: AdminAuth) -> Router {
    Router::new()
        .route("/admin/dead-letters", get(list::<D>))
        .route("/admin/dead-letters/{stage}/redrive", post(redrive::<D>))
        .with_state(Arc::new(DeadLetterState { dead_letters, auth }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    pub stage: Option<String>,
    pub limit: Option<String>,
}

/// Proof that the caller may use the admin API; taken first, so that an unauthorized request
/// learns nothing from how its query is answered.
pub struct Authorized;

impl<D: Send + Sync + 'static> FromRequestParts<Arc<DeadLetterState<D>>> for Authorized {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, st: &Arc<DeadLetterState<D>>) -> Result<Self, ApiError> {
        if st.auth.allows(&parts.headers) { Ok(Authorized) } else { Err(ApiError::unauthorized()) }
    }
}

fn stage_of(raw: &str) -> Option<Stage> {
    Stage::ALL.into_iter().find(|s| s.as_str() == raw)
}

fn parse_limit(raw: Option<&str>) -> ApiResult<usize> {
    match raw {
        None => Ok(DEFAULT_LIMIT),
        Some(raw) => raw
            .parse::<usize>()
            .ok()
            .filter(|l| (1..=MAX_LIST).contains(l))
            .ok_or_else(|| ApiError::invalid("limit", format!("must be a whole number from 1 to {MAX_LIST}"))),
    }
}

/// The queue service failed; its cause is logged, not answered.
fn unavailable(e: &QueueError) -> ApiError {
    warn!(error = %e, "dead-letter request failed on the queue service");
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "temporarily_unavailable",
        "The queue service is unavailable; try again.",
    )
}

/// `GET /admin/dead-letters?stage=&limit=`: `{"stages": [{stage, total, items}]}`, every stage
/// in pipeline order unless one is named; up to `limit` (1–100, default 20) dead letters each.
pub async fn list<D: DeadLetters>(
    _: Authorized,
    State(st): St<D>,
    QueryParams(q): QueryParams<ListQuery>,
) -> ApiResult<Response> {
    let stages: Vec<Stage> = match q.stage.as_deref().filter(|s| !s.is_empty()) {
        None => Stage::ALL.to_vec(),
        Some(raw) => {
            vec![stage_of(raw).ok_or_else(|| ApiError::invalid("stage", "must be one of validate, score, route"))?]
        }
    };
    let limit = parse_limit(q.limit.as_deref())?;
    let mut lists: Vec<DeadLetterList> = Vec::with_capacity(stages.len());
    for stage in stages {
        lists.push(st.dead_letters.list(stage, limit).await.map_err(|e| unavailable(&e))?);
    }
    Ok(axum::Json(json!({ "stages": lists })).into_response())
}

/// `POST /admin/dead-letters/{stage}/redrive`: every dead letter of the stage back on its queue
/// (locally at once; on AWS by an SQS move task, whose handle is answered).
pub async fn redrive<D: DeadLetters>(
    _: Authorized,
    State(st): St<D>,
    PathParams(stage): PathParams<String>,
) -> ApiResult<Response> {
    let stage = stage_of(&stage).ok_or_else(|| {
        ApiError::not_found("no_such_stage", format!("No stage `{stage}`; the stages are validate, score and route."))
    })?;
    let redrive = st.dead_letters.redrive(stage).await.map_err(|e| unavailable(&e))?;
    info!(stage = stage.as_str(), messages = redrive.messages, done = redrive.done, "dead letters redriven");
    Ok(axum::Json(redrive).into_response())
}
