//! Unsubscribe tokens: a signed token names its lead, and nothing else verifies.

use leadflow_core::model::LeadId;
use leadflow_core::unsubscribe::{TokenError, sign, verify};
use proptest::prelude::*;

const SECRET: &str = "a-test-secret-that-is-long-enough";

/// Any ULID: 48 bits of milliseconds, 80 random bits.
fn lead_id() -> impl Strategy<Value = LeadId> {
    (any::<u64>(), any::<u128>()).prop_map(|(ms, r)| LeadId::from_parts(ms & ((1 << 48) - 1), r & ((1 << 80) - 1)))
}

fn some_id() -> LeadId {
    LeadId::from_parts(1_750_000_000_000, 42)
}

/// Another character of the same alphabet, so that the token keeps its shape.
fn other_char(c: char) -> char {
    match c {
        '.' => '-',
        '0' => '1',
        'a' | 'A' => 'b',
        c if c.is_ascii_digit() => '0',
        c if c.is_ascii_lowercase() => 'a',
        _ => 'A',
    }
}

#[test]
fn a_signed_token_names_its_lead() {
    let token = sign(&SECRET.into(), some_id()).unwrap_or_default();
    assert!(token.starts_with(&format!("{}.", some_id())), "token: {token}");
    assert_eq!(verify(&SECRET.into(), &token), Ok(some_id()));
}

#[test]
fn tokens_are_url_safe_and_deterministic() {
    let a = sign(&SECRET.into(), some_id()).unwrap_or_default();
    let b = sign(&SECRET.into(), some_id()).unwrap_or_default();
    assert_eq!(a, b);
    assert!(a.chars().all(|c| c.is_ascii_alphanumeric() || c == '.'), "token: {a}");
}

#[test]
fn another_secret_is_refused() {
    let token = sign(&SECRET.into(), some_id()).unwrap_or_default();
    assert_eq!(verify(&"another-secret".into(), &token), Err(TokenError::BadSignature));
}

#[test]
fn an_empty_secret_is_an_error() {
    assert_eq!(sign(&"".into(), some_id()), Err(TokenError::NoSecret));
    let token = sign(&SECRET.into(), some_id()).unwrap_or_default();
    assert_eq!(verify(&"".into(), &token), Err(TokenError::NoSecret));
}

#[test]
fn another_leads_id_with_this_mac_is_refused() {
    let token = sign(&SECRET.into(), some_id()).unwrap_or_default();
    let mac = token.split_once('.').map(|(_, m)| m).unwrap_or_default();
    let other = LeadId::from_parts(1_750_000_000_001, 43);
    assert_eq!(verify(&SECRET.into(), &format!("{other}.{mac}")), Err(TokenError::BadSignature));
}

#[test]
fn garbage_is_malformed() {
    for bad in ["", ".", "abc", "not-a-ulid.00", "01JXXXXXXXXXXXXXXXXXXXXXXX", &format!("{}.", some_id())] {
        assert_eq!(verify(&SECRET.into(), bad), Err(TokenError::Malformed), "{bad:?}");
    }
    // A shortened or lengthened MAC is malformed, not a near miss.
    let token = sign(&SECRET.into(), some_id()).unwrap_or_default();
    assert_eq!(verify(&SECRET.into(), &token[..token.len() - 2]), Err(TokenError::Malformed));
    assert_eq!(verify(&SECRET.into(), &format!("{token}00")), Err(TokenError::Malformed));
}

proptest! {
    #[test]
    fn sign_then_verify_round_trips(id in lead_id()) {
        let token = sign(&SECRET.into(), id);
        prop_assert!(token.is_ok());
        prop_assert_eq!(verify(&SECRET.into(), &token.unwrap_or_default()), Ok(id));
    }

    #[test]
    fn changing_any_character_is_refused(id in lead_id(), position in any::<prop::sample::Index>()) {
        let token = sign(&SECRET.into(), id).unwrap_or_default();
        let chars: Vec<char> = token.chars().collect();
        let at = position.index(chars.len());
        let tampered: String = chars
            .iter()
            .enumerate()
            .map(|(i, c)| if i == at { other_char(*c) } else { *c })
            .collect();
        prop_assert_ne!(&tampered, &token);
        // Either the token no longer parses, or it names a lead its MAC was not made for.
        prop_assert!(verify(&SECRET.into(), &tampered).is_err(), "accepted {} (from {})", tampered, token);
    }
}
