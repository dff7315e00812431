//! phonenumber's validity check, international format and region of a number, answered from
//! regexes compiled once per region.
//!
//! phonenumber looks every pattern up in its shared regex cache on every use: the pattern text is
//! hashed (SipHash over patterns of up to a few hundred bytes), the LRU order is updated, and all
//! of it happens under one global `Mutex`. A validity check touches a dozen patterns, formatting
//! a few more, so the lookups cost about as much as the matching, and serialize threads. Here each
//! region's patterns are compiled the first time a number of that region is read and then only
//! read.
//!
//! The logic is phonenumber 0.3.10's `validator::is_valid_with`, `source_for` and `number_type`
//! (reduced to "is the type known"), its formatter's international mode and
//! `PhoneNumber::country().id()`, over the same metadata; `tests` compares the answers.

use foldhash::HashMap;
use std::sync::{LazyLock, OnceLock};

mod quick;

pub(super) use quick::{read_nationally_written, read_plus_written};

use phonenumber::NationalNumber;
use phonenumber::metadata::{DATABASE, Descriptor, Metadata};
use regex::{Regex, RegexBuilder};

/// What the answers below need of a number: its country code and national number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Number {
    pub code: u16,
    pub national: NationalNumber,
}

impl From<&phonenumber::PhoneNumber> for Number {
    fn from(number: &phonenumber::PhoneNumber) -> Self {
        Number { code: number.code().value(), national: *number.national() }
    }
}

/// A descriptor's national-number pattern and the lengths it admits.
struct Pattern {
    lengths: Vec<u16>,
    /// The metadata's pattern anchored at the start: phonenumber asks whether the leftmost match
    /// starts at 0, which is whether a match starting at 0 exists.
    regex: Regex,
}

impl Pattern {
    fn is_match(&self, national: &str) -> bool {
        // Lengths never exceed u16 for a number that parsed (at most 17 digits).
        let len = u16::try_from(national.len()).unwrap_or(u16::MAX);
        (self.lengths.is_empty() || self.lengths.contains(&len)) && self.regex.is_match(national)
    }
}

/// What a validity check needs of one region's metadata, compiled.
struct Region {
    general: Pattern,
    /// The types phonenumber's `number_type` can answer (fixed line, mobile, premium rate, toll
    /// free, shared cost, VoIP, personal, pager, UAN, voicemail): any match makes it known, so
    /// the order is free, and the common two go first to stop early.
    kinds: Vec<Pattern>,
    leading_digits: Option<Regex>,
    /// The region's international (IDD) prefix and national prefix for parsing, anchored: the
    /// quick readers (`quick`) only ask what they match at the start of a number.
    international_prefix: Option<Regex>,
    national_prefix_for_parsing: Option<Regex>,
}

impl Region {
    fn compile(meta: &Metadata) -> Option<Region> {
        let d = meta.descriptors();
        let kinds = [
            d.fixed_line(),
            d.mobile(),
            d.premium_rate(),
            d.toll_free(),
            d.shared_cost(),
            d.voip(),
            d.personal_number(),
            d.pager(),
            d.uan(),
            d.voicemail(),
        ];
        Some(Region {
            general: pattern(d.general())?,
            kinds: kinds.into_iter().flatten().map(pattern).collect::<Option<_>>()?,
            leading_digits: match meta.leading_digits() {
                Some(re) => Some(anchored(re.as_str())?),
                None => None,
            },
            international_prefix: match meta.international_prefix() {
                Some(re) => Some(anchored(re.as_str())?),
                None => None,
            },
            national_prefix_for_parsing: match meta.national_prefix_for_parsing() {
                Some(re) => Some(anchored(re.as_str())?),
                None => None,
            },
        })
    }

    /// `number_type(meta, national) != Type::Unknown`.
    fn knows(&self, national: &str) -> bool {
        self.general.is_match(national) && self.kinds.iter().any(|k| k.is_match(national))
    }
}

fn pattern(desc: &Descriptor) -> Option<Pattern> {
    Some(Pattern { lengths: desc.possible_length().to_vec(), regex: anchored(desc.national_number().as_str())? })
}

/// phonenumber compiles its metadata patterns with `ignore_whitespace`; so does this. The line
/// break keeps a trailing comment, were there one, from swallowing the closing parenthesis.
fn anchored(source: &str) -> Option<Regex> {
    build(&format!("^(?:{source}\n)"))
}

/// Without Unicode, `\d` is `[0-9]`: every text these patterns meet is ASCII digits (a number
/// written from its integer, or the quick readers' digits), and Unicode's classes made compiling
/// a region's patterns 3-4 times slower (Italy's 7.0 ms against 2.0: a cold function's first lead
/// from there waited for it).
fn build(source: &str) -> Option<Regex> {
    RegexBuilder::new(source).ignore_whitespace(true).unicode(false).build().ok()
}

/// Compiled regions, keyed by the address of their metadata in phonenumber's static database:
/// that is exact even for the non-geographic entities, which share the id "001".
static REGIONS: LazyLock<HashMap<usize, OnceLock<Option<Region>>>> =
    LazyLock::new(|| DATABASE.iter().map(|meta| (key(meta), OnceLock::new())).collect());

fn key(meta: &Metadata) -> usize {
    std::ptr::from_ref(meta) as usize
}

/// phonenumber's `Id` of a region of its metadata, by the region's code (`DE`); `None` for a
/// code that is no region of the metadata, or none phonenumber has an `Id` for (the
/// non-geographic `001`). What `code.parse::<Id>()` and `DATABASE.by_id` answer together, from
/// one table: that parse compares the code with every id's name in turn, which showed in the core
/// path's profile.
pub(super) fn country_id(code: &str) -> Option<phonenumber::country::Id> {
    static IDS: LazyLock<HashMap<&'static str, phonenumber::country::Id>> = LazyLock::new(|| {
        DATABASE
            .iter()
            .filter_map(|meta| {
                let id = meta.id().parse::<phonenumber::country::Id>().ok()?;
                (id.as_ref() == meta.id()).then_some((meta.id(), id))
            })
            .collect()
    });
    IDS.get(code).copied()
}

/// The ISO code of the region `meta` is, as `PhoneNumber::country().id()` writes it; `None` for
/// the non-geographic metadata.
fn region_code(meta: &Metadata) -> Option<String> {
    country_id(meta.id()).map(|id| id.as_ref().to_string())
}

/// The compiled form of `meta`; `None` only if a pattern failed to compile here, in which case
/// the caller falls back to phonenumber itself.
fn compiled(meta: &Metadata) -> Option<&'static Region> {
    REGIONS.get(&key(meta))?.get_or_init(|| Region::compile(meta)).as_ref()
}

/// Which metadata to validate against (phonenumber's `source_for`), or `None` when no region
/// claims the number. `Err` when a region could not be compiled here.
fn source_for(code: u16, national: &str) -> Result<Option<&'static Metadata>, ()> {
    let Some(regions) = DATABASE.region(&code) else { return Ok(None) };
    if let [only] = regions.as_slice() {
        return Ok(if *only == "001" {
            DATABASE.by_code(&code).and_then(|m| m.into_iter().next())
        } else {
            country_id(only).and_then(|id| DATABASE.by_id(id.as_ref()))
        });
    }
    for region in regions {
        let Some(meta) = DATABASE.by_id(region) else { continue };
        let compiled = compiled(meta).ok_or(())?;
        let claims = match &compiled.leading_digits {
            Some(leading) => leading.is_match(national),
            None => compiled.knows(national),
        };
        if claims {
            country_id(region).ok_or(())?;
            return Ok(Some(meta));
        }
    }
    Ok(None)
}

/// Same answer as `phonenumber::is_valid(number)`.
pub(super) fn is_valid(number: &phonenumber::PhoneNumber) -> bool {
    region_if_valid(Number::from(number)).map_or_else(|()| phonenumber::is_valid(number), |region| region.is_some())
}

/// [`region`] of a number [`is_valid`] holds valid, `None` for one it does not; `Err` when a
/// region could not be compiled here. Both look for the region that claims the number, so a
/// number without leading zeros is looked up once.
pub(super) fn region_if_valid(number: Number) -> Result<Option<Option<String>>, ()> {
    let mut digits = itoa::Buffer::new();
    let national = national_text(number.national, &mut digits);
    let Some(meta) = source_for(number.code, &national)? else { return Ok(None) };
    if !compiled(meta).ok_or(())?.knows(&national) {
        return Ok(None);
    }
    if number.national.zeros() > 0 {
        return region(number).map(Some);
    }
    Ok(Some(region_code(meta)))
}

/// `number.format().mode(Mode::E164)`: E.164 is the country code and the national number with
/// its leading zeros, which phonenumber writes without consulting any format (it does look the
/// formats up first, which is the cost saved here). Written out by hand: `format!` cost more
/// than the rest of it.
pub(super) fn e164(number: Number) -> String {
    let mut digits = itoa::Buffer::new();
    let national = national_text(number.national, &mut digits);
    let mut out = String::with_capacity(20);
    out.push('+');
    out.push_str(itoa::Buffer::new().format(number.code));
    out.push_str(&national);
    out
}

/// A national number as phonenumber writes it, leading zeros included (Italy's fixed lines keep
/// theirs), in `digits` unless it has any: a phone's few numbers written without an allocation
/// and `fmt`'s machinery each, which cost more than the rest of [`e164`].
fn national_text(national: NationalNumber, digits: &mut itoa::Buffer) -> std::borrow::Cow<'_, str> {
    let value = digits.format(national.value());
    match national.zeros() {
        0 => std::borrow::Cow::Borrowed(value),
        zeros => std::borrow::Cow::Owned("0".repeat(usize::from(zeros)) + value),
    }
}

/// One of the metadata's formats, compiled: the digits it applies to and how it groups them.
struct Grouping {
    /// The last (most specific) of the format's leading-digit patterns, as phonenumber uses;
    /// `None` when the format lists none, and then it applies to every number.
    leading_digits: Option<Regex>,
    /// Unanchored, as phonenumber matches and replaces with it.
    pattern: Regex,
    /// The replacement, `$1 $2 $3`.
    format: String,
}

impl Grouping {
    fn compile(format: &phonenumber::metadata::Format) -> Option<Grouping> {
        Some(Grouping {
            leading_digits: match format.leading_digits().last() {
                Some(re) => Some(anchored(re.as_str())?),
                None => None,
            },
            pattern: build(format.pattern().as_str())?,
            format: format.format().to_string(),
        })
    }

    /// `national` grouped by this format, if it applies (phonenumber's `formatter::formatter`
    /// test, then its `replace`). The precedence is kept as it is: a format without leading
    /// digits is taken without matching its pattern. A format with them applies only where its
    /// pattern's match is the whole number, so the replacement is that match's expansion: one
    /// search for the groups, where a test and then a replacement searched twice.
    fn group(&self, national: &str) -> Option<String> {
        let Some(leading) = &self.leading_digits else {
            return Some(self.pattern.replace(national, self.format.as_str()).into_owned());
        };
        if !leading.is_match(national) {
            return None;
        }
        let groups = self.pattern.captures(national)?;
        let whole = groups.get(0)?;
        if whole.start() != 0 || whole.end() != national.len() {
            return None;
        }
        let mut out = String::with_capacity(national.len() + 4);
        groups.expand(&self.format, &mut out);
        Some(out)
    }
}

/// The formats of each country code's main region (the one phonenumber's formatter takes),
/// keyed by the code.
static GROUPINGS: LazyLock<HashMap<u16, OnceLock<Option<Vec<Grouping>>>>> =
    LazyLock::new(|| DATABASE.iter().map(|meta| (meta.country_code(), OnceLock::new())).collect());

/// The compiled formats for numbers of `code`; `None` when a pattern failed to compile here or no
/// region has the code.
fn groupings(code: u16) -> Option<&'static [Grouping]> {
    let compiled = GROUPINGS.get(&code)?.get_or_init(|| {
        let meta = DATABASE.by_code(&code)?.into_iter().next()?;
        let formats =
            if meta.international_formats().is_empty() { meta.formats() } else { meta.international_formats() };
        formats.iter().map(Grouping::compile).collect()
    });
    compiled.as_deref()
}

/// `number.format().mode(Mode::International)` without the extension (`+49 30 901820`): E.164,
/// and so the stored number, has none, and its display must not either.
pub(super) fn international(number: Number) -> String {
    let code = number.code;
    // Only a metadata pattern this regex engine refuses (`every_region_compiles` says none
    // does): the number then shows as stored, as a lead an older build kept does.
    let Some(groupings) = groupings(code) else { return e164(number) };
    let mut digits = itoa::Buffer::new();
    let national = national_text(number.national, &mut digits);
    let mut out = String::with_capacity(24);
    out.push('+');
    out.push_str(itoa::Buffer::new().format(code));
    out.push(' ');
    match groupings.iter().find_map(|g| g.group(&national)) {
        Some(grouped) => out.push_str(&grouped),
        None => out.push_str(&national),
    }
    out
}

/// `number.country().id()`, as its ISO alpha-2 code: the region that claims the number, none
/// for a code shared by non-geographic services. `Err` when a region could not be compiled here.
pub(super) fn region(number: Number) -> Result<Option<String>, ()> {
    // phonenumber picks the region from the national number without its leading zeros.
    let meta = source_for(number.code, itoa::Buffer::new().format(number.national.value()))?;
    Ok(meta.and_then(region_code))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every region's example numbers, and the same digits cut short, lengthened and changed,
    /// read as written and with the region's code, give phonenumber's answer.
    #[test]
    fn answers_as_phonenumber_does() {
        let (mut checked, mut formatted) = (0, 0);
        for meta in DATABASE.iter() {
            let d = meta.descriptors();
            let examples = [
                Some(d.general()),
                d.fixed_line(),
                d.mobile(),
                d.toll_free(),
                d.premium_rate(),
                d.shared_cost(),
                d.personal_number(),
                d.voip(),
                d.pager(),
                d.uan(),
                d.voicemail(),
                d.emergency(),
                d.short_code(),
            ];
            let default_region = meta.id().parse::<phonenumber::country::Id>().ok();
            for example in examples.into_iter().flatten().filter_map(Descriptor::example) {
                let mut variants = vec![example.to_string(), format!("{example}1"), format!("0{example}")];
                if example.len() > 3 {
                    variants.push(example[..example.len() - 1].to_string());
                    variants.push(format!("9{}", &example[1..]));
                    variants.push(format!("{}0", &example[..example.len() - 1]));
                }
                for digits in variants {
                    for text in [format!("+{} {digits}", meta.country_code()), digits.clone()] {
                        let Ok(n) = phonenumber::parse(default_region, &text) else { continue };
                        assert_eq!(is_valid(&n), phonenumber::is_valid(&n), "{} {text}", meta.id());
                        let claimed =
                            phonenumber::is_valid(&n).then(|| n.country().id().map(|id| id.as_ref().to_string()));
                        // `Err` leaves the number to phonenumber (shared non-geographic codes).
                        if let Ok(answer) = region_if_valid(Number::from(&n)) {
                            assert_eq!(answer, claimed, "{} {text}", meta.id());
                        }
                        if phonenumber::is_valid(&n) {
                            let ours = Number::from(&n);
                            assert_eq!(e164(ours), n.format().mode(phonenumber::Mode::E164).to_string());
                            let theirs = n.country().id().map(|id| id.as_ref().to_string());
                            assert_eq!(region(ours), Ok(theirs), "{text}");
                            let theirs = n.format().mode(phonenumber::Mode::International).to_string();
                            assert_eq!(international(ours), theirs, "{} {text}", meta.id());
                            formatted += 1;
                        }
                        checked += 1;
                    }
                }
            }
        }
        assert!(checked > 5000, "only {checked} numbers checked");
        assert!(formatted > 2000, "only {formatted} valid numbers formatted");
    }

    #[test]
    fn every_region_compiles() {
        for meta in DATABASE.iter() {
            assert!(compiled(meta).is_some(), "{}", meta.id());
            assert!(groupings(meta.country_code()).is_some(), "{}", meta.id());
        }
    }
}
