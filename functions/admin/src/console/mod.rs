//! The console: server-rendered pages for sales and marketing, from the same router on Lambda
//! and in `leadflow dev`. Templates live in `functions/admin/templates` and are compiled once;
//! HTML is escaped by minijinja's auto-escaping, whatever a lead typed into a form.
//!
//! | route | who | what |
//! |---|---|---|
//! | `GET /console` | signed in | a rep's leads, or the home page |
//! | `GET /console/sign-in`, `GET/POST /console/sign-in/code/{code}` | anybody | signing in |
//! | `POST /console/sign-out` | signed in | signing out |
//! | `POST /console/view-as` | admin | see the console as a rep does |
//! | `GET /console/leads/mine` | a rep (or an admin viewing as one) | open leads, newest first |
//! | `GET /console/leads/{id}` | the lead's rep, marketing, admin | the whole lead |
//! | `POST /console/leads/{id}/status` | the lead's rep, admin | contacted, won, lost, with a note |
//! | `GET/POST /console/act/{token}` | the link's holder | the assignment email's one-click actions |
//! | `GET /console/leads?q=&stage=&grade=&owner=&source=&campaign=&since=&until=` | marketing, admin | every lead, filtered, newest first, 25 a page |
//! | `GET /console/leads/export.csv?<the same filters>` | marketing, admin | the matching leads as CSV, streamed |
//! | `GET /console/suppressions?email=` | marketing, admin | the suppression list; is an address on it |
//! | `GET /console/reports/funnel?by=&since=&until=` | marketing, admin | the funnel, drawn and tabled |
//! | `GET /console/campaigns`, `GET /console/campaigns/{id}` | marketing, admin | campaigns, a campaign with its figures and versions |
//! | `GET/POST /console/campaigns/{id}/edit`, `GET …/preview` | marketing, admin | the YAML editor, a step rendered |
//! | `POST /console/campaigns/{id}/pause`, `…/resume`, `…/schedule` | marketing, admin | the next version, changed |
//! | `GET/POST /console/campaigns/new`, `GET/POST /console/campaigns/{id}/migrate` | marketing, admin | a new campaign (version 1); moving enrolled leads to the latest version |
//! | `GET /console/admin/reps`, `GET/POST /console/admin/reps/{id}` (`…/new`) | admin | reps; a rep's form, saved as the next routing version |
//! | `GET /console/admin/teams`, `GET/POST /console/admin/teams/{id}` (`…/new`) | admin | teams in matching order; a team's conditions and weights |
//! | `GET/POST /console/leads/{id}/erase` | admin | what erasure removes and keeps; erasing, once the address is typed |
//! | `GET /console/admin/rules` | admin | the scoring and routing rules, their versions |
//! | `GET/POST /console/admin/rules/scoring`, `…/routing` | admin | the TOML editor: try a draft on the last 1,000 leads (writes nothing), save it as the next version |
//!
//! Every POST but the one-click actions (whose signed link is the credential) carries the
//! session's CSRF token and must come from this origin.

pub mod act;
pub mod admin;
pub mod campaign_actions;
pub mod campaign_yaml;
pub mod campaigns;
pub mod cognito;
pub mod funnel;
pub mod lead_csv;
pub mod lead_list;
pub mod leads;
pub mod session;
pub mod sign_in;
pub mod suppressions;

use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::Utc;
use leadflow_core::config::CompiledConfig;
use leadflow_core::ports::Ports;
use minijinja::Environment;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tracing::error;

use admin::entry;
use admin::reps::Reps;
use admin::teams::Teams;
use session::{Role, Session};
pub use sign_in::{LocalCodes, SignIn};

/// What the console's handlers share.
pub struct Console<P> {
    pub ports: Arc<P>,
    pub sign_in: SignIn,
}

/// Every console route. `sign_in` says how people sign in here.
pub fn router<P: Ports>(ports: Arc<P>, sign_in: SignIn) -> Router {
    let act = Router::new()
        .route("/console/act/{token}", get(act::confirm::<P>).post(act::perform::<P>))
        .with_state(Arc::clone(&ports));
    let console = Arc::new(Console { ports, sign_in });
    Router::new()
        .route("/console", get(home::<P>))
        .route("/console/sign-in", get(sign_in::sign_in_page::<P>))
        .route("/console/sign-in/code/{code}", get(sign_in::code_page::<P>).post(sign_in::redeem::<P>))
        .route("/console/sign-out", post(sign_in::sign_out::<P>))
        .route("/console/signed-out", get(sign_in::signed_out_page))
        .route("/console/view-as", post(view_as::<P>))
        .route("/console/leads/mine", get(leads::mine::<P>))
        .route("/console/leads", get(lead_list::page::<P>))
        .route("/console/leads/export.csv", get(lead_csv::export::<P>))
        .route("/console/suppressions", get(suppressions::page::<P>))
        .route("/console/leads/{id}", get(leads::show::<P>))
        .route("/console/leads/{id}/status", post(leads::mark::<P>))
        .route("/console/reports/funnel", get(funnel::page::<P>))
        .route("/console/campaigns", get(campaigns::list::<P>))
        .route("/console/campaigns/{id}", get(campaigns::show::<P>))
        .route("/console/campaigns/{id}/edit", get(campaigns::edit::<P>).post(campaigns::save::<P>))
        .route("/console/campaigns/{id}/preview", get(campaigns::preview::<P>))
        .route("/console/campaigns/new", get(campaign_actions::new_form::<P>).post(campaign_actions::create::<P>))
        .route("/console/campaigns/{id}/pause", post(campaign_actions::pause::<P>))
        .route("/console/campaigns/{id}/resume", post(campaign_actions::resume::<P>))
        .route("/console/campaigns/{id}/schedule", post(campaign_actions::schedule::<P>))
        .route(
            "/console/campaigns/{id}/migrate",
            get(campaign_actions::migrate_confirm::<P>).post(campaign_actions::migrate::<P>),
        )
        .route("/console/admin/reps", get(admin::reps::list::<P>))
        .route("/console/admin/reps/new", get(entry::new_form::<P, Reps>).post(entry::create::<P, Reps>))
        .route("/console/admin/reps/{id}", get(entry::edit::<P, Reps>).post(entry::update::<P, Reps>))
        .route("/console/admin/teams", get(admin::teams::list::<P>))
        .route("/console/admin/teams/new", get(entry::new_form::<P, Teams>).post(entry::create::<P, Teams>))
        .route("/console/admin/teams/{id}", get(entry::edit::<P, Teams>).post(entry::update::<P, Teams>))
        .route("/console/leads/{id}/erase", get(admin::erase::confirm::<P>).post(admin::erase::erase::<P>))
        .route("/console/admin/rules", get(admin::rules::overview::<P>))
        .route("/console/admin/rules/scoring", get(admin::rules::scoring::<P>).post(admin::rules::scoring_post::<P>))
        .route("/console/admin/rules/routing", get(admin::rules::routing::<P>).post(admin::rules::routing_post::<P>))
        .with_state(Arc::clone(&console))
        .merge(act)
        .merge(auth_routes(console))
}

/// Cognito's callback and the refresh of a session that ended.
fn auth_routes<P: Ports>(console: Arc<Console<P>>) -> Router {
    Router::new()
        .route("/console/auth/callback", get(cognito::callback::<P>))
        .route("/console/auth/refresh", get(cognito::refresh::<P>))
        .with_state(console)
}

/// The session cookie is Secure when people reach this deployment over https.
pub(crate) fn session_cookie_secure(config: &CompiledConfig) -> bool {
    config.settings.public_url.trim_start().to_ascii_lowercase().starts_with("https://")
}

/// A signed-in person, with the CSRF token their forms carry. A request without a valid session
/// is sent to sign in, and back to the page it asked for afterwards.
pub struct Signed {
    pub session: Session,
    pub csrf: String,
}

impl<P: Ports> FromRequestParts<Arc<Console<P>>> for Signed {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, console: &Arc<Console<P>>) -> Result<Self, Response> {
        let config = console.ports.config();
        let secret = &config.settings.signing_keys;
        let cookies = parts.headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok());
        let opened = session::cookie_value(cookies).and_then(|v| session::open(secret, v, Utc::now()).ok());
        let local = matches!(console.sign_in, SignIn::Local(_));
        let session = opened.and_then(|s| still_allowed(&config, s, local));
        match session {
            Some(session) => Ok(Signed { csrf: session::csrf_token(secret, &session), session }),
            None => {
                let get = parts.method == Method::GET;
                let back = if get { parts.uri.path_and_query().map(|p| p.as_str().to_string()) } else { None };
                let next = sign_in::safe_next(back.as_deref());
                if get && matches!(console.sign_in, SignIn::Cognito(_)) && cognito::can_refresh(&parts.headers) {
                    return Err(see_other(&format!("/console/auth/refresh?{}", query(&[("next", &next)]))));
                }
                Err(see_other(&format!("/console/sign-in?{}", query(&[("next", &next)]))))
            }
        }
    }
}

/// The session as the configuration stands now. Locally, where the configuration gives the
/// roles, a person taken off it loses the console at once and a changed role applies to the
/// next page; with a user pool, the groups gave the role at sign-in and the rep follows the email.
fn still_allowed(config: &CompiledConfig, mut s: Session, local: bool) -> Option<Session> {
    if s.email == sign_in::LOCAL_ADMIN {
        return local.then_some(s);
    }
    if !local {
        s.rep_id = config.routing.rep_by_email(&s.email).map(|r| r.id.clone());
        return (s.role != Role::Sales || s.rep_id.is_some()).then_some(s);
    }
    let (role, rep) = session::person_of(config, &s.email)?;
    s.role = role;
    s.rep_id = rep;
    if role != Role::Admin {
        s.view_as = None;
    }
    Some(s)
}

#[derive(Deserialize)]
struct CsrfField {
    #[serde(default)]
    csrf: String,
}

impl Signed {
    /// The form `body` holds, if it carries this session's CSRF token and comes from this origin;
    /// else the page that says the form was refused.
    pub fn form<T: DeserializeOwned + Default, P: Ports>(
        &self,
        ports: &P,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<T, Box<Response>> {
        let token: CsrfField = serde_urlencoded::from_bytes(body).unwrap_or(CsrfField { csrf: String::new() });
        let secret = ports.config().settings.signing_keys.clone();
        if !sign_in::same_origin(headers) || !session::csrf_ok(&secret, &self.session, &token.csrf) {
            return Err(Box::new(self.page(
                StatusCode::FORBIDDEN,
                "message.html",
                json!({
                    "kind": "refused",
                    "heading": "This form was refused",
                    "lines": ["It did not come from a Leadflow page of this sign-in. Go back, reload the page and try again."],
                }),
            )));
        }
        Ok(serde_urlencoded::from_bytes(body).unwrap_or_default())
    }

    /// A page for this person: the template also gets `me` (who, role, the rep acted as, the
    /// CSRF token for its forms).
    pub fn page(&self, status: StatusCode, template: &str, ctx: Value) -> Response {
        let mut ctx = ctx;
        if let Value::Object(map) = &mut ctx {
            map.insert(
                "me".into(),
                json!({
                    "email": self.session.email,
                    "role": self.session.role.as_str(),
                    "rep_id": self.session.rep_id,
                    "view_as": self.session.view_as,
                    "acting_rep": self.session.acting_rep(),
                    "csrf": self.csrf,
                }),
            );
        }
        page(status, template, ctx)
    }

    /// A short page that says why something cannot be done: a heading and a line.
    pub fn refusal(&self, status: StatusCode, heading: &str, line: &str) -> Response {
        self.page(status, "message.html", json!({ "kind": "refused", "heading": heading, "lines": [line] }))
    }

    /// The page a person sees where their role does not reach.
    pub fn forbidden(&self, heading: &str, line: &str) -> Response {
        self.refusal(StatusCode::FORBIDDEN, heading, line)
    }

    /// The page when the store cannot be read or written just now.
    pub fn unavailable(&self) -> Response {
        self.refusal(
            StatusCode::SERVICE_UNAVAILABLE,
            "Try again in a moment",
            "Leadflow could not read its data just now.",
        )
    }
}

/// `GET /console`: a rep (or an admin viewing as one) goes to their leads; anybody else gets
/// the home page.
async fn home<P: Ports>(State(console): State<Arc<Console<P>>>, signed: Signed) -> Response {
    if signed.session.acting_rep().is_some() {
        return see_other("/console/leads/mine");
    }
    home_page(&*console.ports, &signed, StatusCode::OK, json!({}))
}

fn home_page<P: Ports>(ports: &P, signed: &Signed, status: StatusCode, errors: Value) -> Response {
    let config = ports.config();
    let reps: Vec<Value> =
        config.routing.reps().iter().map(|r| json!({ "id": r.id, "name": r.name, "email": r.email })).collect();
    signed.page(status, "home.html", json!({ "reps": reps, "errors": errors }))
}

#[derive(Debug, Default, Deserialize)]
struct ViewAsForm {
    #[serde(default)]
    rep: String,
}

/// `POST /console/view-as`: an admin sees the console as a rep does (an empty rep: as
/// themselves again).
async fn view_as<P: Ports>(
    State(console): State<Arc<Console<P>>>,
    signed: Signed,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let form: ViewAsForm = match signed.form(&*console.ports, &headers, &body) {
        Ok(f) => f,
        Err(refused) => return *refused,
    };
    if signed.session.role != Role::Admin {
        return signed.forbidden("Only admins can view as a rep", "Your role does not include this.");
    }
    let rep = form.rep.trim();
    let mut session = signed.session.clone();
    if rep.is_empty() {
        session.view_as = None;
        return sign_in::with_session(&*console.ports, &session, see_other("/console"));
    }
    if console.ports.config().routing.rep(rep).is_none() {
        let errors = json!({ "rep": "No rep has this id any more: pick one from the list." });
        return home_page(&*console.ports, &signed, StatusCode::UNPROCESSABLE_ENTITY, errors);
    }
    session.view_as = Some(rep.to_string());
    sign_in::with_session(&*console.ports, &session, see_other("/console/leads/mine"))
}

/// `303 See Other` to `location`: where a form's POST sends the browser next.
pub(crate) fn see_other(location: &str) -> Response {
    let mut resp = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// A query string from pairs, encoded.
pub(crate) fn query(pairs: &[(&str, &str)]) -> String {
    serde_urlencoded::to_string(pairs).unwrap_or_default()
}

/// A count as a person reads it: 100,000.
pub(crate) fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(d);
    }
    out
}

fn templates() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        // Names ending in .html are escaped; every page is one.
        for (name, text) in [
            ("layout.html", include_str!("../../templates/layout.html")),
            ("form_fields.html", include_str!("../../templates/form_fields.html")),
            ("admin_form_head.html", include_str!("../../templates/admin_form_head.html")),
            ("act_confirm.html", include_str!("../../templates/act_confirm.html")),
            ("message.html", include_str!("../../templates/message.html")),
            ("sign_in.html", include_str!("../../templates/sign_in.html")),
            ("sign_in_code.html", include_str!("../../templates/sign_in_code.html")),
            ("signed_out.html", include_str!("../../templates/signed_out.html")),
            ("home.html", include_str!("../../templates/home.html")),
            ("my_leads.html", include_str!("../../templates/my_leads.html")),
            ("lead.html", include_str!("../../templates/lead.html")),
            ("funnel.html", include_str!("../../templates/funnel.html")),
            ("leads.html", include_str!("../../templates/leads.html")),
            ("suppressions.html", include_str!("../../templates/suppressions.html")),
            ("campaigns.html", include_str!("../../templates/campaigns.html")),
            ("campaign.html", include_str!("../../templates/campaign.html")),
            ("campaign_edit.html", include_str!("../../templates/campaign_edit.html")),
            ("campaign_preview.html", include_str!("../../templates/campaign_preview.html")),
            ("campaign_rendered.html", include_str!("../../templates/campaign_rendered.html")),
            ("campaign_migrate.html", include_str!("../../templates/campaign_migrate.html")),
            ("admin_reps.html", include_str!("../../templates/admin_reps.html")),
            ("admin_rep.html", include_str!("../../templates/admin_rep.html")),
            ("admin_teams.html", include_str!("../../templates/admin_teams.html")),
            ("admin_team.html", include_str!("../../templates/admin_team.html")),
            ("lead_erase.html", include_str!("../../templates/lead_erase.html")),
            ("rules.html", include_str!("../../templates/rules.html")),
            ("rules_edit.html", include_str!("../../templates/rules_edit.html")),
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
/// links hold credentials), never sent as a referrer to another site, never framed, no script.
/// (`no-referrer` would also make a browser send `Origin: null` with this site's own forms,
/// which the origin check refuses.)
pub(crate) fn page(status: StatusCode, template: &str, ctx: impl serde::Serialize) -> Response {
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
        (header::REFERRER_POLICY, "same-origin"),
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
