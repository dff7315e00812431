//! Field normalization: the canonical form of what a visitor typed.

use crate::error::FieldProblem;
use crate::model::DomainKind;

/// A normalized email address: local part as typed (trimmed), domain lowercased, in punycode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NormalizedEmail {
    pub address: String,
    pub local: String,
    pub domain: String,
}

pub fn normalize_email(raw: &str) -> Result<NormalizedEmail, FieldProblem> {
    let _ = raw;
    todo!("normalize_email")
}

/// The dedupe key of a normalized address: hex SHA-256, so the store never keys on the address.
pub fn email_key(address: &str) -> String {
    let _ = address;
    todo!("email_key")
}

pub fn normalize_name(field: &str, raw: &str) -> Result<Option<String>, FieldProblem> {
    let _ = (field, raw);
    todo!("normalize_name")
}

pub fn normalize_text(field: &str, raw: &str, max_chars: usize) -> Result<Option<String>, FieldProblem> {
    let _ = (field, raw, max_chars);
    todo!("normalize_text")
}

pub fn normalize_phone(raw: &str, country: Option<&str>) -> Result<String, FieldProblem> {
    let _ = (raw, country);
    todo!("normalize_phone")
}

pub fn normalize_country(raw: &str) -> Option<String> {
    let _ = raw;
    todo!("normalize_country")
}

pub fn normalize_time_zone(raw: &str) -> Option<String> {
    let _ = raw;
    todo!("normalize_time_zone")
}

pub fn classify_domain(domain: &str) -> DomainKind {
    let _ = domain;
    todo!("classify_domain")
}

pub fn is_role_address(local: &str) -> bool {
    let _ = local;
    todo!("is_role_address")
}
