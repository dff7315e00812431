//! The two common ways people write a number, read as `phonenumber::parse(Some(default), text)`
//! reads them, without its parser. That parse checks the text with a grammar that compares every
//! character with forty punctuation marks, over half of a phone's cost on the core path
//! (docs/performance.md, section 1). Each reader answers `None` whenever the text is anything
//! else or phonenumber might read it differently; the caller then asks phonenumber. The tests
//! hold each reading to phonenumber's on every region's example numbers written many ways.
//!
//! What both rely on, from phonenumber 0.3.10 (`parser::parse_with`, `helper::country_code`,
//! `helper::international_prefix`, `helper::national_number`, `validator::length`):
//! - a text of digits and the separators ` -.()/` has no extension (those need a letter, `#`,
//!   `;`, `,` or `~`), and with three digits or more passes the viability grammar;
//! - the RFC 3966 reading, tried first, takes `+1-303-…` apart at its first separator, but
//!   refuses a text with a space or, after a `+`, without any of `-.()`; without a `+` it gives
//!   the same digits as the natural one;
//! - the digits are the number once its separators are dropped;
//! - where the default region's international prefix starts the digits, phonenumber strips it
//!   and reads a country code after it: left to it.

use phonenumber::metadata::{DATABASE, Metadata};

use super::{Number, Region, compiled};

/// The longest national number phonenumber reads (`MAX_LENGTH_FOR_NSN`) plus a country code.
const MAX_DIGITS: usize = 17 + 3;

/// The shortest and longest national number phonenumber accepts (`MIN_LENGTH_FOR_NSN`,
/// `MAX_LENGTH_FOR_NSN`).
const NATIONAL_LENGTHS: std::ops::RangeInclusive<usize> = 2..=17;

/// The digits of `text`, if it holds nothing but digits and the separators ` -.()/`.
fn digits_of(text: &str) -> Option<([u8; MAX_DIGITS], usize)> {
    let mut digits = [0u8; MAX_DIGITS];
    let mut len = 0;
    for b in text.bytes() {
        match b {
            b'0'..=b'9' => {
                *digits.get_mut(len)? = b;
                len += 1;
            }
            b' ' | b'-' | b'.' | b'(' | b')' | b'/' => {}
            _ => return None,
        }
    }
    (len >= 3).then_some((digits, len))
}

/// `+`, a country code and the rest (`+49 30 901820`, `+1 (212) 555-0100`, `+4930901820`).
/// The country code is the first one to three digits that are a known code; the rest, with the
/// *default* region's national prefix stripped as phonenumber strips it even after a country
/// code, is the national number. Left to phonenumber: a text without a space but with one of
/// `-.()`, which RFC 3966's reading takes apart at its first separator (`+1-303-…`).
pub(in crate::normalize) fn read_plus_written(text: &str, default: &Metadata) -> Option<Number> {
    let rest = text.strip_prefix('+')?;
    if !rest.contains(' ') && rest.contains(['-', '.', '(', ')']) {
        return None;
    }
    let (buffer, len) = digits_of(rest)?;
    // ASCII digits only, so the slice is text.
    let digits = std::str::from_utf8(&buffer[..len]).ok()?;
    let region = compiled(default)?;
    if digits.starts_with('0') || region.international_prefix.as_ref().is_some_and(|p| p.is_match(digits)) {
        return None;
    }
    let (code, national) = (1..=3).find_map(|n| {
        let code = digits[..n].parse::<u16>().ok()?;
        DATABASE.by_code(&code).is_some().then(|| (code, &digits[n..]))
    })?;
    number(code, national, default, region)
}

/// Digits in groups as the default region writes them at home (`030 901820`, `(415) 555-0100`):
/// the default region's code, and the digits without its national prefix, as phonenumber strips
/// it. Left to phonenumber: digits that start with the region's code (it may read them as
/// the code).
pub(in crate::normalize) fn read_nationally_written(text: &str, default: &Metadata) -> Option<Number> {
    let (buffer, len) = digits_of(text)?;
    let digits = std::str::from_utf8(&buffer[..len]).ok()?;
    let region = compiled(default)?;
    let code = default.country_code();
    if region.international_prefix.as_ref().is_some_and(|p| p.is_match(digits))
        || digits.starts_with(code.to_string().as_str())
    {
        return None;
    }
    number(code, digits, default, region)
}

/// The number of country code `code` whose digits after the code are `digits`, read in
/// `default` as phonenumber reads them; `None` where that is left to phonenumber.
fn number(code: u16, digits: &str, default: &Metadata, region: &Region) -> Option<Number> {
    let national = without_national_prefix(digits, default, region)?;
    if !NATIONAL_LENGTHS.contains(&national.len()) {
        return None;
    }
    Some(Number { code, national: national.parse().ok()? })
}

/// What phonenumber's `parse_with` keeps of `digits` (after a country code, or all of them) once
/// the *default* region's national prefix is stripped; `None` where that is left to phonenumber.
fn without_national_prefix<'d>(digits: &'d str, default: &Metadata, region: &Region) -> Option<&'d str> {
    // `national_number`: the prefix for parsing, where it matches at the start, is cut off
    // (its carrier code, which phonenumber keeps aside, is never shown); a plain prefix where
    // the region has no pattern for it.
    let stripped = match &region.national_prefix_for_parsing {
        Some(pattern) => match pattern.find(digits) {
            None => digits,
            // A region with a rewrite rule (Argentina's, Japan's...) rewrites only where the
            // pattern's last group took part in the match; that is left to phonenumber.
            Some(found) if default.national_prefix_transform_rule().is_some() => {
                let groups = pattern.captures(digits)?;
                if groups.get(groups.len() - 1).is_some() {
                    return None;
                }
                &digits[found.end()..]
            }
            Some(found) => &digits[found.end()..],
        },
        None => match default.national_prefix() {
            Some(prefix) if digits.starts_with(prefix) => &digits[prefix.len()..],
            _ => digits,
        },
    };
    // `parse_with` strips the plain prefix once more, then keeps the stripped digits unless
    // `validator::length` finds them too short for the region; it never does while the region's
    // general description lists no lengths, which is so for every region of phonenumber 0.3.10.
    // Should an update list some, such numbers are left to phonenumber.
    if !default.descriptors().general().possible_length().is_empty() {
        return None;
    }
    Some(match default.national_prefix() {
        Some(prefix) if stripped.starts_with(prefix) => &stripped[prefix.len()..],
        _ => stripped,
    })
}

#[cfg(test)]
mod tests {
    use phonenumber::metadata::Descriptor;

    use super::*;

    /// Default regions with a bit of everything: prefixes for parsing with carrier codes, an
    /// international prefix that does not start with 0 (the former Soviet `8 10`), prefixes that
    /// are rewritten, no national prefix at all, local-only lengths.
    const DEFAULTS: [&str; 28] = [
        "DE", "US", "GB", "FR", "IT", "RU", "KZ", "AR", "MX", "BR", "JP", "AU", "IN", "CN", "NL", "ES", "AT", "HU",
        "NZ", "KR", "IL", "EG", "BY", "UZ", "SG", "ZA", "CH", "SE",
    ];

    /// Each text of each region's example numbers, read in its own region and three of
    /// [`DEFAULTS`]; where `quick` answers, phonenumber answers the same number. Answers how
    /// many were read quickly and how many tried.
    fn compare(
        quick: fn(&str, &Metadata) -> Option<Number>,
        texts: impl Fn(&Metadata, &str, Option<String>) -> Vec<String>,
    ) -> (usize, usize) {
        let defaults: Vec<&Metadata> = DEFAULTS.into_iter().filter_map(|id| DATABASE.by_id(id)).collect();
        let (mut read, mut tried) = (0, 0);
        for (i, meta) in DATABASE.iter().enumerate() {
            let d = meta.descriptors();
            let examples = [Some(d.general()), d.fixed_line(), d.mobile(), d.toll_free(), d.voip(), d.uan()];
            for example in examples.into_iter().flatten().filter_map(Descriptor::example) {
                let own = std::iter::once(meta);
                let others = (0..3).map(|k| defaults[(i * 3 + k) % defaults.len()]);
                for default in own.chain(others) {
                    let Ok(id) = default.id().parse::<phonenumber::country::Id>() else { continue };
                    // Dialled from the default region: its international prefix first.
                    let idd = default.preferred_international_prefix().map(|p| p.replace('~', ""));
                    for text in texts(meta, example, idd) {
                        tried += 1;
                        let Some(ours) = quick(&text, default) else { continue };
                        let theirs = phonenumber::parse(Some(id), &text).map(|n| Number::from(&n));
                        assert_eq!(Ok(ours), theirs.map_err(|e| e.to_string()), "{text} read in {}", default.id());
                        read += 1;
                    }
                }
            }
        }
        (read, tried)
    }

    #[test]
    fn plus_written_numbers_read_as_phonenumber_reads_them() {
        let (read, tried) = compare(read_plus_written, |meta, example, idd| {
            let cc = meta.country_code();
            let (head, tail) = example.split_at(example.len().min(3));
            let mut texts = vec![
                format!("+{cc} {example}"),
                format!("+{cc} 0{example}"),
                format!("+{cc} {example}1"),
                format!("+{cc} ({head}) {tail}"),
                format!("+{cc}{head} {tail}"),
                format!("+{cc} {head}-{tail}"),
                format!("+{cc} {head}.{tail} "),
                format!("+{cc} {head}/{tail}"),
                format!("+{cc}-{head} {tail}"),
                // Without a space, RFC 3966's reading: the code is what comes before the `-`.
                format!("+{cc}{head}-{tail}"),
                format!("+{cc}-{head}-{tail}"),
                format!("+{} {example}", cc + 1),
                // E.164, and the national prefix kept after the code, as people write it.
                format!("+{cc}{example}"),
                format!("+{cc}0{example}"),
                format!("+{cc}/{example}"),
                format!("+{cc} (0){head} {tail}"),
                format!("+{cc} {}{example}", meta.national_prefix().unwrap_or_default()),
                // No country code starts with 0.
                format!("+0{cc} {example}"),
                format!("+0 {cc}{example}"),
                // Extensions, which phonenumber keeps apart.
                format!("+{cc} {example} x12"),
                format!("+{cc} {example} ext. 5"),
            ];
            let grouped = phonenumber::parse(None, format!("+{cc}{example}"))
                .map(|n| n.format().mode(phonenumber::Mode::International).to_string());
            texts.extend(grouped.ok());
            texts.extend(idd.map(|idd| format!("+{idd}{cc} {example}")));
            texts
        });
        // Most of what was tried is read quickly, so the comparison is not an empty one.
        assert!(read > tried / 3, "only {read} of {tried} read without phonenumber's parser");
    }

    #[test]
    fn nationally_written_numbers_read_as_phonenumber_reads_them() {
        let (read, tried) = compare(read_nationally_written, |meta, example, idd| {
            let cc = meta.country_code();
            let prefix = meta.national_prefix().unwrap_or_default();
            let (head, tail) = example.split_at(example.len().min(3));
            let mut texts = vec![
                example.to_string(),
                format!("{prefix}{example}"),
                format!("{prefix}{prefix}{example}"),
                format!("0{example}"),
                format!("({prefix}{head}) {tail}"),
                format!("{prefix}{head}-{tail}"),
                format!("{prefix}{head}/{tail}"),
                format!("{prefix}{head}.{tail}"),
                format!("{prefix}{head} {tail}1"),
                format!("{head} {}", &tail[tail.len().min(1)..]),
                format!("{cc}{example}"),
                format!("{cc} {head} {tail}"),
                format!("{prefix}{example} x12"),
                format!("{prefix}{example}#"),
                // Too short once the prefix is stripped, so phonenumber keeps it.
                format!("{prefix}{head}"),
                format!("{prefix}{}", &head[..head.len().min(2)]),
            ];
            let written = phonenumber::parse(None, format!("+{cc}{example}"))
                .map(|n| n.format().mode(phonenumber::Mode::National).to_string());
            texts.extend(written.ok());
            texts.extend(idd.map(|idd| format!("{idd} {cc} {example}")));
            texts
        });
        assert!(read > tried / 3, "only {read} of {tried} read without phonenumber's parser");
    }
}
