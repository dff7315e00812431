//! Phone numbers: read once, in validation, into their E.164 form, display form and region.

use std::sync::LazyLock;

use phonenumber::metadata::DATABASE;

use super::{MAX_PHONE_CHARS, has_control, longer_than, normalize_country, phone_patterns, problem};
use crate::error::FieldProblem;

/// phonenumber keeps the regexes of its metadata in one LRU cache of 100 entries; numbers from a
/// handful of countries overflow it and every parse then recompiles regexes (a millisecond per
/// number instead of a few microseconds, measured in docs/performance.md). The metadata holds a
/// few thousand patterns, so a cache that fits them all is compiled once and then only read.
static PHONE_REGEX_CACHE: LazyLock<()> = LazyLock::new(|| {
    if let Ok(mut cache) = DATABASE.cache().lock() {
        *cache = regex_cache::RegexCache::new(20_000);
    }
});

/// A phone number in E.164 (`+4930901820`). A number written without `+` is read in `country`
/// (an ISO alpha-2 code or anything [`normalize_country`] understands). Extensions are dropped:
/// E.164 has no place for them.
pub fn normalize_phone(raw: &str, country: Option<&str>) -> Result<String, FieldProblem> {
    read_phone(raw, country).map(|phone| phone.e164)
}

/// A phone number as validation keeps it: what later stages show and reason with comes from the
/// one parse, so that they link no phone metadata and never load it (a tenth of a second on a
/// cold function).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Phone {
    /// `+4930901820`.
    pub e164: String,
    /// As people write it, grouped for its country: `+49 30 901820`.
    pub display: String,
    /// The ISO alpha-2 code of the region the number belongs to, when the number names one
    /// (`+1 202 …` is `US`; a number of a shared non-geographic code is none).
    pub country: Option<String>,
}

/// [`normalize_phone`], with the display form and the number's region.
pub fn read_phone(raw: &str, country: Option<&str>) -> Result<Phone, FieldProblem> {
    LazyLock::force(&PHONE_REGEX_CACHE);
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err(problem("phone", "required", "Enter a phone number."));
    }
    if has_control(trimmed) {
        return Err(problem("phone", "invalid_characters", "The phone number cannot contain control characters."));
    }
    if longer_than(trimmed, MAX_PHONE_CHARS) {
        return Err(problem("phone", "too_long", "The phone number is longer than 40 characters."));
    }
    let invalid = || {
        problem(
            "phone",
            "invalid_phone",
            "This is not a valid phone number; include the country code, like +49 30 901820.",
        )
    };
    // Only a region with metadata: phonenumber unwraps the default region's. Every id of 0.3.10
    // has some, but a metadata update that drops one must not turn into a panic.
    let region = country.and_then(normalize_country).and_then(|code| phone_patterns::country_id(&code));
    // Most numbers are read without phonenumber's parser (`phone_patterns::quick`); a valid one
    // is what phonenumber's parse would have answered first, so the answer is the same.
    let quick = region.and_then(|id| {
        let default = DATABASE.by_id(id.as_ref())?;
        phone_patterns::read_plus_written(trimmed, default)
            .or_else(|| phone_patterns::read_nationally_written(trimmed, default))
    });
    if let Some(number) = quick
        && let Ok(Some(country)) = phone_patterns::region_if_valid(number)
    {
        return Ok(Phone {
            e164: phone_patterns::e164(number),
            display: phone_patterns::international(number),
            country,
        });
    }
    let first = phonenumber::parse(region, trimmed).map_err(|_| invalid())?;
    let number = if phone_patterns::is_valid(&first) {
        first
    } else {
        reread_international(&first, trimmed).ok_or_else(invalid)?
    };
    let ours = phone_patterns::Number::from(&number);
    let e164 = phone_patterns::e164(ours);
    let display = phone_patterns::international(ours);
    let country =
        phone_patterns::region(ours).unwrap_or_else(|()| number.country().id().map(|id| id.as_ref().to_string()));
    Ok(Phone { e164, display, country })
}

/// phonenumber strips the *default region's* national prefix even from a number written with
/// its own country code: `+39 06 …` read with a German default loses Rome's leading 0, and
/// `+7 812 …` (St Petersburg) loses its 8 to Russia's prefix. Spain's metadata has no national
/// prefix and `00` as its international prefix, so reading the number "from Spain" keeps the
/// digits after the country code whole. A number dialled with another international prefix
/// (`011 36 1 …` from the US) is re-read as `+36 1 …`. Only numbers the first reading saw a
/// country code in are re-read, and only a valid result with that same country code is taken.
fn reread_international(first: &phonenumber::PhoneNumber, raw: &str) -> Option<phonenumber::PhoneNumber> {
    use phonenumber::country::Source;
    let code = first.code().value();
    let read = |text: &str| {
        phonenumber::parse(Some(phonenumber::country::Id::ES), text)
            .ok()
            .filter(|n| n.code().value() == code && phone_patterns::is_valid(n))
    };
    match first.code().source() {
        Source::Plus => read(raw),
        Source::Idd => read(raw).or_else(|| {
            // Only plain digit groups: joining the digits of `… x123` would swallow an extension.
            if !raw.chars().all(|c| c.is_ascii_digit() || matches!(c, ' ' | '(' | ')' | '-' | '.' | '/')) {
                return None;
            }
            // International prefixes are 2 to 4 digits (00, 011, 0011, 810…).
            let digits: String = raw.chars().filter(char::is_ascii_digit).collect();
            let code = code.to_string();
            (2..=4)
                .filter_map(|idd_len| digits.get(idd_len..))
                .find(|rest| rest.starts_with(&code))
                .and_then(|rest| read(&format!("+{rest}")))
        }),
        _ => None,
    }
}
