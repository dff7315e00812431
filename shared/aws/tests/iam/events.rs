//! The events Lambda hands the functions: API Gateway HTTP API requests (payload 2.0), the
//! scheduler's tick, SES events through EventBridge; and the HTTP answer read back.

use serde_json::{Value, json};

use super::stack::ORIGIN;

/// The host the HTTP API answers on; the functions' public URL (template: no PublicUrl, so the
/// API's own URL) names the same.
pub const API_HOST: &str = "iamtestapi.execute-api.us-east-1.amazonaws.com";

/// An HTTP API request as API Gateway hands it to a function.
pub fn http(method: &str, target: &str, content_type: Option<&str>, body: Option<&str>) -> Value {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut headers = json!({
        "accept": "application/json, text/html;q=0.9",
        "host": API_HOST,
        "origin": ORIGIN,
        "user-agent": "Mozilla/5.0 (iam test)",
        "x-forwarded-for": "198.51.100.7",
        "x-forwarded-proto": "https",
        "x-forwarded-port": "443",
    });
    if let Some(ct) = content_type {
        headers["content-type"] = Value::String(ct.to_string());
    }
    if let Some(b) = body {
        headers["content-length"] = Value::String(b.len().to_string());
    }
    json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "iamtestapi",
            "domainName": API_HOST,
            "domainPrefix": "iamtestapi",
            "http": { "method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "198.51.100.7", "userAgent": "Mozilla/5.0 (iam test)" },
            "requestId": ulid::Ulid::new().to_string(),
            "routeKey": "$default",
            "stage": "$default",
            "time": "01/Dec/2026:10:00:00 +0000",
            "timeEpoch": 1_796_119_200_000_u64,
        },
        "body": body,
        "isBase64Encoded": false,
    })
}

/// An HTTP answer: status and body as text.
pub fn answer(response: &Value) -> (u16, String) {
    let status = response["statusCode"].as_u64().and_then(|s| u16::try_from(s).ok()).unwrap_or(0);
    let body = response["body"].as_str().unwrap_or_default();
    let body = if response["isBase64Encoded"].as_bool().unwrap_or(false) {
        String::from_utf8_lossy(&base64(body)).into_owned()
    } else {
        body.to_string()
    };
    (status, body)
}

fn base64(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' | b'-' => Some(62),
        b'/' | b'_' => Some(63),
        _ => None,
    };
    let (mut out, mut acc, mut bits) = (Vec::new(), 0u32, 0);
    for v in text.bytes().filter_map(value) {
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

/// What EventBridge Scheduler sends nurture every minute.
pub fn tick() -> Value {
    json!({ "source": "scheduler", "time": chrono::Utc::now().to_rfc3339() })
}

/// An SES event for a sent email, as the configuration set's EventBridge destination delivers
/// it. `kind` is `Open`, `Click`, `Bounce`, ….
pub fn ses(kind: &str, message_id: &str, to: &str, tags: &[(&str, &str)]) -> Value {
    let now = chrono::Utc::now().to_rfc3339();
    let detail_type = match kind {
        "Bounce" => "Email Bounced",
        "Complaint" => "Email Complaint Received",
        "Delivery" => "Email Delivered",
        "Open" => "Email Opened",
        _ => "Email Clicked",
    };
    let tags: serde_json::Map<String, Value> = tags.iter().map(|(k, v)| (k.to_string(), json!([v]))).collect();
    let mut detail = json!({
        "eventType": kind,
        "mail": { "timestamp": now, "source": super::stack::SENDER, "messageId": message_id, "destination": [to], "tags": tags },
    });
    match kind {
        "Bounce" => {
            detail["bounce"] = json!({
                "bounceType": "Permanent", "bounceSubType": "General", "timestamp": now,
                "bouncedRecipients": [{ "emailAddress": to, "action": "failed", "status": "5.1.1" }],
            });
        }
        "Open" => detail["open"] = json!({ "timestamp": now, "userAgent": "Mozilla/5.0", "ipAddress": "198.51.100.7" }),
        _ => {
            detail["click"] =
                json!({ "timestamp": now, "link": "https://www.acme.example/pricing", "ipAddress": "198.51.100.7" })
        }
    }
    json!({
        "version": "0", "id": ulid::Ulid::new().to_string(), "detail-type": detail_type, "source": "aws.ses",
        "account": "123456789012", "time": now, "region": "us-east-1", "resources": [], "detail": detail,
    })
}
