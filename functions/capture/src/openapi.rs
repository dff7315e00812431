//! `GET /openapi.json`: the OpenAPI 3.1 document of capture, the unsubscribe links and the admin
//! API (`docs/openapi.json`, the one copy, built into the binary as written). Capture serves it
//! because it is the function that is public and cheap; `tests/tests/openapi.rs` keeps the
//! document true to the routers.

use std::sync::OnceLock;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

pub const PATH: &str = "/openapi.json";

/// The document, byte for byte as it is in the repository.
pub const DOCUMENT: &str = include_str!("../../../docs/openapi.json");

/// Changes only with a deployment: five minutes of caching, then a revalidation that costs no
/// body while the `ETag` still matches.
const CACHE_CONTROL: &str = "public, max-age=300, must-revalidate";

fn etag() -> &'static HeaderValue {
    static ETAG: OnceLock<HeaderValue> = OnceLock::new();
    ETAG.get_or_init(|| {
        let digest = hex::encode(&Sha256::digest(DOCUMENT.as_bytes())[..16]);
        HeaderValue::from_str(&format!("\"{digest}\"")).unwrap_or_else(|_| HeaderValue::from_static("\"openapi\""))
    })
}

/// Whether `If-None-Match` names the current document (or `*`).
fn not_modified(headers: &HeaderMap) -> bool {
    let current = etag().as_bytes();
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().trim_start_matches("W/").as_bytes())
        .any(|t| t == current || t == b"*")
}

pub async fn document(headers: HeaderMap) -> Response {
    let cache = [(header::ETAG, etag().clone()), (header::CACHE_CONTROL, HeaderValue::from_static(CACHE_CONTROL))];
    if not_modified(&headers) {
        return (StatusCode::NOT_MODIFIED, cache).into_response();
    }
    (
        cache,
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("application/json")),
            (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        ],
        DOCUMENT,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_is_json_of_openapi_3_1() {
        let doc: serde_json::Value = serde_json::from_str(DOCUMENT).unwrap_or_default();
        assert_eq!(doc["openapi"], "3.1.0", "docs/openapi.json must be an OpenAPI 3.1 document");
        assert!(doc["paths"][PATH]["get"].is_object(), "the document describes where it is served");
    }

    #[test]
    fn a_matching_etag_is_not_modified_and_another_is() {
        let mut h = HeaderMap::new();
        assert!(!not_modified(&h));
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_static("\"stale\""));
        assert!(!not_modified(&h));
        h.insert(header::IF_NONE_MATCH, etag().clone());
        assert!(not_modified(&h));
        let weak = HeaderValue::from_str(&format!("\"x\", W/{}", etag().to_str().unwrap_or_default()));
        h.insert(header::IF_NONE_MATCH, weak.unwrap_or_else(|_| HeaderValue::from_static("")));
        assert!(not_modified(&h));
    }
}
