//! The query string's canonical form (rule 14 of the parent module) and the full decoding of
//! query and path components as ASP.NET binds them.

use super::{canonical_component, decode_at, NormalizeError, Part};
use smallvec::SmallVec;

/// Query parameters that ASP.NET binds to a single value: a second occurrence is ambiguous.
const SINGLE_VALUED: [&str; 5] = ["fetch", "expand", "fields", "skip", "take"];

/// The canonical query (without `?`; `None` when empty): pairs split on `&` only, empty
/// pairs dropped, names and values canonicalised, a single-valued parameter given twice
/// refused.
pub(super) fn canonical_query(raw: &str) -> Result<Option<String>, NormalizeError> {
    let mut out = String::with_capacity(raw.len());
    let mut seen: SmallVec<[&str; 2]> = SmallVec::new();
    for pair in raw.split('&') {
        if pair.is_empty() {
            continue;
        }
        let (name, value) = match pair.find('=') {
            Some(i) => (&pair[..i], Some(&pair[i + 1..])),
            None => (pair, None),
        };
        if !out.is_empty() {
            out.push('&');
        }
        canonical_component(name.as_bytes(), Part::Query, &mut out)?;
        if let Some(v) = value {
            out.push('=');
            canonical_component(v.as_bytes(), Part::Query, &mut out)?;
        }
        // Only an escaped name needs a decoded (allocated) copy.
        let decoded = if name.contains(['%', '+']) {
            std::borrow::Cow::Owned(decode_query_component(name).unwrap_or_default())
        } else {
            std::borrow::Cow::Borrowed(name)
        };
        if let Some(single) = SINGLE_VALUED
            .iter()
            .find(|s| s.eq_ignore_ascii_case(&decoded))
        {
            if seen.contains(single) {
                return Err(NormalizeError::DuplicateParam((*single).to_owned()));
            }
            seen.push(single);
        }
    }
    Ok((!out.is_empty()).then_some(out))
}

/// Fully decodes a query name or value the way ASP.NET's query parser does (`+` is a space,
/// every escape decoded). `None` when the bytes are not UTF-8 or an escape is malformed.
pub fn decode_query_component(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                out.push(decode_at(bytes, i).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// Fully decodes a path segment (route value), `%2F` included. `None` when not UTF-8.
pub fn decode_path_component(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            out.push(decode_at(bytes, i).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}
