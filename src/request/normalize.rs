//! Canonicalisation of the request target: the one form Portcullis authorises **and** forwards.
//!
//! The upstream is ASP.NET Core on Kestrel. Whatever Kestrel would read two ways, Portcullis
//! rejects (400 `malformed_request`); everything else is rewritten into one canonical form, that
//! form is matched against the route table, and that form is what the upstream receives. Rules:
//!
//! 1. **Origin form only.** Absolute-form targets (`http://host/p`) are reduced to their path and
//!    query; the host never changes routing. `*` and authority-form targets are rejected.
//! 2. **Percent-decoding of unreserved characters only** (`A-Z a-z 0-9 - . _ ~`). Every other
//!    escape is kept, with upper-case hex (`%2f` → `%2F`). A `%` not followed by two hex digits is
//!    rejected. Raw characters that RFC 3986 does not allow in a path (`"<>{}|^`` ` and space) are
//!    percent-encoded.
//! 3. **Double encoding is rejected**: `%25` anywhere in the path; `%25XX` (XX hex) in the query.
//! 4. **Control characters are rejected**, raw or encoded: `%00`–`%1F`, `%7F`, and the C1 range
//!    U+0080–U+009F once decoded.
//! 5. **Non-ASCII** must be percent-encoded UTF-8: raw bytes ≥ 0x80 are rejected; encoded runs must
//!    be valid, shortest-form UTF-8 (overlong encodings such as `%C0%AE` are rejected). They stay
//!    encoded in the canonical form.
//! 6. **Separators**: a raw `\` or `%5C` is rejected everywhere. `%2F` is kept encoded (it is part
//!    of its segment, never a separator) and flagged; the classifier rejects it unless the segment
//!    is consumed by a route's `{*path}` catch-all — the Delivery item-by-path route and the
//!    Management file-system routes (stylesheet, script, partial view…), where Umbraco's
//!    `DecodePath` decodes it — and the decoded value has no `.`, `..` or empty segment.
//! 7. **Path parameters**: a `;` (raw or `%3B`) in the path is rejected.
//! 8. **Fragments**: a `#` in the target is rejected (`%23` is data and stays encoded).
//! 9. **Repeated slashes** collapse: empty segments are dropped.
//! 10. **Dot segments** `.` and `..`, in any encoding (`%2e`, `%2E`, `.%2e`, …), are resolved per
//!     RFC 3986 §5.2.4. A `..` that would climb above `/`, or pop a segment of a protected prefix
//!     the path is inside (`/umbraco/management/api/..`), is rejected: resolution never leaves the
//!     input's API prefix.
//! 11. **Trailing dot**: any other segment ending in `.` (`publish.`, `...`) is rejected (Windows
//!     hosts and some proxies strip it, Kestrel does not).
//! 12. **Trailing slash**: removed (ASP.NET routing ignores it); the canonical path never ends in
//!     `/` except the root `/` itself.
//! 13. **Case**: the canonical form keeps the client's case; ASP.NET routing is case-insensitive,
//!     so the route matcher compares literal segments ASCII case-insensitively and protected
//!     prefixes are recognised in any case (`/UMBRACO/Management/API`). Forwarding the client's
//!     case is therefore exactly what was authorised.
//! 14. **Query string**: split on `&` only; empty pairs dropped; the same escape rules as the path
//!     (2–5) apply to names and values; a raw `;` is rejected (some proxies split on it, ASP.NET
//!     does not). Names are compared case-insensitively after full decoding (as ASP.NET binds
//!     them); a single-valued parameter (`fetch`, `expand`, `fields`, `skip`, `take`) given twice is
//!     rejected. The canonical query keeps the remaining pairs in their order.
//!
//! The result is idempotent: canonicalising a canonical target yields it unchanged.

mod query;

use query::canonical_query;
pub use query::{decode_path_component, decode_query_component};
use smallvec::SmallVec;

/// Why a request target has no single reading. Each maps to `DenyReason::Malformed`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NormalizeError {
    #[error("request target is not in origin or absolute form")]
    NotOriginForm,
    #[error("invalid percent-encoding")]
    BadPercent,
    #[error("double percent-encoding (`%25`)")]
    DoubleEncoding,
    #[error("control character")]
    ControlChar,
    #[error("raw non-ascii byte")]
    NonAscii,
    #[error("invalid or overlong utf-8 in percent-encoding")]
    InvalidUtf8,
    #[error("backslash in path")]
    Backslash,
    #[error("`;` path parameter")]
    PathParam,
    #[error("fragment in request target")]
    Fragment,
    #[error("dot segment escapes the path or its api prefix")]
    DotSegmentEscape,
    #[error("segment ends in `.`")]
    TrailingDot,
    #[error("`;` in query string")]
    QuerySemicolon,
    #[error("single-valued query parameter `{0}` given more than once")]
    DuplicateParam(String),
}

/// The protected prefixes, as lower-case segment lists (`["umbraco", "management", "api"]`).
#[derive(Debug, Clone, Default)]
pub struct Prefixes(pub Vec<Vec<String>>);

impl Prefixes {
    /// Builds from prefix strings such as `/umbraco/management/api`.
    pub fn new<'a>(prefixes: impl IntoIterator<Item = &'a str>) -> Self {
        Prefixes(
            prefixes
                .into_iter()
                .map(|p| {
                    p.split('/')
                        .filter(|s| !s.is_empty())
                        .map(str::to_ascii_lowercase)
                        .collect()
                })
                .collect(),
        )
    }

    /// Index of the prefix `segs` starts with (segment-wise, case-insensitively), if any.
    pub fn find<'s>(&self, segs: impl Iterator<Item = &'s str> + Clone) -> Option<usize> {
        self.0.iter().position(|p| {
            let mut it = segs.clone();
            p.iter()
                .all(|want| it.next().is_some_and(|s| s.eq_ignore_ascii_case(want)))
        })
    }
}

/// A canonical request target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Canonical {
    /// Canonical path, starting with `/`.
    pub path: String,
    /// Byte ranges of the segments inside `path`.
    pub segs: SmallVec<[(u16, u16); 16]>,
    /// Canonical query (without `?`), `None` when empty.
    pub query: Option<String>,
    /// Index of every segment holding an encoded `/` (`%2F`).
    pub encoded_slash: SmallVec<[u16; 2]>,
}

impl Canonical {
    /// The segments as string slices.
    pub fn segments(&self) -> impl Iterator<Item = &str> + Clone {
        self.segs
            .iter()
            .map(|&(a, b)| &self.path[a as usize..b as usize])
    }

    /// Path and query, as forwarded upstream.
    pub fn uri(&self) -> String {
        match &self.query {
            Some(q) => format!("{}?{}", self.path, q),
            None => self.path.clone(),
        }
    }
}

/// Canonicalises a request target (`/a/b?x=1`, or absolute form). `prefixes` are the protected
/// prefixes a `..` may not climb out of. Returns the canonical target or why it is ambiguous.
pub fn canonicalize(target: &str, prefixes: &Prefixes) -> Result<Canonical, NormalizeError> {
    // `memchr` here and below: `str::contains(char)` and `find(char)` go through core's
    // generic char searcher, several times the cost on a ~100-byte target.
    if memchr::memchr(b'#', target.as_bytes()).is_some() {
        return Err(NormalizeError::Fragment);
    }
    let origin = strip_absolute_form(target)?;
    let (raw_path, raw_query) = match memchr::memchr(b'?', origin.as_bytes()) {
        Some(i) => (&origin[..i], Some(&origin[i + 1..])),
        None => (origin, None),
    };
    let (path, segs, encoded_slash) = canonical_path(raw_path, prefixes)?;
    let query = match raw_query {
        Some(q) => canonical_query(q)?,
        None => None,
    };
    Ok(Canonical {
        path,
        segs,
        query,
        encoded_slash,
    })
}

/// Reduces `scheme://authority/path?q` to `/path?q`; origin form is returned as is.
fn strip_absolute_form(target: &str) -> Result<&str, NormalizeError> {
    if target.starts_with('/') {
        return Ok(target);
    }
    let Some(i) = target.find("://") else {
        return Err(NormalizeError::NotOriginForm);
    };
    let scheme = &target[..i];
    if scheme.is_empty()
        || !scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
    {
        return Err(NormalizeError::NotOriginForm);
    }
    let rest = &target[i + 3..];
    match rest.find(['/', '?']) {
        Some(j) if rest.as_bytes()[j] == b'/' => Ok(&rest[j..]),
        // `http://host?q` has an empty path: the root.
        Some(_) | None => Err(NormalizeError::NotOriginForm),
    }
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

const fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// Characters that may stay raw in a canonical path or query component.
const fn is_raw_ok(b: u8) -> bool {
    is_unreserved(b)
        || matches!(
            b,
            b'!' | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
                | b':'
                | b'@'
        )
}

/// Bytes that [`canonical_component`] copies as they are (raw-ok, but not `;`, which it
/// refuses), indexed by byte: `[path, query]` (the query also keeps `/` and `?`).
const PLAIN: [[bool; 256]; 2] = {
    let mut t = [[false; 256]; 2];
    let mut b = 0;
    while b < 256 {
        let byte = b as u8;
        let raw = is_raw_ok(byte) && byte != b';';
        t[0][b] = raw;
        t[1][b] = raw || byte == b'/' || byte == b'?';
        b += 1;
    }
    t
};

fn push_escape(out: &mut String, v: u8) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.push('%');
    out.push(HEX[(v >> 4) as usize] as char);
    out.push(HEX[(v & 15) as usize] as char);
}

/// Where a component is: the path forbids a few things the query allows and vice versa.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Part {
    Path = 0,
    Query = 1,
}

/// Canonicalises one component (a path segment, a query name or value) into `out`.
/// Returns whether it held an encoded `/`.
fn canonical_component(raw: &[u8], part: Part, out: &mut String) -> Result<bool, NormalizeError> {
    let mut slash = false;
    let plain = &PLAIN[part as usize];
    let mut i = 0;
    while i < raw.len() {
        // Most of a component stays as it is: copied a run at a time.
        let run = raw[i..]
            .iter()
            .take_while(|&&b| plain[usize::from(b)])
            .count();
        if run > 0 {
            // Only ASCII bytes are plain.
            out.push_str(std::str::from_utf8(&raw[i..i + run]).unwrap_or_default());
            i += run;
            continue;
        }
        let b = raw[i];
        if b < 0x20 || b == 0x7f {
            return Err(NormalizeError::ControlChar);
        }
        if b >= 0x80 {
            return Err(NormalizeError::NonAscii);
        }
        match b {
            b'\\' => return Err(NormalizeError::Backslash),
            b';' if part == Part::Path => return Err(NormalizeError::PathParam),
            b';' => return Err(NormalizeError::QuerySemicolon),
            b'%' => {
                let v = decode_at(raw, i)?;
                match v {
                    0x25 => {
                        let double = part == Part::Path
                            || (i + 4 < raw.len()
                                && hex(raw[i + 3]).is_some()
                                && hex(raw[i + 4]).is_some());
                        if double {
                            return Err(NormalizeError::DoubleEncoding);
                        }
                        push_escape(out, v);
                    }
                    v if v < 0x20 || v == 0x7f => return Err(NormalizeError::ControlChar),
                    b'\\' => return Err(NormalizeError::Backslash),
                    b';' if part == Part::Path => return Err(NormalizeError::PathParam),
                    b'/' => {
                        slash = true;
                        push_escape(out, v);
                    }
                    v if is_unreserved(v) => out.push(v as char),
                    v if v >= 0x80 => {
                        // Collect the whole run of encoded high bytes and check it is UTF-8.
                        let mut bytes: SmallVec<[u8; 8]> = SmallVec::new();
                        let mut j = i;
                        while j < raw.len() && raw[j] == b'%' {
                            let w = decode_at(raw, j)?;
                            if w < 0x80 {
                                break;
                            }
                            bytes.push(w);
                            j += 3;
                        }
                        let s = std::str::from_utf8(&bytes)
                            .map_err(|_e| NormalizeError::InvalidUtf8)?;
                        if s.chars().any(|c| ('\u{80}'..='\u{9f}').contains(&c)) {
                            return Err(NormalizeError::ControlChar);
                        }
                        for w in bytes {
                            push_escape(out, w);
                        }
                        i = j;
                        continue;
                    }
                    v => push_escape(out, v),
                }
                i += 3;
                continue;
            }
            b if is_raw_ok(b) || (part == Part::Query && matches!(b, b'/' | b'?')) => {
                out.push(b as char)
            }
            b => push_escape(out, b),
        }
        i += 1;
    }
    Ok(slash)
}

/// The byte a `%XX` at `i` encodes.
fn decode_at(raw: &[u8], i: usize) -> Result<u8, NormalizeError> {
    match (
        raw.get(i + 1).copied().and_then(hex),
        raw.get(i + 2).copied().and_then(hex),
    ) {
        (Some(h), Some(l)) => Ok(h << 4 | l),
        _ => Err(NormalizeError::BadPercent),
    }
}

type PathParts = (String, SmallVec<[(u16, u16); 16]>, SmallVec<[u16; 2]>);

fn canonical_path(raw: &str, prefixes: &Prefixes) -> Result<PathParts, NormalizeError> {
    // Segments are rendered straight into the result (one allocation); a dot segment truncates
    // it back, so `stack` always describes exactly the segments in `path`.
    let mut path = String::with_capacity(raw.len() + 1);
    let mut stack: SmallVec<[(usize, usize, bool); 16]> = SmallVec::new();
    // Split as bytes: `/` is ASCII, so every piece is exactly what `str::split('/')` gives.
    for seg in raw.as_bytes().split(|&b| b == b'/') {
        if seg.is_empty() {
            continue;
        }
        let sep = path.len();
        path.push('/');
        let start = path.len();
        let slash = canonical_component(seg, Part::Path, &mut path)?;
        let text = &path[start..];
        match text {
            "." => path.truncate(sep),
            ".." => {
                path.truncate(sep);
                if stack.is_empty() {
                    return Err(NormalizeError::DotSegmentEscape);
                }
                let segs = stack.iter().map(|&(a, b, _)| &path[a..b]);
                if let Some(p) = prefixes.find(segs) {
                    if stack.len() <= prefixes.0[p].len() {
                        return Err(NormalizeError::DotSegmentEscape);
                    }
                }
                if let Some((a, _, _)) = stack.pop() {
                    // Drop the popped segment and the `/` before it.
                    path.truncate(a - 1);
                }
            }
            t if t.ends_with('.') => return Err(NormalizeError::TrailingDot),
            _ => stack.push((start, path.len(), slash)),
        }
    }
    if path.is_empty() {
        path.push('/');
    }
    if path.len() > u16::MAX as usize {
        return Err(NormalizeError::NotOriginForm);
    }
    let mut segs = SmallVec::new();
    let mut slashes = SmallVec::new();
    for (n, &(a, b, slash)) in stack.iter().enumerate() {
        segs.push((a as u16, b as u16));
        if slash {
            slashes.push(n as u16);
        }
    }
    Ok((path, segs, slashes))
}

#[cfg(test)]
#[path = "normalize_tests.rs"]
mod tests;
