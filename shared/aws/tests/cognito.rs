//! The console's sign-in through Cognito, with tokens issued by moto's Cognito (its real JWKS):
//! a token of the pool is accepted; an expired one, one for another app client or issuer, an
//! access token, `alg: none`, an HMAC-signed one and an altered one are refused. Then the whole
//! managed-login round trip through the console's router: sign-in goes to the authorize
//! endpoint with PKCE, the callback exchanges the code (moto has no OAuth endpoints, so a small
//! stand-in answers `/oauth2/token` with moto's tokens and checks the PKCE verifier), the
//! session opens the rep's pages, an ended session is refreshed, and sign-out ends at Cognito's
//! logout.

use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{Duration, Utc};
use hmac::{Hmac, KeyInit, Mac};
use http_body_util::BodyExt;
use jsonwebtoken::jwk::JwkSet;
use leadflow_admin::console::SignIn;
use leadflow_admin::console::cognito::{Cognito, CognitoSettings, TokenError};
use leadflow_aws::cognito::{PoolKeys, verify_id_token};
use leadflow_core::ports::{Adapters, ConfigHandle};
use leadflow_memory::{MemoryQueue, MemoryStore, RecordingBus, RecordingMailer, SettableClock};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tower::ServiceExt;

fn moto() -> String {
    match std::env::var("LEADFLOW_MOTO_ENDPOINT") {
        Ok(v) if !v.is_empty() => v.trim_end_matches('/').to_string(),
        _ => panic!("LEADFLOW_MOTO_ENDPOINT is not set: these tests need a moto server; scripts/test starts one"),
    }
}

/// One call of Cognito's JSON API on moto.
async fn idp(op: &str, body: Value) -> Value {
    let resp = reqwest::Client::new()
        .post(moto())
        .header("x-amz-target", format!("AWSCognitoIdentityProviderService.{op}"))
        .header("content-type", "application/x-amz-json-1.1")
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=test/20261201/us-east-1/cognito-idp/aws4_request, SignedHeaders=host, Signature=0",
        )
        .body(body.to_string())
        .send()
        .await
        .unwrap_or_else(|e| panic!("{op}: {e}"));
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    assert!(status.is_success(), "{op} answered {status}: {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

/// A user pool with an app client, the sales group, and Carla (a rep of the sample routing) in it.
struct Pool {
    id: String,
    client_id: String,
    issuer: String,
    jwks_url: String,
}

const PASSWORD: &str = "Real-Passw0rd!";

async fn pool(email: &str, group: &str) -> Pool {
    let created =
        idp("CreateUserPool", json!({ "PoolName": "leadflow-console", "UsernameAttributes": ["email"] })).await;
    let id = created["UserPool"]["Id"].as_str().expect("pool id").to_string();
    let client = idp(
        "CreateUserPoolClient",
        json!({ "UserPoolId": id, "ClientName": "console",
                "ExplicitAuthFlows": ["ALLOW_ADMIN_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"] }),
    )
    .await;
    let client_id = client["UserPoolClient"]["ClientId"].as_str().expect("client id").to_string();
    idp("CreateGroup", json!({ "UserPoolId": id, "GroupName": group })).await;
    idp(
        "AdminCreateUser",
        json!({ "UserPoolId": id, "Username": email, "TemporaryPassword": "Temp-Passw0rd!", "MessageAction": "SUPPRESS" }),
    )
    .await;
    idp(
        "AdminSetUserPassword",
        json!({ "UserPoolId": id, "Username": email, "Password": PASSWORD, "Permanent": true }),
    )
    .await;
    idp("AdminAddUserToGroup", json!({ "UserPoolId": id, "Username": email, "GroupName": group })).await;
    let issuer = format!("https://cognito-idp.us-east-1.amazonaws.com/{id}");
    let jwks_url = format!("{}/{id}/.well-known/jwks.json", moto());
    Pool { id, client_id, issuer, jwks_url }
}

/// moto's tokens for `email`: (id, access, refresh).
async fn tokens(pool: &Pool, email: &str) -> (String, String, String) {
    let auth = idp(
        "AdminInitiateAuth",
        json!({ "UserPoolId": pool.id, "ClientId": pool.client_id, "AuthFlow": "ADMIN_USER_PASSWORD_AUTH",
                "AuthParameters": { "USERNAME": email, "PASSWORD": PASSWORD } }),
    )
    .await;
    let r = &auth["AuthenticationResult"];
    let get = |k: &str| r[k].as_str().unwrap_or_else(|| panic!("no {k}: {auth}")).to_string();
    (get("IdToken"), get("AccessToken"), get("RefreshToken"))
}

async fn keys(pool: &Pool) -> JwkSet {
    let resp = reqwest::get(&pool.jwks_url).await.expect("jwks");
    resp.json().await.expect("a JWK set")
}

fn part(token: &str, i: usize) -> Value {
    let seg = token.split('.').nth(i).expect("a segment");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(seg).expect("base64url")).expect("json")
}

fn join(header: &Value, payload: &Value, sig: &str) -> String {
    let enc = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
    format!("{}.{}.{sig}", enc(header), enc(payload))
}

#[tokio::test]
async fn tokens_of_the_pool_are_accepted_and_every_forgery_is_refused() {
    let pool = pool("carla@acme.example", "sales").await;
    let (id_token, access_token, _) = tokens(&pool, "carla@acme.example").await;
    let keys = keys(&pool).await;
    let now = Utc::now();
    let verify = |token: &str, issuer: &str, client: &str, at| verify_id_token(&keys, token, issuer, client, at);

    let who = verify(&id_token, &pool.issuer, &pool.client_id, now).expect("moto's ID token is accepted");
    assert_eq!(who.email, "carla@acme.example");
    assert_eq!(who.groups, vec!["sales".to_string()]);

    assert_eq!(verify(&id_token, &pool.issuer, &pool.client_id, now + Duration::hours(2)), Err(TokenError::Expired));
    assert!(matches!(verify(&id_token, &pool.issuer, "another-client", now), Err(TokenError::Invalid(_))));
    let other_pool = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_other";
    assert!(matches!(verify(&id_token, other_pool, &pool.client_id, now), Err(TokenError::Invalid(_))));
    // An access token has no audience: refused as such, never read as a sign-in.
    assert!(verify(&access_token, &pool.issuer, &pool.client_id, now).is_err());

    let (header, payload, sig) = (part(&id_token, 0), part(&id_token, 1), id_token.rsplit('.').next().unwrap_or(""));
    let none = join(&json!({ "alg": "none", "kid": header["kid"] }), &payload, "");
    assert!(verify(&none, &pool.issuer, &pool.client_id, now).is_err(), "alg none");
    // Signed with HMAC-SHA256 for real, over a secret the attacker knows (here the client id; the
    // classic attack uses the public key), so only the algorithm rule can refuse it.
    let unsigned = join(&json!({ "alg": "HS256", "kid": header["kid"] }), &payload, "");
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(pool.client_id.as_bytes()).expect("an HMAC key");
    mac.update(unsigned.trim_end_matches('.').as_bytes());
    let hmac = format!("{unsigned}{}", URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()));
    assert!(matches!(verify(&hmac, &pool.issuer, &pool.client_id, now), Err(TokenError::WrongAlgorithm(_))));
    let mut altered = payload.clone();
    altered["cognito:groups"] = json!(["admin"]);
    let resigned = join(&header, &altered, sig);
    assert!(matches!(verify(&resigned, &pool.issuer, &pool.client_id, now), Err(TokenError::Invalid(_))), "altered");
    let unknown_key = join(&json!({ "alg": "RS256", "kid": "not-a-key-of-the-pool" }), &payload, sig);
    assert_eq!(verify(&unknown_key, &pool.issuer, &pool.client_id, now), Err(TokenError::UnknownKey));
}

/// Stands in for the pool's `/oauth2/token` (moto has none): checks the code and the PKCE
/// verifier against the challenge the browser was sent with, and answers with moto's tokens.
#[derive(Default)]
struct TokenEndpoint {
    challenge: Mutex<Option<String>>,
    exchanges: Mutex<Vec<String>>,
}

async fn serve_token_endpoint(pool: Arc<Pool>, state: Arc<TokenEndpoint>, email: &'static str) -> String {
    let handler = move |body: axum::body::Bytes| {
        let (pool, state) = (Arc::clone(&pool), Arc::clone(&state));
        async move {
            let form: std::collections::HashMap<String, String> =
                serde_urlencoded::from_bytes(&body).unwrap_or_default();
            let grant = form.get("grant_type").cloned().unwrap_or_default();
            state.exchanges.lock().unwrap_or_else(|e| e.into_inner()).push(grant.clone());
            let refused = (StatusCode::BAD_REQUEST, axum::Json(json!({ "error": "invalid_grant" })));
            match grant.as_str() {
                "authorization_code" => {
                    let verifier = form.get("code_verifier").cloned().unwrap_or_default();
                    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
                    let expected = state.challenge.lock().unwrap_or_else(|e| e.into_inner()).clone();
                    if form.get("code").map(String::as_str) != Some("the-code") || Some(challenge) != expected {
                        return refused;
                    }
                    let (id, access, refresh) = tokens(&pool, email).await;
                    (
                        StatusCode::OK,
                        axum::Json(json!({ "id_token": id, "access_token": access, "refresh_token": refresh })),
                    )
                }
                "refresh_token" => {
                    let (id, access, _) = tokens(&pool, email).await;
                    (StatusCode::OK, axum::Json(json!({ "id_token": id, "access_token": access })))
                }
                _ => refused,
            }
        }
    };
    let app = axum::Router::new().route("/oauth2/token", axum::routing::post(handler));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a loopback port");
    let addr = listener.local_addr().expect("its address");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}

struct Answer {
    status: StatusCode,
    location: String,
    cookies: Vec<String>,
    text: String,
}

async fn get(app: &axum::Router, path: &str, cookie: &str, method: &str, form: &str) -> Answer {
    let mut req = Request::builder().method(method).uri(path).header(header::COOKIE, cookie);
    if method == "POST" {
        req = req.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    }
    let req = req.body(Body::from(form.to_string())).expect("a request");
    let resp = app.clone().oneshot(req).await.unwrap_or_else(|e| match e {});
    let status = resp.status();
    let location = resp.headers().get(header::LOCATION).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let cookies =
        resp.headers().get_all(header::SET_COOKIE).iter().filter_map(|v| v.to_str().ok().map(String::from)).collect();
    let bytes = resp.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    Answer { status, location, cookies, text: String::from_utf8_lossy(&bytes).into_owned() }
}

fn cookie_named(cookies: &[String], name: &str) -> Option<String> {
    cookies.iter().find(|c| c.starts_with(&format!("{name}="))).map(|c| c.split(';').next().unwrap_or("").to_string())
}

fn query_value(url: &str, key: &str) -> String {
    let q = url.split_once('?').map_or("", |(_, q)| q);
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(q).unwrap_or_default();
    pairs.into_iter().find(|(k, _)| k == key).map(|(_, v)| v).unwrap_or_default()
}

#[tokio::test]
async fn a_rep_signs_in_through_the_managed_login_is_refreshed_and_signs_out() {
    let email = "anna@acme.example"; // a rep of the sample routing
    let pool = Arc::new(pool(email, "sales").await);
    let endpoint = Arc::new(TokenEndpoint::default());
    let domain = serve_token_endpoint(Arc::clone(&pool), Arc::clone(&endpoint), email).await;
    let mut config = leadflow_app::config_files::load(None).expect("the sample configuration");
    config.settings.signing_keys = "console-test-secret".into();
    config.settings.public_url = "https://console.acme.example".into();
    let ports = Arc::new(Adapters {
        store: MemoryStore::new(),
        queue: MemoryQueue::new(),
        mailer: RecordingMailer::new(),
        bus: RecordingBus::new(),
        clock: SettableClock::at(Utc::now()),
        config: ConfigHandle::new(config),
    });
    let settings = CognitoSettings {
        domain: domain.clone(),
        issuer: pool.issuer.clone(),
        client_id: pool.client_id.clone(),
        jwks_url: pool.jwks_url.clone(),
        console_url: "https://console.acme.example".into(),
    };
    let app = leadflow_admin::console::router(
        ports,
        SignIn::Cognito(Arc::new(Cognito::new(settings.clone(), Arc::new(PoolKeys::new(&settings))))),
    );

    // Signed out: to sign-in, which goes to the managed login with PKCE and a state.
    let page = get(&app, "/console/leads/mine", "", "GET", "").await;
    assert_eq!(
        (page.status, page.location.as_str()),
        (StatusCode::SEE_OTHER, "/console/sign-in?next=%2Fconsole%2Fleads%2Fmine")
    );
    let start = get(&app, &page.location, "", "GET", "").await;
    assert!(start.location.starts_with(&format!("{domain}/oauth2/authorize?")), "{}", start.location);
    assert_eq!(query_value(&start.location, "client_id"), pool.client_id);
    assert_eq!(query_value(&start.location, "code_challenge_method"), "S256");
    assert_eq!(query_value(&start.location, "redirect_uri"), "https://console.acme.example/console/auth/callback");
    let oauth = cookie_named(&start.cookies, "leadflow_oauth").expect("the sign-in's cookie");
    assert!(start.cookies.iter().any(|c| c.contains("HttpOnly") && c.contains("Secure")), "{:?}", start.cookies);
    *endpoint.challenge.lock().unwrap_or_else(|e| e.into_inner()) =
        Some(query_value(&start.location, "code_challenge"));
    let state = query_value(&start.location, "state");

    // A callback with another state, or without the browser's cookie: refused.
    let forged = get(&app, "/console/auth/callback?code=the-code&state=forged", &oauth, "GET", "").await;
    assert_eq!(forged.status, StatusCode::BAD_REQUEST);
    let elsewhere = get(&app, &format!("/console/auth/callback?code=the-code&state={state}"), "", "GET", "").await;
    assert_eq!(elsewhere.status, StatusCode::BAD_REQUEST);

    // The real callback: signed in, back where she was going.
    let back = get(&app, &format!("/console/auth/callback?code=the-code&state={state}"), &oauth, "GET", "").await;
    assert_eq!((back.status, back.location.as_str()), (StatusCode::SEE_OTHER, "/console/leads/mine"), "{}", back.text);
    let session = cookie_named(&back.cookies, "leadflow_session").expect("a session");
    let refresh = cookie_named(&back.cookies, "leadflow_refresh").expect("a refresh token");
    let mine = get(&app, "/console/leads/mine", &session, "GET", "").await;
    assert_eq!(mine.status, StatusCode::OK);
    assert!(mine.text.contains("anna@acme.example · sales"), "{}", mine.text);

    // The session ended (no session cookie), the refresh token remains: a new session.
    let ended = get(&app, "/console/leads/mine", &refresh, "GET", "").await;
    assert_eq!(ended.location, "/console/auth/refresh?next=%2Fconsole%2Fleads%2Fmine");
    let renewed = get(&app, &ended.location, &refresh, "GET", "").await;
    assert_eq!(renewed.location, "/console/leads/mine");
    let session2 = cookie_named(&renewed.cookies, "leadflow_session").expect("a new session");
    assert_eq!(get(&app, "/console/leads/mine", &session2, "GET", "").await.status, StatusCode::OK);
    let grants = endpoint.exchanges.lock().unwrap_or_else(|e| e.into_inner()).clone();
    assert_eq!(grants, vec!["authorization_code", "refresh_token"]);

    // Sign-out (with the form's token) ends at Cognito's logout and forgets both cookies.
    let csrf_at = mine.text.find("name=\"csrf\" value=\"").expect("a sign-out form") + 19;
    let csrf = mine.text[csrf_at..].split('"').next().unwrap_or("").to_string();
    let out = get(&app, "/console/sign-out", &session, "POST", &format!("csrf={csrf}")).await;
    assert!(out.location.starts_with(&format!("{domain}/logout?client_id=")), "{}", out.location);
    assert!(out.location.contains("signed-out"));
    for name in ["leadflow_session", "leadflow_refresh"] {
        assert!(
            out.cookies.iter().any(|c| c.starts_with(&format!("{name}=;")) && c.contains("Max-Age=0")),
            "{name}: {:?}",
            out.cookies
        );
    }
}

#[tokio::test]
async fn a_user_in_no_group_or_a_salesperson_who_is_no_rep_is_not_let_in() {
    let pool = Arc::new(pool("stranger@acme.example", "sales").await);
    let endpoint = Arc::new(TokenEndpoint::default());
    let domain = serve_token_endpoint(Arc::clone(&pool), Arc::clone(&endpoint), "stranger@acme.example").await;
    let mut config = leadflow_app::config_files::load(None).expect("the sample configuration");
    config.settings.signing_keys = "console-test-secret".into();
    let ports = Arc::new(Adapters {
        store: MemoryStore::new(),
        queue: MemoryQueue::new(),
        mailer: RecordingMailer::new(),
        bus: RecordingBus::new(),
        clock: SettableClock::at(Utc::now()),
        config: ConfigHandle::new(config),
    });
    let settings = CognitoSettings {
        domain,
        issuer: pool.issuer.clone(),
        client_id: pool.client_id.clone(),
        jwks_url: pool.jwks_url.clone(),
        console_url: "http://127.0.0.1:8080".into(),
    };
    let app = leadflow_admin::console::router(
        ports,
        SignIn::Cognito(Arc::new(Cognito::new(settings.clone(), Arc::new(PoolKeys::new(&settings))))),
    );
    let start = get(&app, "/console/sign-in", "", "GET", "").await;
    let oauth = cookie_named(&start.cookies, "leadflow_oauth").expect("cookie");
    *endpoint.challenge.lock().unwrap_or_else(|e| e.into_inner()) =
        Some(query_value(&start.location, "code_challenge"));
    let state = query_value(&start.location, "state");
    let back = get(&app, &format!("/console/auth/callback?code=the-code&state={state}"), &oauth, "GET", "").await;
    assert_eq!(back.status, StatusCode::FORBIDDEN);
    assert!(back.text.contains("no rep in the routing configuration has your email"), "{}", back.text);
    assert!(cookie_named(&back.cookies, "leadflow_session").is_none());
}
