//! The one HTTPS client every AWS SDK client of Leadflow is built with: the SDK's requests sent
//! through reqwest.
//!
//! The SDK's own client (aws-smithy-http-client) speaks HTTP/2 as well, and links h2 and a
//! connection pool of its own into every function, about 0.5 MB of code that no AWS API of ours
//! needs (DynamoDB, SQS, SES, EventBridge and Secrets Manager all answer HTTP/1.1). reqwest is in
//! every function already (capture's CAPTCHA check, the admin's JWKS), over rustls on ring with
//! the platform's certificates and HTTP/1.1 only; so the SDK goes through it too. No aws-lc
//! either: the SDK's `default-https-client` feature would fix the crypto to that C library.
//!
//! What the SDK asks of a client (aws-smithy-runtime-api's `HttpClient`): apply the connect and
//! read timeouts it names, keep connections for reuse, and say what kind of failure a failed
//! request was, since its retry policy tells a timeout, a broken connection and anything else
//! apart. The operation timeouts stay the SDK's own.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_dynamodb::config::SharedHttpClient;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use http_body_util::BodyExt;

/// A new HTTPS client (plain HTTP too, for an emulator's endpoint).
pub fn https_client() -> SharedHttpClient {
    SharedHttpClient::new(ReqwestClient::default())
}

/// The connect and read timeouts a connector applies.
type Timeouts = (Option<Duration>, Option<Duration>);

/// One reqwest client per pair of timeouts the SDK asks for (in practice one or two per
/// process), each keeping its own connections.
#[derive(Debug, Default)]
struct ReqwestClient {
    connectors: Mutex<HashMap<Timeouts, SharedHttpConnector>>,
}

impl HttpClient for ReqwestClient {
    fn http_connector(&self, settings: &HttpConnectorSettings, _: &RuntimeComponents) -> SharedHttpConnector {
        let key = (settings.connect_timeout(), settings.read_timeout());
        let build = || {
            let mut builder = reqwest::Client::builder();
            if let Some(connect) = key.0 {
                builder = builder.connect_timeout(connect);
            }
            if let Some(read) = key.1 {
                builder = builder.read_timeout(read);
            }
            // Building fails only when the TLS backend cannot start; every request then says so.
            SharedHttpConnector::new(ReqwestConnector { client: builder.build().map_err(|e| Arc::new(e.to_string())) })
        };
        match self.connectors.lock() {
            Ok(mut connectors) => connectors.entry(key).or_insert_with(build).clone(),
            // A thread panicked while holding the map: a connector of its own still works.
            Err(_) => build(),
        }
    }
}

#[derive(Debug)]
struct ReqwestConnector {
    client: Result<reqwest::Client, Arc<String>>,
}

impl HttpConnector for ReqwestConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let client = self.client.clone();
        HttpConnectorFuture::new(async move {
            let client = client.map_err(|why| ConnectorError::other(format!("no HTTPS client: {why}").into(), None))?;
            send(&client, request).await
        })
    }
}

async fn send(client: &reqwest::Client, request: HttpRequest) -> Result<HttpResponse, ConnectorError> {
    let refused = |why: &str| ConnectorError::user(why.to_string().into());
    let method = reqwest::Method::from_bytes(request.method().as_bytes()).map_err(|_| refused("an unknown method"))?;
    let mut outgoing = client.request(method, request.uri());
    for (name, value) in request.headers() {
        outgoing = outgoing.header(name, value);
    }
    // Read as a stream, not taken from memory: the SDK watches the request body's progress
    // (stalled-stream protection) and abandons and retries an attempt whose body is never read,
    // which would send an email twice.
    let body = request
        .into_body()
        .collect()
        .await
        .map_err(|e| ConnectorError::io(format!("the request body: {e}").into()))?
        .to_bytes();
    let response = outgoing.body(body).send().await.map_err(failure)?;
    let status = StatusCode::try_from(response.status().as_u16())
        .map_err(|_| ConnectorError::other("the response has no valid status".into(), None))?;
    let headers: Vec<(String, String)> = response
        .headers()
        .iter()
        // A value that is not text is left out: no AWS API of ours sends one.
        .filter_map(|(name, value)| Some((name.as_str().to_string(), value.to_str().ok()?.to_string())))
        .collect();
    let bytes = response.bytes().await.map_err(failure)?;
    let mut answer = HttpResponse::new(status, SdkBody::from(bytes));
    for (name, value) in headers {
        answer
            .headers_mut()
            .try_append(name, value)
            .map_err(|e| ConnectorError::other(format!("a response header: {e}").into(), None))?;
    }
    Ok(answer)
}

/// A failed request as the SDK's retry policy reads it: a timeout, a connection that broke or
/// could not be made (both retried), or something else.
fn failure(e: reqwest::Error) -> ConnectorError {
    if e.is_timeout() {
        ConnectorError::timeout(e.into())
    } else if e.is_connect() || e.is_request() || e.is_body() {
        ConnectorError::io(e.into())
    } else {
        ConnectorError::other(e.into(), None)
    }
}
