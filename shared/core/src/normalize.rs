//! Field normalization: the canonical form of what a visitor typed.
//!
//! Everything here is fed straight from the internet, so no function may panic on any input, and
//! no problem message repeats the value it is about: messages end up in logs and API answers,
//! and the values are personal data.

use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};
use std::sync::LazyLock;

use email_address::{EmailAddress, Options};
use sha2::{Digest, Sha256};
use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

use crate::error::FieldProblem;
use crate::model::DomainKind;
use crate::zone::Zone;

mod phone;
mod phone_patterns;

pub use phone::{Phone, normalize_phone, read_phone};

/// RFC 5321's limit for a whole address (a path of 256 octets minus the angle brackets).
pub const MAX_EMAIL_LEN: usize = 254;
/// RFC 5321's limit for the part before the `@`.
pub const MAX_LOCAL_PART_LEN: usize = 64;
/// Longest first or last name kept, in characters.
pub const MAX_NAME_CHARS: usize = 100;
/// Longest phone number looked at, in characters: real numbers with spacing and an extension
/// fit easily, and it bounds what the phone parser (regex-heavy) has to chew on.
pub const MAX_PHONE_CHARS: usize = 40;

const FREE_EMAIL_DOMAINS: &str = include_str!("../data/free_email_domains.txt");
const ROLE_LOCAL_PARTS: &str = include_str!("../data/role_local_parts.txt");
/// mailchecker's list, front-coded by the build script (`build.rs` says how and why).
const DISPOSABLE_EMAIL_DOMAINS_FRONT_CODED: &str =
    include_str!(concat!(env!("OUT_DIR"), "/disposable_email_domains.txt"));
const COUNTRIES: &str = include_str!("../data/countries.tsv");

/// The number of [`normalize_email`]'s rules. Capture carries the address it normalized to
/// validation, which takes it only under the same number; bump it with any change to what
/// `normalize_email` answers, so that messages queued before the change are normalized again.
/// The test `email_rules_are_numbered_with_their_answers` fails until it is bumped.
pub const EMAIL_RULES: u32 = 1;

/// A normalized email address: trimmed, lower case, domain in punycode (see [`normalize_email`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NormalizedEmail {
    pub address: String,
    pub local: String,
    pub domain: String,
}

fn problem(field: &str, code: &str, message: &str) -> FieldProblem {
    FieldProblem::new(field, code, message)
}

fn invalid_email(message: &str) -> FieldProblem {
    problem("email", "invalid_email", message)
}

/// The canonical form of an address, which is also what leads are deduplicated on.
///
/// Both parts are lower-cased. RFC 5321 lets a mailbox's local part be case sensitive, but
/// practically every provider ignores case, and two leads for one person (two owners, two
/// nurture sequences) cost more than the rare case-sensitive mailbox. Dots and `+tags` are
/// kept: ignoring them is a Gmail rule, not a general one (at many providers `a.b@` and `ab@`
/// are different people), and a tag is often how a person tracks who they gave the address to.
///
/// The local part must be ASCII: SES (our mailer) only delivers to 7-bit local parts, so a
/// lead with any other local part could never be emailed. Quoted local parts, comments and IP
/// literals are legal RFC 5322 but, in a form, are typos or probes; they are refused too.
pub fn normalize_email(raw: &str) -> Result<NormalizedEmail, FieldProblem> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err(problem("email", "required", "Enter an email address."));
    }
    if has_control(trimmed) {
        return Err(problem(
            "email",
            "invalid_characters",
            "The email address contains control characters such as line breaks.",
        ));
    }
    if longer_than(trimmed, MAX_EMAIL_LEN) {
        return Err(problem("email", "too_long", "The email address is longer than 254 characters."));
    }
    // The last '@' separates the domain: a quoted local part may contain '@', a domain never.
    let Some((local_raw, domain_raw)) = trimmed.rsplit_once('@') else {
        return Err(invalid_email("The email address needs an @ followed by a domain, like name@example.com."));
    };
    if local_raw.is_empty() {
        return Err(invalid_email("The email address needs a name before the @."));
    }
    if domain_raw.is_empty() {
        return Err(invalid_email("The email address needs a domain after the @, like example.com."));
    }
    if local_raw.starts_with('"') || local_raw.contains(['(', ')']) || domain_raw.contains(['(', ')']) {
        return Err(invalid_email("Quoted names and comments are not accepted in email addresses."));
    }
    if domain_raw.starts_with('[') {
        return Err(invalid_email("The email address needs a domain name after the @, not an IP address."));
    }
    if !local_raw.is_ascii() {
        return Err(invalid_email(
            "The part before the @ can only use Latin letters, digits and symbols such as . _ + -",
        ));
    }
    let local = local_raw.to_ascii_lowercase();
    if local.len() > MAX_LOCAL_PART_LEN {
        return Err(problem("email", "too_long", "The part before the @ is longer than 64 characters."));
    }
    if !EmailAddress::is_valid_local_part(&local) {
        return Err(invalid_email("The part before the @ is not valid (check for spaces, commas or double dots)."));
    }
    let domain = normalize_email_domain(domain_raw)?;
    let mut address = String::with_capacity(local.len() + 1 + domain.len());
    address.push_str(&local);
    address.push('@');
    address.push_str(&domain);
    if address.len() > MAX_EMAIL_LEN {
        // An international domain grows when written in punycode.
        return Err(problem("email", "too_long", "The email address is longer than 254 characters."));
    }
    // Belt and braces: the assembled address must also pass a full RFC 5322 parser, in its
    // strict mode (no display name, no domain literal, a TLD required).
    let strict = Options::default().without_display_text().without_domain_literal().with_required_tld();
    if EmailAddress::parse_with_options(&address, strict).is_err() {
        return Err(invalid_email("This is not a valid email address."));
    }
    Ok(NormalizedEmail { address, local, domain })
}

/// An address carried as already normalized, split into its parts after a scan rather than a
/// parse: printable ASCII with no capitals, one `@` with a name of at most 64 characters before
/// it and a dotted host name after it, at most 254 in all. Anything else is `None`, so that a
/// message changed on its way cannot bring in what [`normalize_email`] refuses (a line break
/// for a mail header, a megabyte of text).
pub fn plain_normalized_email(address: &str) -> Option<NormalizedEmail> {
    let printable = |b: u8| b.is_ascii_graphic() && !b.is_ascii_uppercase();
    if address.len() > MAX_EMAIL_LEN || !address.bytes().all(printable) {
        return None;
    }
    let (local, domain) = address.split_once('@')?;
    let host = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.';
    if local.is_empty() || local.len() > MAX_LOCAL_PART_LEN || !domain.contains('.') || !domain.bytes().all(host) {
        return None;
    }
    Some(NormalizedEmail { address: address.to_string(), local: local.to_string(), domain: domain.to_string() })
}

/// The domain in lower-case ASCII (punycode for international names), checked to be a host
/// name mail can be delivered to.
fn normalize_email_domain(raw: &str) -> Result<String, FieldProblem> {
    let bad_domain = || invalid_email("The domain after the @ is not a valid domain name.");
    // UTS 46 mapping also folds full-width letters and ideographic full stops that phone
    // keyboards produce; the ASCII checks below then apply to what will actually be used.
    let mut ascii = idna::domain_to_ascii(raw).map_err(|_| bad_domain())?;
    ascii.make_ascii_lowercase();
    if ascii.len() > 253 {
        return Err(problem("email", "too_long", "The domain after the @ is too long."));
    }
    if !ascii.contains('.') {
        return Err(invalid_email("The domain after the @ needs a dot, like example.com."));
    }
    for label in ascii.split('.') {
        let ldh = label.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if label.is_empty() || label.len() > 63 || !ldh || label.starts_with('-') || label.ends_with('-') {
            return Err(bad_domain());
        }
    }
    // A numeric TLD means a dotted IP address or a typo; no such TLD exists.
    if ascii.rsplit('.').next().is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit())) {
        return Err(bad_domain());
    }
    Ok(ascii)
}

/// The dedupe key of a normalized address: hex SHA-256, so the store never keys on the address.
pub fn email_key(address: &str) -> String {
    hex::encode(Sha256::digest(address.as_bytes()))
}

/// A first or last name: single line, whitespace collapsed, NFC, at most 100 characters.
/// Markup is kept as typed; it is escaped wherever a name is shown.
pub fn normalize_name(field: &str, raw: &str) -> Result<Option<String>, FieldProblem> {
    normalize_text(field, raw, MAX_NAME_CHARS)
}

/// A single-line text field (company, job title, …): trimmed, whitespace runs collapsed to one
/// space, NFC so that the same visible text is the same string, at most `max_chars` characters.
/// Empty after trimming is `None`.
pub fn normalize_text(field: &str, raw: &str, max_chars: usize) -> Result<Option<String>, FieldProblem> {
    if let Some(chars) = single_line(field, raw)? {
        if chars == 0 {
            return Ok(None);
        }
        if chars > max_chars {
            return Err(too_long_text(field, max_chars));
        }
        if chars == raw.len() {
            // Nearly everything typed: one copy, without the walk word by word below.
            return Ok(Some(raw.to_string()));
        }
    }
    let nfc = nfc(raw);
    let mut out = String::with_capacity(nfc.len());
    for word in nfc.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    if out.is_empty() {
        return Ok(None);
    }
    if longer_than(&out, max_chars) {
        return Err(too_long_text(field, max_chars));
    }
    Ok(Some(out))
}

/// [`normalize_text`]'s verdict without its value: the same problem for the same input, but
/// text already in NFC (all of ASCII, and nearly everything typed) is only read, not copied.
pub fn check_text(field: &str, raw: &str, max_chars: usize) -> Result<(), FieldProblem> {
    if let Some(chars) = single_line(field, raw)? {
        return if chars > max_chars { Err(too_long_text(field, max_chars)) } else { Ok(()) };
    }
    if !is_nfc(raw) {
        return normalize_text(field, raw, max_chars).map(drop);
    }
    // The collapsed text's length: its words and one space between each two.
    let mut chars = 0usize;
    for word in raw.split_whitespace() {
        chars += usize::from(chars > 0) + if word.is_ascii() { word.len() } else { word.chars().count() };
    }
    if chars > max_chars { Err(too_long_text(field, max_chars)) } else { Ok(()) }
}

/// One pass over the bytes of a single-line field: control characters refused, and for ASCII
/// text (whose only whitespace is then the space) the length of its collapsed form, the words
/// and one space between each two. `None` for text that is not ASCII.
///
/// Control characters are refused rather than stripped: in a single-line field they are either
/// a header-injection attempt or a paste accident, and silently changing a name hides both.
fn single_line(field: &str, raw: &str) -> Result<Option<usize>, FieldProblem> {
    let bytes = raw.as_bytes();
    let scan = ByteScan::of(bytes);
    if scan.has_control(bytes) {
        return Err(problem(
            field,
            "invalid_characters",
            "This field cannot contain control characters such as line breaks.",
        ));
    }
    Ok(scan.ascii.then_some(scan.collapsed))
}

/// What the single-line checks read from a text's bytes, in one pass of eight bytes at a time.
#[derive(Debug, PartialEq)]
struct ByteScan {
    /// A byte below 0x20, or 0x7F.
    ascii_control: bool,
    ascii: bool,
    /// The length of the text with its spaces collapsed: the bytes other than the space, and one
    /// space between each two words.
    collapsed: usize,
}

impl ByteScan {
    /// A field is a few words; a loop over its bytes one at a time was ≈ 6 % of the core path's
    /// instructions, and the compiler's vector loops only pay from 32 bytes on. Here each eight
    /// bytes are one `u64` whose bytes are compared all at once (a comparison leaves 0x80 in the
    /// bytes where it holds); the last eight are padded with spaces, which add nothing. The
    /// collapsed length is counted in the bytes of a `u64` too (one for a byte kept, one more
    /// where a word starts), and summed by a multiplication every 15 eights, before any byte of
    /// the sum can pass 255: no population count, which x86-64's baseline lacks.
    fn of(bytes: &[u8]) -> ByteScan {
        const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
        const HIGH: u64 = ONES * 0x80;
        const LOW7: u64 = ONES * 0x7F;
        const SPACES: u64 = ONES * 0x20;
        let (mut control, mut high, mut kept) = (0u64, 0u64, 0usize);
        // Whether the byte before the current eight was a space, in the first byte's high bit:
        // a word starts at a byte that is not a space after one that is (or at the text's start).
        let mut space_before = 0x80u64;
        for fifteen_eights in bytes.chunks(8 * 15) {
            let mut counts = 0u64;
            for eight in fifteen_eights.chunks(8) {
                let x = match <[u8; 8]>::try_from(eight) {
                    Ok(whole) => u64::from_le_bytes(whole),
                    // Byte by byte into a word of spaces: a copy of a length not known here would
                    // be a call to `memcpy`, which costs more than these few bytes.
                    Err(_) => eight
                        .iter()
                        .enumerate()
                        .fold(SPACES, |word, (i, &b)| word & !(0xFF << (8 * i)) | u64::from(b) << (8 * i)),
                };
                // 0x80 where a byte is a space: its difference from 0x20 has no bit set.
                let diff = x ^ SPACES;
                let space = !(((diff & LOW7) + LOW7) | diff) & HIGH;
                // An ASCII control is a byte b with (b + 1) & 0x7F below 0x21 (0x7F wraps to 0);
                // bytes with the high bit are not ASCII and left out. No sum here carries into
                // the next byte.
                let wrapped = ((x & LOW7) + ONES) & LOW7;
                control |= !((wrapped + ONES * (0x80 - 0x21)) | x) & HIGH;
                high |= x & HIGH;
                let not_space = !space & HIGH;
                let word_start = not_space & ((space << 8) | space_before);
                space_before = space >> 56;
                counts += (not_space >> 7) + (word_start >> 7);
            }
            kept += (counts.wrapping_mul(ONES) >> 56) as usize;
        }
        ByteScan {
            ascii_control: control != 0,
            ascii: high == 0,
            // Each word's first byte was counted twice; the first word has no space before it.
            collapsed: kept.saturating_sub(1),
        }
    }

    /// Whether the scanned `bytes` hold a control character: an ASCII one, or a C1 control,
    /// which is two bytes and so only in text that is not ASCII.
    fn has_control(&self, bytes: &[u8]) -> bool {
        self.ascii_control || (!self.ascii && has_c1_control(bytes))
    }
}

/// Whether `s` has a control character (Unicode's Cc: U+0000–U+001F and U+007F–U+009F). In
/// UTF-8 those are the bytes below 0x20, 0x7F, and 0xC2 followed by 0x80–0x9F; [`ByteScan`]
/// finds the first two kinds eight bytes at a time, and whether the text is ASCII.
fn has_control(s: &str) -> bool {
    ByteScan::of(s.as_bytes()).has_control(s.as_bytes())
}

/// A C1 control (U+0080–U+009F): 0xC2 followed by 0x80–0x9F.
fn has_c1_control(bytes: &[u8]) -> bool {
    bytes.windows(2).any(|pair| pair[0] == 0xC2 && pair[1] < 0xA0)
}

fn too_long_text(field: &str, max_chars: usize) -> FieldProblem {
    problem(field, "too_long", &format!("This field is longer than {max_chars} characters."))
}

/// Whether `s` has more than `max` characters; the byte length settles most cases without
/// counting (a character is one to four bytes).
pub(crate) fn longer_than(s: &str, max: usize) -> bool {
    s.len() > max && (s.len() / 4 > max || s.chars().nth(max).is_some())
}

/// Whether `s` is certainly in NFC. The quick check can answer "maybe" for text that is in fact
/// NFC; such text is then normalized, which is always right, just slower.
fn is_nfc(s: &str) -> bool {
    s.is_ascii() || unicode_normalization::is_nfc_quick(s.chars()) == unicode_normalization::IsNormalized::Yes
}

/// `s` in NFC, borrowed when it already is.
fn nfc(s: &str) -> std::borrow::Cow<'_, str> {
    if is_nfc(s) { std::borrow::Cow::Borrowed(s) } else { std::borrow::Cow::Owned(s.nfc().collect()) }
}

struct CountryTable {
    alpha2: HashSet<&'static str>,
    /// Folded alpha-3 codes, names and aliases → alpha-2.
    by_name: HashMap<String, &'static str>,
}

static COUNTRY_TABLE: LazyLock<CountryTable> = LazyLock::new(|| {
    let mut rows: Vec<(&'static str, &'static str, Vec<&'static str>)> = Vec::new();
    for line in data_lines(COUNTRIES) {
        let mut cols = line.split('\t').map(str::trim).filter(|s| !s.is_empty());
        if let (Some(a2), Some(a3)) = (cols.next(), cols.next())
            && a2.len() == 2
            && a3.len() == 3
        {
            rows.push((a2, a3, cols.collect()));
        }
    }
    let mut alpha2 = HashSet::new();
    let mut by_name = HashMap::new();
    // Codes first, so that no name or alias can shadow an alpha-3 code.
    for (a2, a3, _) in &rows {
        alpha2.insert(*a2);
        by_name.entry(fold_name(a3)).or_insert(*a2);
    }
    for (a2, _, names) in &rows {
        for name in names {
            by_name.entry(fold_name(name)).or_insert(*a2);
        }
    }
    CountryTable { alpha2, by_name }
});

/// Lower case, no accents, letters and digits only, no leading "the": so that "the
/// Netherlands", "U.S.A." and "Cote d'Ivoire" find their rows.
fn fold_name(s: &str) -> String {
    let s = s.trim();
    let s = s.get(..4).filter(|prefix| prefix.eq_ignore_ascii_case("the ")).and_then(|_| s.get(4..)).unwrap_or(s);
    if s.is_ascii() {
        // The same fold without decomposing: ASCII has no marks and folds its own case.
        return s.bytes().filter(u8::is_ascii_alphanumeric).map(|b| char::from(b.to_ascii_lowercase())).collect();
    }
    s.nfd().filter(|c| !is_combining_mark(*c) && c.is_alphanumeric()).flat_map(char::to_lowercase).collect()
}

/// ISO 3166-1 alpha-2, upper case, from an alpha-2 or alpha-3 code in any case or an English
/// name (and a few local names and common aliases such as "UK" or "Deutschland"). Unknown
/// values are `None`.
pub fn normalize_country(raw: &str) -> Option<String> {
    let trimmed = raw.trim();
    // The longest official name in the table is under 60 characters. Control characters are
    // refused rather than folded away: they never belong in a country field.
    if trimmed.is_empty() || trimmed.len() > 100 || trimmed.chars().any(char::is_control) {
        return None;
    }
    let table = &*COUNTRY_TABLE;
    if trimmed.len() == 2 {
        let upper = trimmed.to_ascii_uppercase();
        if table.alpha2.contains(upper.as_str()) {
            return Some(upper);
        }
    }
    table.by_name.get(&fold_name(trimmed)).map(|code| (*code).to_string())
}

/// An IANA time zone name as the tz database spells it (`europe/berlin` → `Europe/Berlin`);
/// `None` for anything else.
pub fn normalize_time_zone(raw: &str) -> Option<String> {
    let trimmed = raw.trim();
    // The longest IANA name is about 32 characters.
    if trimmed.is_empty() || trimmed.len() > 64 {
        return None;
    }
    Zone::canonical_name(trimmed).map(str::to_string)
}

fn data_lines(data: &'static str) -> impl Iterator<Item = &'static str> {
    data.lines().map(str::trim).filter(|line| !line.is_empty() && !line.starts_with('#'))
}

static FREE_MAIL: LazyLock<HashSet<&'static str>> = LazyLock::new(|| data_lines(FREE_EMAIL_DOMAINS).collect());

static ROLES: LazyLock<HashSet<&'static str>> = LazyLock::new(|| data_lines(ROLE_LOCAL_PARTS).collect());

/// mailchecker's own `is_valid` scans its list of ~56 000 domains linearly for every suffix of
/// the domain (hundreds of microseconds a call) and also answers `false` for addresses its own,
/// stricter syntax check dislikes, which would make an unusual but real domain look
/// throwaway. Its list, in a hash set built once, gives the same answer on the same suffixes
/// in well under a microsecond. Building it is the first address's cost in a process: ≈ 1.4 ms
/// to expand the text and ≈ 3 ms to hash it on the development machine.
static DISPOSABLE: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    // Expanded once for the process's life: its domains are borrowed as long as the set is.
    let domains: &'static str = expand_front_coded(DISPOSABLE_EMAIL_DOMAINS_FRONT_CODED).leak();
    // Sized at once: growing to ~55 000 entries would rehash the set a dozen times.
    let mut set = HashSet::with_capacity(memchr::memchr_iter(b'\n', domains.as_bytes()).count());
    set.extend(domains.lines());
    set
});

/// The build script's front-coded lines (one character for the bytes shared with the line
/// before, counted from `'0'`, then the rest) as the whole domains, one a line.
fn expand_front_coded(coded: &str) -> String {
    let mut out: Vec<u8> = Vec::with_capacity(coded.len() * 3 / 2);
    let mut domain: Vec<u8> = Vec::with_capacity(128);
    for line in coded.as_bytes().split(|&b| b == b'\n') {
        let Some((&shared, rest)) = line.split_first() else {
            continue;
        };
        // A count beyond the domain before keeps all of it.
        domain.truncate(usize::from(shared.saturating_sub(b'0')));
        domain.extend_from_slice(rest);
        out.extend_from_slice(&domain);
        out.push(b'\n');
    }
    // The build script writes ASCII only; a broken byte would only make one domain unmatched.
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

fn is_disposable(domain: &str) -> bool {
    // Like mailchecker: the domain and each parent down to (not including) the bare TLD, so
    // `x.mailinator.com` is throwaway too.
    let mut rest = domain;
    loop {
        let Some((_, parent)) = rest.split_once('.') else {
            return false;
        };
        if DISPOSABLE.contains(rest) {
            return true;
        }
        rest = parent;
    }
}

/// Whether a domain belongs to a throwaway-mail service, a free consumer provider, or (by
/// elimination) an organization.
pub fn classify_domain(domain: &str) -> DomainKind {
    let trimmed = domain.trim().trim_end_matches('.');
    let ascii: std::borrow::Cow<'_, str> = if !trimmed.is_ascii() {
        match idna::domain_to_ascii(trimmed) {
            Ok(ascii) => ascii.into(),
            Err(_) => return DomainKind::Corporate,
        }
    } else if trimmed.bytes().any(|b| b.is_ascii_uppercase()) {
        trimmed.to_ascii_lowercase().into()
    } else {
        // A normalized address's domain: already lower case.
        trimmed.into()
    };
    if is_disposable(&ascii) {
        DomainKind::Disposable
    } else if FREE_MAIL.contains(ascii.as_ref()) {
        DomainKind::FreeMail
    } else {
        DomainKind::Corporate
    }
}

/// Whether a local part names a function (`info`, `sales+web`, `No-Reply`) rather than a person.
pub fn is_role_address(local: &str) -> bool {
    let base = local.split('+').next().unwrap_or_default().trim();
    if base.is_empty() || base.len() > MAX_LOCAL_PART_LEN {
        return false;
    }
    ROLES.contains(base.to_ascii_lowercase().as_str())
}

/// Loads the lookup tables (phone metadata, domain lists, countries, time zones) now rather
/// than on the first lead: the phone metadata alone takes a tenth of a second to load, which
/// would otherwise land on the first visitor after every cold start.
pub fn warm_up() {
    let _ = normalize_phone("+1 202 555 0100", Some("US"));
    let _ = classify_domain("example.com");
    let _ = is_role_address("info");
    let _ = normalize_country("DE");
    let _ = normalize_time_zone("Europe/Berlin");
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    #[test]
    fn front_coded_lines_expand_to_whole_domains() {
        let coded = "0mail.ga\n5ml\n0x.io\n2y.io\n";
        assert_eq!(super::expand_front_coded(coded), "mail.ga\nmail.ml\nx.io\nx.y.io\n");
        // A count beyond the line before takes what there is; an empty line is skipped.
        assert_eq!(super::expand_front_coded("0ab\n\n9c\n"), "ab\nabc\n");
    }

    proptest! {
        /// The byte scan answers as `char::is_control` over the characters does, for any text,
        /// with the C0 and C1 controls and their UTF-8 neighbours (U+00A0 starts with 0xC2 too)
        /// drawn often.
        #[test]
        fn has_control_answers_as_char_is_control(
            text in proptest::collection::vec(
                prop_oneof![
                    any::<char>(),
                    prop::char::range('\u{0}', '\u{1F}'),
                    prop::char::range('\u{7E}', '\u{A1}'),
                    Just('é'),
                ],
                0..40,
            ).prop_map(|chars| chars.into_iter().collect::<String>())
        ) {
            prop_assert_eq!(super::has_control(&text), text.chars().any(char::is_control));
        }

        /// Eight bytes at a time answers as one byte at a time, at every length around the
        /// eights and with the bytes the comparisons single out drawn often.
        #[test]
        fn byte_scan_answers_as_a_walk_over_the_bytes(
            bytes in proptest::collection::vec(
                prop_oneof![Just(b' '), Just(b'a'), Just(0x1F), Just(0x20), Just(0x7F), Just(0x80), Just(0xC2), any::<u8>()],
                0..300,
            )
        ) {
            let walked = super::ByteScan {
                ascii_control: bytes.iter().any(|&b| b < 0x20 || b == 0x7F),
                ascii: bytes.is_ascii(),
                collapsed: bytes
                    .split(|&b| b == b' ')
                    .filter(|word| !word.is_empty())
                    .map(|word| word.len() + 1)
                    .sum::<usize>()
                    .saturating_sub(1),
            };
            prop_assert_eq!(super::ByteScan::of(&bytes), walked);
        }
    }
}
