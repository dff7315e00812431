//! What keeps the local stack to its own machine: the admin token it starts with, and the
//! `Host` a request is addressed to.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use leadflow_app::api_error::ApiError;

/// Shortest admin token `leadflow dev` accepts: 16 characters of hex or base64 are 64 bits or
/// more, out of reach of guessing over HTTP; the token it makes up itself has 32 hex characters.
pub const MIN_ADMIN_TOKEN_CHARS: usize = 16;

/// Why an admin token given to `leadflow dev` is refused. The messages never repeat the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenProblem {
    #[error(
        "is set but empty, which would let every request use the admin API: give one of at least {MIN_ADMIN_TOKEN_CHARS} characters, or unset it for a random one"
    )]
    Empty,
    #[error(
        "is shorter than {MIN_ADMIN_TOKEN_CHARS} characters, short enough to guess: give a longer one, or unset it for a random one"
    )]
    Short,
    #[error("may hold only visible ASCII characters, no spaces: it travels in an HTTP header")]
    NotVisibleAscii,
}

/// Whether `token` may guard the admin API.
pub fn check_admin_token(token: &str) -> Result<(), TokenProblem> {
    if token.trim().is_empty() {
        Err(TokenProblem::Empty)
    } else if !token.bytes().all(|b| b.is_ascii_graphic()) {
        Err(TokenProblem::NotVisibleAscii)
    } else if token.len() < MIN_ADMIN_TOKEN_CHARS {
        Err(TokenProblem::Short)
    } else {
        Ok(())
    }
}

/// The host names a request may be addressed to. A page on another site can make a browser
/// send requests here by pointing its own name at 127.0.0.1 (DNS rebinding); its requests then
/// carry that name in `Host`, which is how they are told apart.
#[derive(Debug, Clone)]
pub struct Hosts {
    /// Lowercase, without port; an IPv6 address in brackets.
    extra: Vec<String>,
}

impl Hosts {
    /// Loopback names and addresses, the host of `public_url`, and the address the stack listens
    /// on when that is a particular one (`--addr 192.168.1.5:8080`).
    pub fn new(public_url: &str, listening: IpAddr) -> Self {
        let mut extra = Vec::new();
        if let Some(host) = reqwest::Url::parse(public_url.trim()).ok().and_then(|u| u.host_str().map(normalize)) {
            extra.push(host);
        }
        if !listening.is_unspecified() {
            extra.push(match listening {
                IpAddr::V4(ip) => ip.to_string(),
                IpAddr::V6(ip) => format!("[{ip}]"),
            });
        }
        Hosts { extra }
    }

    /// Whether a request whose `Host` header is `value` is for this stack.
    pub fn allows(&self, value: &str) -> bool {
        match host_name(value) {
            Some(name) => is_loopback(&name) || self.extra.contains(&name),
            None => false,
        }
    }
}

fn normalize(host: &str) -> String {
    host.trim_end_matches('.').to_ascii_lowercase()
}

/// The name in a `Host` value, without its port: `localhost:8080` → `localhost`,
/// `[::1]:8080` → `[::1]`. `None` when it is not a host at all.
fn host_name(value: &str) -> Option<String> {
    let value = value.trim();
    let (name, port) = if value.starts_with('[') {
        let end = value.find(']')?;
        let rest = &value[end + 1..];
        (&value[..=end], if rest.is_empty() { "" } else { rest.strip_prefix(':')? })
    } else {
        value.split_once(':').unwrap_or((value, ""))
    };
    let name_ok = !name.is_empty()
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'[' | b']' | b':'));
    (name_ok && port.bytes().all(|b| b.is_ascii_digit())).then(|| normalize(name))
}

fn is_loopback(name: &str) -> bool {
    if name == "localhost" {
        return true;
    }
    if let Some(v6) = name.strip_prefix('[').and_then(|n| n.strip_suffix(']')) {
        return v6.parse::<Ipv6Addr>().is_ok_and(|ip| ip.is_loopback());
    }
    name.parse::<Ipv4Addr>().is_ok_and(|ip| ip.is_loopback())
}

fn host_of(req: &Request) -> Option<String> {
    let headers: &HeaderMap = req.headers();
    match headers.get(header::HOST) {
        Some(v) => v.to_str().ok().map(str::to_string),
        // HTTP/2 carries it in the URI's authority instead.
        None => req.uri().authority().map(|a| a.as_str().to_string()),
    }
}

/// Refuses, with `421` and the API's JSON error, a request addressed to a host that is not this
/// stack's; pages get the same answer, as a browser would only show it to a page that should not
/// have sent the request.
pub async fn host_guard(State(hosts): State<Arc<Hosts>>, req: Request, next: Next) -> Response {
    let host = host_of(&req);
    if host.as_deref().is_some_and(|h| hosts.allows(h)) {
        return next.run(req).await;
    }
    let (status, code, message) = match host {
        None => (StatusCode::BAD_REQUEST, "host_required", "The request names no host (the Host header)."),
        Some(_) => (
            StatusCode::MISDIRECTED_REQUEST,
            "host_not_allowed",
            "The local stack answers only requests addressed to localhost, 127.0.0.1, [::1] or the host of public_url in leadflow.toml, so that pages on other sites cannot reach it through their own names (DNS rebinding).",
        ),
    };
    // Read what the client is sending, so that it sees this answer rather than a reset.
    leadflow_capture::drain(req.into_body(), leadflow_capture::DRAIN_LIMIT).await;
    ApiError::new(status, code, message).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_refused_empty_short_or_unprintable_and_never_shown() {
        assert_eq!(check_admin_token(""), Err(TokenProblem::Empty));
        assert_eq!(check_admin_token("   "), Err(TokenProblem::Empty));
        assert_eq!(check_admin_token("fifteen-chars-x"), Err(TokenProblem::Short));
        assert_eq!(check_admin_token("sixteen-chars-xx"), Ok(()));
        assert_eq!(check_admin_token("sixteen chars xxx"), Err(TokenProblem::NotVisibleAscii));
        assert_eq!(check_admin_token("sixteen-chars-xxé"), Err(TokenProblem::NotVisibleAscii));
        for p in [TokenProblem::Empty, TokenProblem::Short, TokenProblem::NotVisibleAscii] {
            assert!(!p.to_string().contains("fifteen"), "{p}");
        }
    }

    #[test]
    fn only_loopback_the_public_url_and_the_listening_address_are_hosts() {
        let hosts = Hosts::new("https://Leads.Acme.example/path", IpAddr::from([0, 0, 0, 0]));
        for ok in [
            "localhost",
            "localhost:8080",
            "LOCALHOST.:8080",
            "127.0.0.1:8080",
            "127.1.2.3",
            "[::1]:8080",
            "[::1]",
            "leads.acme.example",
            "leads.acme.example:443",
        ] {
            assert!(hosts.allows(ok), "{ok}");
        }
        for refused in [
            "evil.example",
            "evil.example:8080",
            "localhost.evil.example",
            "127.0.0.1.evil.example",
            "[::2]:8080",
            "10.0.0.1:8080",
            "localhost:80:80",
            "localhost:x",
            "[::1",
            "",
            "user@localhost",
        ] {
            assert!(!hosts.allows(refused), "{refused}");
        }
        let lan = Hosts::new("http://127.0.0.1:8080", IpAddr::from([192, 168, 1, 5]));
        assert!(lan.allows("192.168.1.5:8080") && !lan.allows("192.168.1.6:8080"));
    }
}
