//! The one HTTPS client every AWS SDK client of Leadflow is built with.
//!
//! rustls on ring, set explicitly rather than through the SDK's `default-https-client` feature,
//! which fixes the crypto to aws-lc: that C library takes minutes to compile, and through
//! rustls's unified features it would also be compiled by the local stack's build, which uses
//! no AWS at all. Ring makes the Lambda bootstraps smaller too (docs/performance.md).

use aws_sdk_dynamodb::config::SharedHttpClient;
use aws_smithy_http_client::Builder;
use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};

/// A new HTTPS client (plain HTTP too, for an emulator's endpoint); the certificates trusted are
/// the platform's, loaded when a client first uses it.
pub fn https_client() -> SharedHttpClient {
    Builder::new().tls_provider(Provider::Rustls(CryptoMode::Ring)).build_https()
}
