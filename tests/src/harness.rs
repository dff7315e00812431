//! The pipeline's handlers over a queue the test drives: capture a lead over the real router,
//! then deliver what each stage queued until nothing is left.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use leadflow_app::{BatchItem, Failure};
use leadflow_core::model::LeadId;
use leadflow_core::ports::{Adapters, Clock, ConfigHandle, EventBus, LeadStore, Mailer, Ports, Stage};
use leadflow_memory::{MemoryQueue, MemoryStore, RecordingBus, RecordingMailer, SettableClock};
use serde_json::Value;
use tower::ServiceExt;

/// Every port in memory, the clock set by the test.
pub type MemPorts = Adapters<MemoryStore, MemoryQueue, RecordingMailer, RecordingBus, SettableClock>;

/// In-memory ports on the test configuration, at `now`.
pub fn memory_ports(now: chrono::DateTime<chrono::Utc>) -> Arc<MemPorts> {
    Arc::new(Adapters {
        store: MemoryStore::new(),
        queue: MemoryQueue::new(),
        mailer: RecordingMailer::new(),
        bus: RecordingBus::new(),
        clock: SettableClock::at(now),
        config: ConfigHandle::new(crate::test_config()),
    })
}

/// Posts `body` to `POST /leads` as a landing page does; answers the lead id of the 202.
pub async fn capture<P: Ports>(ports: &Arc<P>, body: Value) -> LeadId {
    let req = Request::post("/leads")
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap_or_default();
    let resp = leadflow_capture::router(Arc::clone(ports)).oneshot(req).await.unwrap_or_default();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let bytes = resp.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    v["lead_id"].as_str().and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("no lead id in {v}"))
}

/// Delivers what the stages queued, stage after stage, until the queue is empty; every message
/// must succeed.
pub async fn pipeline<S, M, B, C>(ports: &Arc<Adapters<S, MemoryQueue, M, B, C>>)
where
    S: LeadStore,
    M: Mailer,
    B: EventBus,
    C: Clock,
{
    for _ in 0..3 {
        for stage in Stage::ALL {
            let failed = deliver(&**ports, stage, &ports.queue.drain(stage)).await;
            assert!(failed.is_empty(), "{failed:?}");
        }
    }
}

/// Hands `bodies` to `stage`'s handler as one batch, as a queue's consumer does; answers the
/// messages that failed.
pub async fn deliver<P: Ports>(ports: &P, stage: Stage, bodies: &[String]) -> Vec<Failure> {
    let batch: Vec<BatchItem> =
        bodies.iter().enumerate().map(|(i, body)| BatchItem { id: format!("m{i}"), body: body.clone() }).collect();
    match stage {
        Stage::Validate => leadflow_validate::handle_batch(ports, batch).await,
        Stage::Score => leadflow_score::handle_batch(ports, batch).await,
        Stage::Route => leadflow_route::handle_batch(ports, batch).await,
    }
}

/// The local stack on a free loopback port, over a fresh data folder (kept as long as the
/// returned guard) and the test configuration.
pub async fn local_stack(
    admin_token: &str,
    nurture_every: std::time::Duration,
) -> (leadflow_infra::dev::Running, tempfile::TempDir) {
    local_stack_with_config(admin_token, nurture_every, crate::config_dir()).await
}

/// [`local_stack`] over the configuration folder `config_dir` instead of the test configuration:
/// for a test that needs settings only known when it runs (an origin with a free port).
pub async fn local_stack_with_config(
    admin_token: &str,
    nurture_every: std::time::Duration,
    config_dir: std::path::PathBuf,
) -> (leadflow_infra::dev::Running, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
    let opts = leadflow_infra::dev::DevOptions {
        addr: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        data_dir: dir.path().to_path_buf(),
        config_dir: Some(config_dir),
        admin_token: Some(admin_token.into()),
        nurture_every,
        ..leadflow_infra::dev::DevOptions::default()
    };
    let running = leadflow_infra::dev::start(opts).await.unwrap_or_else(|e| panic!("the local stack starts: {e}"));
    (running, dir)
}

/// A running local stack (test configuration) and the calls tests make on it over HTTP. Its
/// client follows no redirects, so a test sees each 303 a browser would follow.
pub struct Stack {
    pub running: leadflow_infra::dev::Running,
    pub base: String,
    pub http: reqwest::Client,
    pub token: String,
    pub dir: tempfile::TempDir,
}

impl Stack {
    pub async fn start(admin_token: &str, nurture_every: std::time::Duration) -> Stack {
        let (running, dir) = local_stack(admin_token, nurture_every).await;
        let base = format!("http://{}", running.addr);
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_else(|e| panic!("an HTTP client: {e}"));
        Stack { running, base, http, token: admin_token.to_string(), dir }
    }

    /// Posts a lead as a landing page does; answers its id.
    pub async fn post_lead(&self, lead: &Value) -> String {
        let resp = self.http.post(format!("{}/leads", self.base)).json(lead).send().await;
        let resp = resp.unwrap_or_else(|e| panic!("capture answers: {e}"));
        let body: Value = resp.json().await.unwrap_or_else(|e| panic!("capture answers JSON: {e}"));
        body["lead_id"].as_str().unwrap_or_else(|| panic!("no lead id: {body}")).to_string()
    }

    /// The lead as the admin API shows it.
    pub async fn lead(&self, id: &str) -> Value {
        self.api(&format!("/admin/leads/{id}")).await
    }

    /// `GET path` on the admin API with the stack's token: the JSON it answers.
    pub async fn api(&self, path: &str) -> Value {
        let resp = self.http.get(format!("{}{path}", self.base)).bearer_auth(&self.token).send().await;
        let resp = resp.unwrap_or_else(|e| panic!("the admin API answers {path}: {e}"));
        resp.json().await.unwrap_or_else(|e| panic!("the admin API answers {path} with JSON: {e}"))
    }

    /// Waits until the pipeline has assigned the lead; answers its owner's rep id.
    pub async fn owner(&self, id: &str) -> String {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let lead = self.lead(id).await;
            if let Some(rep) = lead["owner"]["rep_id"].as_str() {
                return rep.to_string();
            }
            assert!(std::time::Instant::now() < deadline, "lead {id} was not assigned in 20 s: {lead}");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// `POST /dev/sign-in-link` (what `leadflow console link --as <email> --next <next>` calls).
    pub async fn sign_in_link(&self, email: Option<&str>, next: Option<&str>) -> (reqwest::StatusCode, Value) {
        let resp = self
            .http
            .post(format!("{}/dev/sign-in-link", self.base))
            .bearer_auth(&self.token)
            .json(&serde_json::json!({ "email": email, "next": next }))
            .send()
            .await
            .unwrap_or_else(|e| panic!("the link endpoint answers: {e}"));
        let status = resp.status();
        (status, resp.json().await.unwrap_or_else(|e| panic!("the link endpoint answers JSON: {e}")))
    }

    /// Signs `email` in through a one-time link as a browser does: the link's page (which signs
    /// nobody in), then its button. Answers the session cookie as a `Cookie` header value.
    pub async fn sign_in(&self, email: &str) -> String {
        let (status, link) = self.sign_in_link(Some(email), None).await;
        assert_eq!(status, reqwest::StatusCode::OK, "{link}");
        let url = link["url"].as_str().unwrap_or_else(|| panic!("no link: {link}"));
        let shown = self.http.get(url).send().await.unwrap_or_else(|e| panic!("the link's page: {e}"));
        assert_eq!(shown.status(), reqwest::StatusCode::OK);
        assert!(shown.headers().get(reqwest::header::SET_COOKIE).is_none(), "opening the link does not sign in");
        let path = url.split('?').next().unwrap_or(url);
        let resp = self.http.post(path).form(&[("next", "/console")]).send().await;
        let resp = resp.unwrap_or_else(|e| panic!("the link's button: {e}"));
        assert_eq!(resp.status(), reqwest::StatusCode::SEE_OTHER);
        let cookie = resp.headers().get(reqwest::header::SET_COOKIE).and_then(|v| v.to_str().ok());
        let cookie = cookie.unwrap_or_else(|| panic!("no session cookie"));
        assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"), "{cookie}");
        cookie.split(';').next().unwrap_or_default().to_string()
    }

    /// `GET path` as the person with `cookie` (a session cookie from [`Stack::sign_in`]): the
    /// response, for a test that reads its headers.
    pub async fn get_as(&self, cookie: &str, path: &str) -> reqwest::Response {
        let resp = self.http.get(format!("{}{path}", self.base)).header(reqwest::header::COOKIE, cookie).send().await;
        resp.unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    /// A console page as the person with `cookie` sees it: its status and HTML.
    pub async fn page_as(&self, cookie: &str, path: &str) -> (reqwest::StatusCode, String) {
        let resp = self.get_as(cookie, path).await;
        let status = resp.status();
        (status, resp.text().await.unwrap_or_else(|e| panic!("{path}: {e}")))
    }

    /// Posts a console form as the person with `cookie`, without an `Origin` header (as some
    /// browsers send a same-origin form). The form carries its own `csrf` field, or not, as the
    /// test wants.
    pub async fn post_as(&self, cookie: &str, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.post_form(cookie, path, form, None).await
    }

    /// [`Stack::post_as`] with the `Origin` header a browser on `origin` sends.
    pub async fn post_from(&self, origin: &str, cookie: &str, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.post_form(cookie, path, form, Some(origin)).await
    }

    async fn post_form(
        &self,
        cookie: &str,
        path: &str,
        form: &[(&str, &str)],
        origin: Option<&str>,
    ) -> reqwest::Response {
        let mut req = self.http.post(format!("{}{path}", self.base)).header(reqwest::header::COOKIE, cookie);
        if let Some(origin) = origin {
            req = req.header(reqwest::header::ORIGIN, origin);
        }
        req.form(form).send().await.unwrap_or_else(|e| panic!("POST {path}: {e}"))
    }

    /// The text of the textarea with `id` on a page, unescaped as a browser posts it back.
    pub fn textarea_of(page: &str, id: &str) -> String {
        let start = page.find(&format!("id=\"{id}\"")).unwrap_or_else(|| panic!("no textarea {id}"));
        let start = start + page[start..].find('>').unwrap_or_else(|| panic!("the textarea's tag")) + 1;
        let end = start + page[start..].find("</textarea>").unwrap_or_else(|| panic!("the textarea's end"));
        unescape(&page[start..end])
    }

    /// The CSRF token of the first form on a console page.
    pub fn csrf_of(page: &str) -> String {
        let marker = "name=\"csrf\" value=\"";
        let at = page.find(marker).unwrap_or_else(|| panic!("no form with a CSRF token")) + marker.len();
        page[at..].split('"').next().unwrap_or_default().to_string()
    }
}

/// Where a response sends the browser: its `Location` (a 303's target).
pub fn location(resp: &reqwest::Response) -> String {
    let to = resp.headers().get(reqwest::header::LOCATION).and_then(|v| v.to_str().ok());
    to.unwrap_or_else(|| panic!("no location: {}", resp.status())).to_string()
}

/// Text as a browser reads it from the console's escaped HTML.
pub fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&#x2f;", "/")
        .replace("&amp;", "&")
}
