//! Unsubscribe: signed one-click opt-out links (RFC 8058).
