//! A lead's document as DynamoDB keeps it: its JSON deflated against a preset dictionary.
//!
//! DynamoDB bills a write by the KB of the item, twice inside a transaction, and every stage
//! writes the lead in one. As plain JSON a scored and routed lead is 2.3–2.6 KB (three units,
//! six in a transaction); packed it is a few hundred bytes, so the item stays under 1 KB. The
//! dictionary holds what every lead document repeats (field names, the built-in rules'
//! explanations, routing's sentences), so even a short document finds most of itself in it.
//!
//! zlib's header names the dictionary a document was packed against (its Adler-32), so a
//! better dictionary is added beside the first and documents packed against either still read.
//! Items written before this format keep their JSON text and read as they always did.

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use leadflow_core::error::StoreError;

/// Never edit: every lead packed against it needs these exact bytes to be read again. A new
/// dictionary is a new file, added last to `DICTIONARIES`.
const DICTIONARY_1: &[u8] = include_bytes!("lead-dictionary-1.txt");

/// Documents are packed against the last; read against whichever their header names.
const DICTIONARIES: &[&[u8]] = &[DICTIONARY_1];

/// Far above any lead (DynamoDB refuses an item over 400 KB), so that a damaged document cannot
/// make a reader allocate without bound.
const MAX_UNPACKED: usize = 1 << 20;

/// `json`, deflated (zlib format, so with a checksum) against the newest dictionary.
pub(crate) fn pack(json: &[u8]) -> Result<Vec<u8>, StoreError> {
    let failed = |step: &str| StoreError::Corrupt(format!("a lead document could not be packed ({step})"));
    let mut deflate = Compress::new(Compression::best(), true);
    let newest = DICTIONARIES.last().copied().unwrap_or(DICTIONARY_1);
    deflate.set_dictionary(newest).map_err(|_| failed("dictionary"))?;
    // Deflate never grows a stream by more than a few bytes per 16 KB block.
    let mut out = Vec::with_capacity(json.len() + json.len() / 1000 + 64);
    loop {
        let consumed = usize::try_from(deflate.total_in()).map_err(|_| failed("length"))?;
        let rest = json.get(consumed..).unwrap_or_default();
        match deflate.compress_vec(rest, &mut out, FlushCompress::Finish).map_err(|_| failed("deflate"))? {
            Status::StreamEnd => return Ok(out),
            Status::Ok | Status::BufError => out.reserve(out.capacity().max(64)),
        }
    }
}

/// The JSON of a document `pack` made.
pub(crate) fn unpack(packed: &[u8]) -> Result<Vec<u8>, StoreError> {
    let corrupt = |why: &str| StoreError::Corrupt(format!("a packed lead document does not unpack: {why}"));
    let mut inflate = Decompress::new(true);
    let mut out = Vec::with_capacity(packed.len().saturating_mul(8).min(MAX_UNPACKED));
    loop {
        let consumed = usize::try_from(inflate.total_in()).map_err(|_| corrupt("length"))?;
        let rest = packed.get(consumed..).unwrap_or_default();
        let before = (inflate.total_in(), inflate.total_out());
        match inflate.decompress_vec(rest, &mut out, FlushDecompress::Finish) {
            Ok(Status::StreamEnd) if out.len() <= MAX_UNPACKED => return Ok(out),
            Ok(Status::StreamEnd) => return Err(corrupt("it is larger than any lead")),
            // Room to write and nothing read or written: the input is spent before its end.
            Ok(Status::Ok | Status::BufError)
                if (inflate.total_in(), inflate.total_out()) == before && out.len() < out.capacity() =>
            {
                return Err(corrupt("it ends early"));
            }
            Ok(Status::Ok | Status::BufError) => {
                if out.len() >= MAX_UNPACKED {
                    return Err(corrupt("it is larger than any lead"));
                }
                // Exact, so that the output stops near the bound instead of past it.
                out.reserve_exact(out.capacity().clamp(64, MAX_UNPACKED + 1 - out.len()));
            }
            Err(e) if e.needs_dictionary().is_some() => {
                // zlib accepts only the dictionary whose checksum the header names.
                let known = DICTIONARIES.iter().any(|d| inflate.set_dictionary(d).is_ok());
                if !known {
                    return Err(corrupt("it names a dictionary this version does not have"));
                }
            }
            Err(_) => return Err(corrupt("it is not a deflate stream")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_document_comes_back_byte_for_byte() {
        for json in [&b"{}"[..], br#"{"contact":{"email":"ada@example.com"}}"#, &[b'x'; 100_000][..]] {
            assert_eq!(unpack(&pack(json).expect("pack")).expect("unpack"), json);
        }
    }

    #[test]
    fn a_document_that_would_unpack_past_the_bound_is_refused() {
        let bomb = pack(&vec![b' '; MAX_UNPACKED + 1]).expect("pack");
        assert!(bomb.len() < 4096, "{} bytes", bomb.len());
        assert!(matches!(unpack(&bomb), Err(StoreError::Corrupt(m)) if m.contains("larger than any lead")));
    }

    /// Changing the dictionary's bytes would make every lead packed against it unreadable.
    #[test]
    fn the_first_dictionary_is_the_one_leads_were_packed_against() {
        use sha2::{Digest, Sha256};
        assert_eq!(
            hex::encode(Sha256::digest(DICTIONARY_1)),
            "52cdcb439f3ded25ea9bce5b2f807ac320a6f244dd2298ec98e20f503cb67b28",
            "lead-dictionary-1.txt changed: add a new dictionary instead"
        );
    }

    #[test]
    fn damaged_or_foreign_bytes_are_corrupt_not_a_panic() {
        let packed = pack(br#"{"id":"01M8Z3NM004PQGCS1A1S9C9CMD","version":2}"#).expect("pack");
        let mut flipped = packed.clone();
        if let Some(byte) = flipped.get_mut(packed.len() / 2) {
            *byte ^= 0x55;
        }
        let truncated = &packed[..packed.len() - 3];
        // A zlib stream packed against a dictionary nobody has: FDICT set, another checksum.
        let mut other = Compress::new(Compression::best(), true);
        other.set_dictionary(b"another dictionary").expect("dictionary");
        let mut foreign = Vec::with_capacity(256);
        other.compress_vec(b"{}", &mut foreign, FlushCompress::Finish).expect("deflate");
        for bad in [&flipped[..], truncated, &foreign[..], b"{\"id\":1}", &[]] {
            assert!(matches!(unpack(bad), Err(StoreError::Corrupt(_))), "{bad:?}");
        }
    }
}
