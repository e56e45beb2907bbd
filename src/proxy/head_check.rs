//! The head checks: what a request head must satisfy before anything else looks at it —
//! unambiguous framing (RFC 9112 §6), one `Host` (RFC 9112 §3.2), an allowed host, and the size
//! limits. Pure: reads the head as it was received and returns the refusal, if any.
//!
//! pingora 0.9.1 already refuses (plain 400, before any filter runs): differing or unparseable
//! `Content-Length` values, a `Transfer-Encoding` whose final coding is not `chunked`, any
//! `Transfer-Encoding` on HTTP/1.0, two `Host` fields, heads over 1 MiB or with over 256
//! fields, chunk sizes over 16 hex digits and partial chunk lines over 8 KiB. What it lets
//! through — equal repeated `Content-Length`s, `Content-Length` with `Transfer-Encoding` (it
//! drops the `Content-Length` and forwards), codings before `chunked`, a missing `Host` — is
//! refused here. The checks read the raw head because pingora's parsed header map no longer
//! shows a `Content-Length` sent beside `Transfer-Encoding`.

use crate::authz::DenyReason;
use crate::config::Problems;
use http::{HeaderMap, Version};
use serde::Deserialize;
use smallvec::SmallVec;

/// The values of one field name in a head (almost always none or one).
pub type FieldValues<'a> = SmallVec<[&'a [u8]; 2]>;

/// `[listen.limits]`: request sizes refused at the edge.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Request line plus header fields, in bytes (431 beyond).
    pub max_head_bytes: usize,
    /// Header fields (431 beyond).
    pub max_headers: usize,
    /// The query string after `?`, in bytes (414 beyond).
    pub max_query_bytes: usize,
    /// A streamed (not inspected) request body, in bytes (413 beyond; Kestrel's default).
    pub max_body_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_head_bytes: 32 * 1024,
            max_headers: 100,
            max_query_bytes: 8 * 1024,
            max_body_bytes: 30_000_000,
        }
    }
}

/// pingora refuses heads over this itself (1 MiB), so a larger limit could never apply.
const PINGORA_MAX_HEAD: usize = 1_048_575;
/// pingora parses at most this many fields.
const PINGORA_MAX_HEADERS: usize = 256;

impl Limits {
    pub fn validate(&self, p: &mut Problems) {
        let bounded = [
            (
                "listen.limits.max_head_bytes",
                self.max_head_bytes,
                PINGORA_MAX_HEAD,
            ),
            (
                "listen.limits.max_headers",
                self.max_headers,
                PINGORA_MAX_HEADERS,
            ),
            (
                "listen.limits.max_query_bytes",
                self.max_query_bytes,
                PINGORA_MAX_HEAD,
            ),
        ];
        for (at, v, max) in bounded {
            if v == 0 || v > max {
                p.push(at, format!("must be between 1 and {max}"));
            }
        }
        if self.max_body_bytes == 0 {
            p.push("listen.limits.max_body_bytes", "must be greater than zero");
        }
    }
}

/// What the edge checks are configured with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeadPolicy {
    pub limits: Limits,
    /// Lower-case `Host` values (`name` or `name:port`) served; empty = any.
    pub allowed_hosts: Vec<String>,
}

impl HeadPolicy {
    /// Validates `listen.allowed_hosts` and `[listen.limits]`.
    pub fn from_config(listen: &crate::config::ListenConfig, p: &mut Problems) -> HeadPolicy {
        listen.limits.validate(p);
        for (i, h) in listen.allowed_hosts.iter().enumerate() {
            if http::uri::Authority::try_from(h.as_str()).is_err() || h.contains('@') {
                p.push(
                    &format!("listen.allowed_hosts[{i}]"),
                    format!("`{h}` is not a host or host:port"),
                );
            }
        }
        HeadPolicy {
            limits: listen.limits.clone(),
            allowed_hosts: listen
                .allowed_hosts
                .iter()
                .map(|h| h.to_ascii_lowercase())
                .collect(),
        }
    }
}

/// What a head says about itself, counted field by field as received.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct HeadFacts<'a> {
    /// Request line and fields, in bytes.
    pub size: usize,
    /// Number of header fields.
    pub fields: usize,
    /// Each `Content-Length` field's value.
    pub content_length: FieldValues<'a>,
    /// Each `Transfer-Encoding` field's value.
    pub transfer_encoding: FieldValues<'a>,
    /// Each `Host` field's value.
    pub host: FieldValues<'a>,
}

impl<'a> HeadFacts<'a> {
    /// Reads an HTTP/1 head (request line, fields, the empty line) as it came off the wire; one
    /// pass over the bytes (line ends and colons found with `memchr`). pingora has already
    /// parsed it, so every field line has a colon.
    pub fn from_raw(raw: &'a [u8]) -> HeadFacts<'a> {
        let mut head = HeadFacts {
            size: raw.len(),
            ..HeadFacts::default()
        };
        // Every line after the request line, as `split(b'\n').skip(1)` would give them.
        let mut start = memchr::memchr(b'\n', raw).map_or(raw.len(), |i| i + 1);
        while start < raw.len() {
            let end = memchr::memchr(b'\n', &raw[start..]).map_or(raw.len(), |i| start + i);
            let line = &raw[start..end];
            start = end + 1;
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let Some(colon) = memchr::memchr(b':', line) else {
                continue;
            };
            head.fields += 1;
            let (name, value) = (&line[..colon], line[colon + 1..].trim_ascii());
            if name.eq_ignore_ascii_case(b"content-length") {
                head.content_length.push(value);
            } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
                head.transfer_encoding.push(value);
            } else if name.eq_ignore_ascii_case(b"host") {
                head.host.push(value);
            }
        }
        head
    }

    /// The same facts from a parsed header map (HTTP/2, where there are no raw bytes; the h2
    /// codec has already refused `Transfer-Encoding` and connection-specific fields).
    pub fn from_headers(headers: &'a HeaderMap, target_len: usize) -> HeadFacts<'a> {
        let values = |name| headers.get_all(name).iter().map(|v| v.as_bytes()).collect();
        HeadFacts {
            size: target_len
                + headers
                    .iter()
                    .map(|(k, v)| k.as_str().len() + v.len() + 4)
                    .sum::<usize>(),
            fields: headers.len(),
            content_length: values(http::header::CONTENT_LENGTH),
            transfer_encoding: values(http::header::TRANSFER_ENCODING),
            host: values(http::header::HOST),
        }
    }
}

/// The refusal for a head, or `None`. In order: size (431), query length (414), framing (400,
/// or 501 for codings other than one `chunked`), `Host` (400, or 421 when not allowed), and a
/// declared `Content-Length` over `max_body_bytes` (413). `authority` is the target's
/// authority when it was sent in absolute form (HTTP/1) or as `:authority` (HTTP/2).
pub fn check(
    head: &HeadFacts,
    version: Version,
    raw_target: &[u8],
    authority: Option<&str>,
    policy: &HeadPolicy,
) -> Option<DenyReason> {
    let limits = &policy.limits;
    if head.size > limits.max_head_bytes || head.fields > limits.max_headers {
        return Some(DenyReason::HeadTooLarge);
    }
    let query_len = raw_target
        .iter()
        .position(|&b| b == b'?')
        .map_or(0, |q| raw_target.len() - q - 1);
    if query_len > limits.max_query_bytes {
        return Some(DenyReason::UriTooLong);
    }
    let declared = match framing(head) {
        Ok(declared) => declared,
        Err(reason) => return Some(reason),
    };
    if let Some(reason) = host(head, version, authority, &policy.allowed_hosts) {
        return Some(reason);
    }
    declared
        .filter(|&n| n > limits.max_body_bytes)
        .map(|_| DenyReason::BodyTooLarge)
}

/// The declared body length (`None` for chunked or no body), or why the framing is refused:
/// `Content-Length` repeated (`N, N` or two fields, RFC 9112 §6.3 allows refusing either) or
/// beside `Transfer-Encoding` → `bad_framing` (400); a `Transfer-Encoding` other than exactly one
/// `chunked` → `unsupported_transfer_coding` (501, RFC 9112 §6.1).
fn framing(head: &HeadFacts) -> Result<Option<u64>, DenyReason> {
    match (
        head.content_length.as_slice(),
        head.transfer_encoding.as_slice(),
    ) {
        ([], []) => Ok(None),
        ([], [te]) if te.eq_ignore_ascii_case(b"chunked") => Ok(None),
        ([], _) => Err(DenyReason::UnsupportedTransferCoding),
        ([cl], []) => std::str::from_utf8(cl)
            .ok()
            .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|s| s.parse::<u64>().ok())
            .map(Some)
            .ok_or(DenyReason::BadFraming),
        _ => Err(DenyReason::BadFraming),
    }
}

/// RFC 9112 §3.2: an HTTP/1.1 request has exactly one `Host` (pingora refuses two); its value
/// must be a valid authority. With `allowed_hosts`, every authority the request names must be
/// listed (421 otherwise), matched case-insensitively as `name:port` or as `name` alone.
fn host(
    head: &HeadFacts,
    version: Version,
    authority: Option<&str>,
    allowed: &[String],
) -> Option<DenyReason> {
    if head.host.len() > 1 || (version == Version::HTTP_11 && head.host.is_empty()) {
        return Some(DenyReason::BadHost);
    }
    if head
        .host
        .iter()
        .any(|h| http::uri::Authority::try_from(*h).is_err() || h.contains(&b'@'))
    {
        return Some(DenyReason::BadHost);
    }
    if allowed.is_empty() {
        return None;
    }
    let mut named: SmallVec<[&[u8]; 2]> = head.host.iter().copied().collect();
    named.extend(authority.map(str::as_bytes));
    let listed = |h: &[u8]| {
        allowed.iter().any(|a| {
            a.as_bytes().eq_ignore_ascii_case(h) || a.as_bytes().eq_ignore_ascii_case(host_part(h))
        })
    };
    if named.is_empty() || !named.iter().all(|h| listed(h)) {
        return Some(DenyReason::MisdirectedRequest);
    }
    None
}

/// The host part of `host[:port]` (an IPv6 literal keeps its brackets).
fn host_part(h: &[u8]) -> &[u8] {
    match h.iter().rposition(|&b| b == b':') {
        Some(i) if !h[i..].contains(&b']') => &h[..i],
        _ => h,
    }
}

#[cfg(test)]
#[path = "head_check_tests.rs"]
mod tests;
