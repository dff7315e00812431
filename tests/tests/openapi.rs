//! The OpenAPI document (`docs/openapi.json`) against the code, both ways:
//!
//! - every route the local stack's routers answer is in the document, and every operation in the
//!   document is a route: read from the routers' own source (the `.route(…)` calls of the routers
//!   `infra/src/dev.rs` joins), so a route added to the code without the document fails here;
//! - real requests to a running local stack, answered by every documented operation: each
//!   answer's status must be documented for its operation, its content type too, and its JSON
//!   must validate against the document's schema (`jsonschema`, draft 2020-12, formats on).
//!
//! `scripts/fuzz-api` then lets schemathesis generate requests from the same document.

#[path = "openapi/routes.rs"]
mod routes;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use leadflow_tests::harness::Stack;
use reqwest::{Method, RequestBuilder, header};
use serde_json::{Value, json};

/// How one case builds its request.
type Build = Box<dyn FnOnce(RequestBuilder) -> RequestBuilder>;

const TOKEN: &str = "openapi-test-admin-token-0123456789";

fn repo() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

fn document() -> Value {
    let text = std::fs::read_to_string(repo().join("docs/openapi.json"))
        .unwrap_or_else(|e| panic!("docs/openapi.json cannot be read: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("docs/openapi.json is not JSON: {e}"))
}

const METHODS: &[&str] = &["get", "put", "post", "delete", "patch", "head", "options", "trace"];

/// Every operation of the document, as `(METHOD, path)`.
fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    let paths = doc["paths"].as_object().unwrap_or_else(|| panic!("the document has no paths"));
    let mut out = BTreeSet::new();
    for (path, item) in paths {
        for m in METHODS {
            if item.get(*m).is_some() {
                out.insert((m.to_ascii_uppercase(), path.clone()));
            }
        }
    }
    out
}

#[test]
fn every_route_of_the_routers_is_documented_and_every_documented_operation_is_a_route() {
    let routed = routes::local_stack_routes(repo());
    assert!(routed.len() > 20, "the route table was not read: {routed:?}");
    let doc = documented(&document());
    let undocumented: Vec<_> = routed.difference(&doc).collect();
    let unrouted: Vec<_> = doc.difference(&routed).collect();
    assert!(undocumented.is_empty(), "routes missing from docs/openapi.json: {undocumented:?}");
    assert!(unrouted.is_empty(), "operations in docs/openapi.json that no router answers: {unrouted:?}");
}

#[test]
fn the_schemas_refuse_what_the_document_does_not_allow() {
    let schemas = Schemas::of(&document());
    let error = json!({"$ref": "#/components/schemas/ErrorBody"});
    assert!(schemas.problems(&error, &json!({"error": {"code": "x", "message": "m", "field": null}})).is_empty());
    assert!(!schemas.problems(&error, &json!({"error": {"code": "x", "message": "m"}})).is_empty(), "no field");
    assert!(!schemas.problems(&error, &json!({"error": {"code": "X!", "message": "m", "field": null}})).is_empty());
    let funnel = json!({"$ref": "#/components/schemas/Funnel"});
    let counts = json!({"captured": 3, "valid": 2, "mql": 1, "assigned": 1, "sql": 0, "contacted": 0, "won": 0});
    assert!(schemas.problems(&funnel, &counts).is_empty());
    let mut negative = counts.clone();
    negative["won"] = json!(-1);
    assert!(!schemas.problems(&funnel, &negative).is_empty());
    let touch = json!({"$ref": "#/components/schemas/Touch"});
    let when = |at: &str| {
        json!({"at": at, "form": null, "page_url": null, "referrer": null,
        "utm": {"source": null, "medium": null, "campaign": null, "term": null, "content": null}})
    };
    assert!(schemas.problems(&touch, &when("2026-12-02T04:20:48.361259484Z")).is_empty());
    assert!(!schemas.problems(&touch, &when("yesterday")).is_empty(), "formats are checked");
}

/// The document's schemas with their references rewritten to `$defs`, so that a response
/// schema and the schemas it names make one JSON Schema document.
struct Schemas {
    defs: Value,
}

impl Schemas {
    fn of(doc: &Value) -> Self {
        let text = doc["components"]["schemas"].to_string().replace("#/components/schemas/", "#/$defs/");
        Schemas { defs: serde_json::from_str(&text).unwrap_or(Value::Null) }
    }

    /// The problems of `instance` against `schema` (a schema from the document).
    fn problems(&self, schema: &Value, instance: &Value) -> Vec<String> {
        let text = schema.to_string().replace("#/components/schemas/", "#/$defs/");
        let mut root: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if !root.is_object() {
            return vec![format!("not a schema: {schema}")];
        }
        root["$schema"] = json!("https://json-schema.org/draft/2020-12/schema");
        root["$defs"] = self.defs.clone();
        let validator = jsonschema::options()
            .with_draft(jsonschema::Draft::Draft202012)
            .should_validate_formats(true)
            .build(&root)
            .unwrap_or_else(|e| panic!("a schema of the document does not compile: {e}\n{schema}"));
        validator.iter_errors(instance).map(|e| format!("{}: {e}", e.instance_path())).collect()
    }
}

/// An answer that conforms to the document: its status and body (JSON, or text as a string).
struct Answer {
    status: u16,
    body: Value,
    headers: header::HeaderMap,
}

/// The running stack, the document, and which statuses each operation was seen answering.
struct Contract {
    stack: Stack,
    doc: Value,
    schemas: Schemas,
    seen: BTreeMap<(String, String), BTreeSet<u16>>,
}

impl Contract {
    async fn start() -> Self {
        let stack = Stack::start(TOKEN, Duration::from_millis(200)).await;
        let doc = document();
        let schemas = Schemas::of(&doc);
        Contract { stack, doc, schemas, seen: BTreeMap::new() }
    }

    /// Sends `method path` (the operation `template`) with the admin token, lets `build` finish
    /// the request, and checks the answer against the document.
    async fn call(
        &mut self,
        method: Method,
        template: &str,
        path: &str,
        build: impl FnOnce(RequestBuilder) -> RequestBuilder,
    ) -> Answer {
        self.send(method, template, path, |r| build(r.bearer_auth(TOKEN))).await
    }

    /// [`Contract::call`] without the admin token.
    async fn send(
        &mut self,
        method: Method,
        template: &str,
        path: &str,
        build: impl FnOnce(RequestBuilder) -> RequestBuilder,
    ) -> Answer {
        let request = self.stack.http.request(method.clone(), format!("{}{path}", self.stack.base));
        let resp = build(request).send().await.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.unwrap_or_else(|e| panic!("{method} {path}: the body: {e}"));
        let what = format!("{method} {path} answered {status}");
        let body = self.conforms(&method, template, status, &headers, &bytes, &what);
        self.seen.entry((method.as_str().to_string(), template.to_string())).or_default().insert(status);
        Answer { status, body, headers }
    }

    async fn get(&mut self, template: &str, path: &str) -> Answer {
        self.call(Method::GET, template, path, |r| r).await
    }

    async fn json(&mut self, method: Method, template: &str, path: &str, body: Value) -> Answer {
        self.call(method, template, path, |r| r.json(&body)).await
    }

    fn response_doc(&self, method: &Method, template: &str, status: u16, what: &str) -> Value {
        let op = &self.doc["paths"][template][method.as_str().to_ascii_lowercase()];
        assert!(op.is_object(), "{what}: the document has no operation {method} {template}");
        let responses = &op["responses"];
        let found = [status.to_string(), format!("{}XX", status / 100), "default".to_string()]
            .into_iter()
            .find_map(|k| responses.get(&k).cloned())
            .unwrap_or_else(|| panic!("{what}: status {status} is not documented for {method} {template}"));
        match found["$ref"].as_str().and_then(|r| r.strip_prefix('#')) {
            Some(pointer) => self.doc.pointer(pointer).cloned().unwrap_or_else(|| panic!("{what}: no {pointer}")),
            None => found,
        }
    }

    fn conforms(
        &self,
        method: &Method,
        template: &str,
        status: u16,
        headers: &header::HeaderMap,
        bytes: &[u8],
        what: &str,
    ) -> Value {
        let documented = self.response_doc(method, template, status, what);
        for (name, h) in documented["headers"].as_object().into_iter().flatten() {
            if h["required"] == json!(true) {
                assert!(headers.contains_key(name.as_str()), "{what}: no {name} header");
            }
        }
        let Some(content) = documented["content"].as_object() else {
            assert!(bytes.is_empty(), "{what}: a body where the document has none: {}", String::from_utf8_lossy(bytes));
            return Value::Null;
        };
        let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
        let mime = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        let media = content.get(&mime).unwrap_or_else(|| {
            panic!("{what}: content type `{content_type}` is not documented ({:?})", content.keys())
        });
        if mime != "application/json" {
            return Value::String(String::from_utf8_lossy(bytes).into_owned());
        }
        let body: Value = serde_json::from_slice(bytes)
            .unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {}", String::from_utf8_lossy(bytes)));
        let problems = self.schemas.problems(&media["schema"], &body);
        assert!(
            problems.is_empty(),
            "{what}: the body is outside the document's schema:\n{}\n{body:#}",
            problems.join("\n")
        );
        body
    }
}

fn emls(dir: &Path) -> Vec<Vec<u8>> {
    let entries = std::fs::read_dir(dir).map(|rd| rd.flatten().collect::<Vec<_>>()).unwrap_or_default();
    entries
        .iter()
        .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
        .filter_map(|e| std::fs::read(e.path()).ok())
        .collect()
}

/// The path of the first link under `prefix` (`/u/`, `/confirm/`) in an email to `email`, from
/// its `List-Unsubscribe` header or its text, once there is one.
async fn link_path(outbox: &Path, email: &str, prefix: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        for bytes in emls(outbox) {
            let Some(m) = mail_parser::MessageParser::default().parse(&bytes) else { continue };
            let to = m.to().and_then(|a| a.first()).and_then(|a| a.address()).unwrap_or_default().to_string();
            let text = format!(
                "{} {}",
                m.header_raw("List-Unsubscribe").unwrap_or_default(),
                m.body_text(0).unwrap_or_default()
            );
            if to == email
                && let Some(at) = text.find(prefix)
            {
                let token: String = text[at + prefix.len()..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
                    .collect();
                return format!("{prefix}{}", token.trim_end_matches('.'));
            }
        }
        assert!(Instant::now() < deadline, "no email to {email} with a {prefix} link in 20 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn real_answers_of_every_operation_match_the_document() {
    let mut c = Contract::start().await;
    let ana = json!({"email": "ana@acme.io", "first_name": "Ana", "last_name": "Lima", "company": "Acme",
        "job_title": "CTO", "country": "DE", "phone": "+49 30 901820", "utm_source": "google", "consent": true,
        "consent_text": "Yes, email me about Acme.", "team_size": 40});
    let ana_id =
        c.json(Method::POST, "/leads", "/leads", ana).await.body["lead_id"].as_str().unwrap_or_default().to_string();
    let joe_id = c.json(Method::POST, "/leads", "/leads", json!({"email": "joe@gmail.com"})).await.body["lead_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    capture_errors(&mut c).await;
    c.stack.owner(&ana_id).await;
    let outbox = c.stack.running.outbox.clone();
    let unsubscribe = link_path(&outbox, "joe@gmail.com", "/u/").await;
    let confirm = link_path(&outbox, "ana@acme.io", "/confirm/").await;

    admin_leads(&mut c, &ana_id).await;
    admin_reps_and_teams(&mut c).await;
    admin_rules(&mut c).await;
    admin_campaigns(&mut c, &joe_id).await;
    admin_dead_letters(&mut c).await;
    unsubscribe_links(&mut c, &unsubscribe).await;
    confirm_links(&mut c, &confirm).await;
    local_only(&mut c).await;

    // Erasure last: the leads are needed above.
    let erased = c.call(Method::DELETE, "/admin/leads/{id}", &format!("/admin/leads/{ana_id}"), |r| r).await;
    assert_eq!(erased.status, 200);
    let again = c.call(Method::DELETE, "/admin/leads/{id}", &format!("/admin/leads/{ana_id}"), |r| r).await;
    assert_eq!(again.body["already_erased"], json!(true));
    let gone = c
        .json(
            Method::POST,
            "/admin/leads/{id}/status",
            &format!("/admin/leads/{ana_id}/status"),
            json!({"status": "won"}),
        )
        .await;
    assert_eq!(gone.status, 410);
    let tombstone = c.get("/admin/leads/{id}", &format!("/admin/leads/{ana_id}")).await;
    assert_eq!(tombstone.body["erased"], json!(true));

    // Every operation of the document was answered with success at least once above.
    let unanswered: Vec<_> = documented(&c.doc)
        .into_iter()
        .filter(|op| !c.seen.get(op).is_some_and(|s| s.iter().any(|st| (200..400).contains(st))))
        .collect();
    assert!(unanswered.is_empty(), "operations this test never saw succeed: {unanswered:?}");
}

async fn capture_errors(c: &mut Contract) {
    let form = [("email", "formy@acme.io"), ("form", "contact"), ("consent", "on")];
    let to_redirect = c.call(Method::POST, "/leads", "/leads", |r| r.form(&form)).await;
    assert_eq!(
        (to_redirect.status, header_of(&to_redirect, "location")),
        (303, "https://www.acme.example/thanks".into())
    );
    let page = c
        .call(Method::POST, "/leads", "/leads", |r| r.header("accept", "text/html").form(&[("email", "page@acme.io")]))
        .await;
    assert_eq!((page.status, header_of(&page, "location")), (303, "/thanks".into()));
    let plain_form = c.call(Method::POST, "/leads", "/leads", |r| r.form(&[("email", "plain@acme.io")])).await;
    assert_eq!(plain_form.status, 202);
    let keyed = |k: &'static str| {
        move |r: RequestBuilder| r.header("idempotency-key", k).json(&json!({"email": "key@acme.io"}))
    };
    let first = c.call(Method::POST, "/leads", "/leads", keyed("k-1")).await;
    let retry = c.call(Method::POST, "/leads", "/leads", keyed("k-1")).await;
    assert_eq!(first.body, retry.body, "a retried key answers the first lead id");

    let cases: Vec<(u16, &str, Build)> = vec![
        (415, "unsupported_media_type", Box::new(|r| r.header("content-type", "text/plain").body("email=x"))),
        (400, "malformed_body", Box::new(|r| r.header("content-type", "application/json").body("{\"email\":"))),
        (400, "malformed_body", Box::new(|r| r.json(&json!(["ana@acme.io"])))),
        (
            400,
            "invalid_idempotency_key",
            Box::new(|r| r.header("idempotency-key", "").json(&json!({"email": "a@acme.io"}))),
        ),
        (422, "required", Box::new(|r| r.json(&json!({"first_name": "Ana"})))),
        (422, "invalid_type", Box::new(|r| r.json(&json!({"email": "a@acme.io", "first_name": {"x": 1}})))),
        (422, "invalid_field", Box::new(|r| r.json(&json!({"email": "not-an-address", "company": "a\nb"})))),
        (413, "body_too_large", Box::new(|r| r.json(&json!({"email": "a@acme.io", "notes": "x".repeat(20_000)})))),
        (
            403,
            "origin_not_allowed",
            Box::new(|r| r.header("origin", "https://evil.example").json(&json!({"email": "a@acme.io"}))),
        ),
    ];
    for (status, code, build) in cases {
        let a = c.call(Method::POST, "/leads", "/leads", build).await;
        assert_eq!((a.status, a.body["error"]["code"].as_str()), (status, Some(code)), "{}", a.body);
    }

    let script = c.get("/forms/leadflow.js", "/forms/leadflow.js").await;
    assert!(script.body.as_str().is_some_and(|s| s.contains("data-leadflow")));
    assert_eq!(c.get("/thanks", "/thanks").await.status, 200);
    let doc = c.get("/openapi.json", "/openapi.json").await;
    assert!(doc.body == c.doc, "the stack serves another docs/openapi.json than the repository's (rebuild capture)");
    let etag = header_of(&doc, "etag");
    let cached = c.call(Method::GET, "/openapi.json", "/openapi.json", |r| r.header("if-none-match", etag)).await;
    assert_eq!(cached.status, 304);
}

fn header_of(a: &Answer, name: &str) -> String {
    a.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string()
}

async fn admin_leads(c: &mut Contract, id: &str) {
    let lead = c.get("/admin/leads/{id}", &format!("/admin/leads/{id}")).await;
    assert_eq!((lead.status, lead.body["owner"]["rep_id"].is_string()), (200, true), "{}", lead.body);
    assert_eq!(c.get("/admin/leads", "/admin/leads?email=ANA@acme.io").await.body["id"], json!(id));
    assert_eq!(c.get("/admin/leads", "/admin/leads?email=nobody@acme.io").await.status, 404);
    assert_eq!(c.get("/admin/leads", "/admin/leads?email=nobody").await.status, 422);
    assert_eq!(c.get("/admin/leads", "/admin/leads?email=ana@acme.io&limit=0").await.status, 422);
    let page = c.get("/admin/leads", "/admin/leads?limit=1&stage=&grade=").await;
    let next = page.body["next"].as_str().unwrap_or_else(|| panic!("a cursor: {}", page.body)).to_string();
    let rest = c.get("/admin/leads", &format!("/admin/leads?limit=500&cursor={next}")).await;
    assert!(rest.body["leads"].as_array().is_some_and(|l| !l.is_empty()));
    for bad in [
        "limit=0",
        "since=2026-03-02&until=2026-03-01",
        "stage=hot",
        "campaign=..%2Fx",
        "cursor=nonsense",
        "cursor=0%3Anope",
    ] {
        assert_eq!(c.get("/admin/leads", &format!("/admin/leads?{bad}")).await.status, 422, "{bad}");
    }
    assert_eq!(c.get("/admin/leads", "/admin/leads?limit=1&limit=2").await.status, 400);
    let json_export = c.get("/admin/leads/export", "/admin/leads/export?format=json&q=acme").await;
    assert!(json_export.body.as_array().is_some_and(|l| !l.is_empty()));
    let csv = c.get("/admin/leads/export", "/admin/leads/export?source=google").await;
    assert!(csv.body.as_str().is_some_and(|s| s.starts_with("id,created_at")));
    assert_eq!(c.get("/admin/leads/export", "/admin/leads/export?format=xml").await.status, 422);
    assert_eq!(c.get("/admin/leads/{id}", "/admin/leads/not-a-ulid").await.status, 400);
    assert_eq!(c.get("/admin/leads/{id}", "/admin/leads/01KBE3F6Z6N8Q1V9W2X4Y5Z7A8").await.status, 404);
    // None, a wrong one, the right one without its scheme.
    for auth in [None, Some("Bearer nope"), Some(TOKEN)] {
        let path = format!("/admin/leads/{id}");
        let a = c
            .send(Method::GET, "/admin/leads/{id}", &path, |r| match auth {
                Some(a) => r.header("authorization", a),
                None => r,
            })
            .await;
        assert_eq!(a.status, 401, "{auth:?}");
    }
    for by in ["source", "campaign", "week"] {
        let f =
            c.get("/admin/reports/funnel", &format!("/admin/reports/funnel?by={by}&since=2020-01-01T00:00:00Z")).await;
        assert!(f.body["overall"]["captured"].as_u64().is_some_and(|n| n >= 2), "{}", f.body);
    }
    assert_eq!(c.get("/admin/reports/funnel", "/admin/reports/funnel?by=colour").await.status, 422);

    let status = "/admin/leads/{id}/status";
    let path = format!("/admin/leads/{id}/status");
    let marked =
        c.json(Method::POST, status, &path, json!({"status": "contacted", "by": "anna", "note": "called"})).await;
    assert_eq!(marked.body["changed"], json!(true), "{}", marked.body);
    assert_eq!(c.json(Method::POST, status, &path, json!({"status": "Contacted"})).await.body["changed"], json!(false));
    assert_eq!(c.json(Method::POST, status, &path, json!({"status": "new"})).await.status, 409);
    assert_eq!(c.json(Method::POST, status, &path, json!({"status": "hot"})).await.status, 422);
    assert_eq!(c.json(Method::POST, status, &path, json!({"by": "anna"})).await.status, 422);
    let text = c.call(Method::POST, status, &path, |r| r.header("content-type", "text/plain").body("won")).await;
    assert_eq!(text.status, 415);
    let broken = c.call(Method::POST, status, &path, |r| r.header("content-type", "application/json").body("{")).await;
    assert_eq!(broken.status, 400);
}

async fn admin_reps_and_teams(c: &mut Contract) {
    let reps = c.get("/admin/reps", "/admin/reps").await;
    let first = reps.body["reps"][0]["id"].as_str().unwrap_or_else(|| panic!("a rep: {}", reps.body)).to_string();
    assert_eq!(c.get("/admin/reps/{id}", &format!("/admin/reps/{first}")).await.status, 200);
    assert_eq!(c.get("/admin/reps/{id}", "/admin/reps/nobody").await.status, 404);
    let zed = json!({"name": "Zed Zulu", "email": "zed@acme.example", "time_zone": "Europe/Paris", "capacity": 10,
        "working_hours": {"days": ["mon", "tue"], "start": "09:00", "end": "17:00"}});
    let put = c.json(Method::PUT, "/admin/reps/{id}", "/admin/reps/zed", zed).await;
    assert_eq!((put.status, put.body["rep"]["id"].as_str()), (200, Some("zed")), "{}", put.body);
    assert_eq!(c.json(Method::PUT, "/admin/reps/{id}", "/admin/reps/zed", json!({"nickname": "z"})).await.status, 422);
    assert_eq!(
        c.json(Method::PUT, "/admin/reps/{id}", "/admin/reps/zed", json!({"capacity": 10001})).await.status,
        422
    );
    let away = json!({"from": "2030-01-01T00:00:00Z", "until": "2030-01-08T00:00:00Z"});
    assert_eq!(c.json(Method::POST, "/admin/reps/{id}/ooo", "/admin/reps/zed/ooo", away.clone()).await.status, 200);
    assert_eq!(c.json(Method::POST, "/admin/reps/{id}/ooo", "/admin/reps/nobody/ooo", away).await.status, 404);
    let back = c.call(Method::DELETE, "/admin/reps/{id}/ooo", "/admin/reps/zed/ooo", |r| r).await;
    assert_eq!(back.body["rep"]["out_of_office"], Value::Null);

    let teams = c.get("/admin/teams", "/admin/teams").await;
    let team = teams.body["teams"][0]["id"].as_str().unwrap_or_else(|| panic!("a team: {}", teams.body)).to_string();
    assert_eq!(c.get("/admin/teams/{id}", &format!("/admin/teams/{team}")).await.status, 200);
    assert_eq!(c.get("/admin/teams/{id}", "/admin/teams/nobody").await.status, 404);
    let france = json!({"name": "France", "when": [{"field": "country", "in": ["FR"]}, {"field": "custom.team_size", "range": {"min": 10}}],
        "members": [{"rep": "zed", "weight": 5}]});
    assert_eq!(c.json(Method::PUT, "/admin/teams/{id}", "/admin/teams/france", france).await.status, 200);
    let stranger = json!({"name": "X", "members": [{"rep": "nobody"}]});
    assert_eq!(c.json(Method::PUT, "/admin/teams/{id}", "/admin/teams/x", stranger).await.status, 422);
}

async fn admin_rules(c: &mut Contract) {
    for (name, file) in [("routing", "routing.toml"), ("scoring", "scoring.toml")] {
        let template = format!("/admin/rules/{name}");
        let current = c.get(&template, &template).await;
        let same = c.json(Method::PUT, &template, &template, current.body[name].clone()).await;
        assert_eq!(same.status, 200, "{}", same.body);
        let toml = std::fs::read_to_string(repo().join("tests/config").join(file)).unwrap_or_default();
        let from_toml = c
            .call(Method::PUT, &template, &template, |r| r.header("content-type", "application/toml").body(toml))
            .await;
        assert_eq!(from_toml.status, 200, "{}", from_toml.body);
        let broken = c
            .call(Method::PUT, &template, &template, |r| r.header("content-type", "application/toml").body("[["))
            .await;
        assert_eq!(broken.status, 400);
    }
    let bad_sla = c
        .json(
            Method::PUT,
            "/admin/rules/routing",
            "/admin/rules/routing",
            json!({"fallback_owner": "desk", "sla_hours": 1e10, "reps": []}),
        )
        .await;
    assert_eq!(bad_sla.status, 422);
}

async fn admin_campaigns(c: &mut Contract, lead: &str) {
    let list = c.get("/admin/campaigns", "/admin/campaigns").await;
    assert!(list.body["campaigns"].as_array().is_some_and(|l| !l.is_empty()));
    assert_eq!(c.get("/admin/campaigns/{id}", "/admin/campaigns/welcome").await.status, 200);
    assert_eq!(c.get("/admin/campaigns/{id}", "/admin/campaigns/nope").await.status, 404);
    let yaml =
        "id: probe\nname: Probe\nstatus: paused\nsteps:\n  - { id: one, subject: Hi, text: Hi, html: \"<p>Hi</p>\" }\n";
    let applied = c
        .call(Method::POST, "/admin/campaigns", "/admin/campaigns", |r| {
            r.header("content-type", "application/yaml").body(yaml)
        })
        .await;
    assert_eq!(applied.status, 201, "{}", applied.body);
    let again = c
        .call(Method::POST, "/admin/campaigns", "/admin/campaigns", |r| {
            r.header("content-type", "application/yaml").body(yaml)
        })
        .await;
    assert_eq!((again.status, again.body["unchanged"].as_bool()), (200, Some(true)));
    let as_json = json!({"id": "probe", "name": "Probe", "steps": [{"id": "one", "subject": "Hi", "text": "Hi", "html": "<p>Hi</p>"}], "colour": "red"});
    assert_eq!(c.json(Method::POST, "/admin/campaigns", "/admin/campaigns", as_json).await.status, 422);
    let broken = c.call(Method::POST, "/admin/campaigns", "/admin/campaigns", |r| r.body("steps: [")).await;
    assert_eq!(broken.status, 400);
    for action in ["resume", "pause"] {
        let template = format!("/admin/campaigns/{{id}}/{action}");
        assert_eq!(
            c.call(Method::POST, &template, &format!("/admin/campaigns/probe/{action}"), |r| r).await.status,
            200
        );
        assert_eq!(
            c.call(Method::POST, &template, &format!("/admin/campaigns/nope/{action}"), |r| r).await.status,
            404
        );
    }
    let schedule = "/admin/campaigns/{id}/schedule";
    let window = json!({"start": "2030-01-01T00:00:00Z", "end": "2030-02-01T00:00:00Z"});
    assert_eq!(c.json(Method::POST, schedule, "/admin/campaigns/probe/schedule", window).await.status, 200);
    let backwards = json!({"start": "2030-02-01T00:00:00Z", "end": "2030-01-01T00:00:00Z"});
    assert_eq!(c.json(Method::POST, schedule, "/admin/campaigns/probe/schedule", backwards).await.status, 422);
    let preview = "/admin/campaigns/{id}/preview";
    let shown = c.get(preview, &format!("/admin/campaigns/welcome/preview?lead={lead}&step=hello")).await;
    assert_eq!(shown.status, 200, "{}", shown.body);
    assert_eq!(c.get(preview, "/admin/campaigns/welcome/preview?step=hello").await.status, 422);
    assert_eq!(
        c.get(preview, &format!("/admin/campaigns/welcome/preview?lead={lead}&step=hello&version=9")).await.status,
        404
    );
    let migrate = "/admin/campaigns/{id}/migrate";
    assert_eq!(c.json(Method::POST, migrate, "/admin/campaigns/probe/migrate", json!({})).await.status, 200);
    assert_eq!(
        c.json(Method::POST, migrate, "/admin/campaigns/probe/migrate", json!({"from_version": 9})).await.status,
        422
    );
}

async fn admin_dead_letters(c: &mut Contract) {
    let list = "/admin/dead-letters";
    assert_eq!(c.get(list, list).await.body["stages"].as_array().map(Vec::len), Some(3));
    assert_eq!(c.get(list, "/admin/dead-letters?stage=route&limit=100").await.status, 200);
    assert_eq!(c.get(list, "/admin/dead-letters?limit=101").await.status, 422);
    assert_eq!(c.get(list, "/admin/dead-letters?stage=nurture").await.status, 422);
    let redrive = "/admin/dead-letters/{stage}/redrive";
    assert_eq!(c.call(Method::POST, redrive, "/admin/dead-letters/score/redrive", |r| r).await.status, 200);
    assert_eq!(c.call(Method::POST, redrive, "/admin/dead-letters/nurture/redrive", |r| r).await.status, 404);
}

async fn unsubscribe_links(c: &mut Contract, path: &str) {
    let t = "/u/{token}";
    let page = c.call(Method::GET, t, path, |r| r.header("accept", "text/html")).await;
    assert!(page.body.as_str().is_some_and(|p| p.contains("<form method=\"post\"")));
    let one_click = c.call(Method::POST, t, path, |r| r.form(&[("List-Unsubscribe", "One-Click")])).await;
    assert_eq!(one_click.status, 200);
    assert_eq!(c.call(Method::POST, t, path, |r| r).await.status, 200, "an empty body unsubscribes too");
    let huge = c.call(Method::POST, t, path, |r| r.body("x".repeat(9 * 1024))).await;
    assert_eq!(huge.body["error"]["code"], json!("body_too_large"));
    assert_eq!(c.get(t, "/u/nonsense").await.body["error"]["code"], json!("malformed_token"));
    assert_eq!(c.call(Method::GET, t, "/u/nonsense", |r| r.header("accept", "text/html")).await.status, 400);
    let lead = path.trim_start_matches("/u/").split('.').next().unwrap_or_default();
    let forged = format!("/u/{lead}.{}", "0".repeat(32));
    assert_eq!(c.call(Method::POST, t, &forged, |r| r).await.status, 403);
}

async fn confirm_links(c: &mut Contract, path: &str) {
    let t = "/confirm/{token}";
    assert_eq!(c.send(Method::GET, t, path, |r| r).await.status, 200);
    assert_eq!(c.send(Method::POST, t, path, |r| r.form(&[("confirm", "yes")])).await.status, 200);
    assert_eq!(c.send(Method::POST, t, path, |r| r).await.status, 200, "again: the same");
    assert_eq!(c.send(Method::GET, t, "/confirm/nonsense", |r| r).await.status, 400);
    let forged = format!("{}{}", &path[..path.len() - 32], "0".repeat(32));
    assert_eq!(c.send(Method::POST, t, &forged, |r| r).await.status, 403);
}

async fn local_only(c: &mut Contract) {
    assert_eq!(c.get("/health", "/health").await.body["status"], json!("ok"));
    let link = "/dev/sign-in-link";
    assert_eq!(c.json(Method::POST, link, link, json!({})).await.status, 200);
    assert_eq!(c.json(Method::POST, link, link, json!({"email": "stranger@acme.example"})).await.status, 422);
    assert_eq!(c.call(Method::POST, link, link, |r| r.body("{")).await.status, 400);
    let events = "/dev/ses-events";
    let fixture =
        std::fs::read_to_string(repo().join("functions/ses-events/tests/fixtures/delivery.json")).unwrap_or_default();
    let delivered =
        c.call(Method::POST, events, events, |r| r.header("content-type", "application/json").body(fixture)).await;
    assert_eq!(delivered.status, 200);
    assert_eq!(c.call(Method::POST, events, events, |r| r.body("not json")).await.status, 400);
}
