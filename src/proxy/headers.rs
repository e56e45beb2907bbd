//! Header hygiene between client and upstream: request ids, hop-by-hop and gateway-owned
//! headers, `X-Forwarded-*` and the identity headers (which credential Umbraco receives is
//! `api_user::upstream_credential`). Pure functions over
//! `http::HeaderMap` and the decision ([`upstream_edits`]); [`apply`] carries their result out.

use crate::authn::{PrincipalKind, Subject};
use crate::gate::Verdict;
use crate::request::Api;
use http::{HeaderMap, HeaderName, HeaderValue};
use ipnet::IpNet;
use pingora::http::{RequestHeader, ResponseHeader};
use std::net::IpAddr;

pub const REQUEST_ID: &str = "x-request-id";

/// Headers meaningful only for one hop (RFC 9110 §7.6.1). `Transfer-Encoding` is framing that
/// pingora rewrites itself, so it is not one of them. A `match` on the lower-case name: one
/// length switch and a compare, where a list is compared entry by entry for every header.
fn is_hop_by_hop(name: &str) -> bool {
    matches!(
        name,
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "te"
            | "trailer"
            | "upgrade"
    )
}

/// Headers through which a client could claim another address, scheme, host, path or method to
/// an upstream that believes them: removed unless the direct peer is a trusted proxy.
fn is_client_claim(name: &str) -> bool {
    matches!(
        name,
        "forwarded"
            | "x-real-ip"
            | "true-client-ip"
            | "cf-connecting-ip"
            | "x-client-ip"
            | "x-cluster-client-ip"
            | "x-original-url"
            | "x-rewrite-url"
            | "x-original-host"
            | "x-forwarded-prefix"
            | "x-forwarded-uri"
            | "x-forwarded-port"
            | "x-forwarded-server"
            | "x-envoy-original-path"
            | "x-http-method"
            | "x-http-method-override"
            | "x-method-override"
    )
}

/// Headers framing the message: never removed because a client named them in `Connection`.
const FRAMING: &[&str] = &["host", "content-length", "transfer-encoding"];

/// A client-supplied request id is kept when it is 1–128 visible characters of
/// `[A-Za-z0-9._:-]`; otherwise a new UUID v7 is made.
pub fn request_id(headers: &HeaderMap) -> String {
    headers
        .get(&REQUEST_ID_NAME)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 128
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b))
        })
        .map(str::to_owned)
        .unwrap_or_else(|| uuid_text(&crate::audit::new_v7(), &mut [0; 36]).to_owned())
}

/// The W3C `traceparent` to send upstream: the client's trace continues (same trace id and
/// flags) with the gateway as the new parent span; a missing or malformed one starts a new
/// sampled trace. The trace id is [`trace_id`] of the value.
pub fn traceparent(headers: &HeaderMap) -> String {
    use crate::text::push_hex;
    let span: u64 = rand::random::<u64>() | 1;
    let incoming = headers
        .get(&TRACEPARENT)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| incoming_trace(v.trim()));
    // One allocation: `00-{trace:32}-{span:16}-{flags:2}`.
    let mut out = String::with_capacity(55);
    out.push_str("00-");
    let flags = match incoming {
        Some((trace, flags)) => {
            out.push_str(trace);
            flags
        }
        None => {
            push_hex(&mut out, rand::random::<u128>() | 1, 32);
            "01"
        }
    };
    out.push('-');
    push_hex(&mut out, u128::from(span), 16);
    out.push('-');
    out.push_str(flags);
    out
}

/// The trace id inside a value made by [`traceparent`].
pub fn trace_id(traceparent: &str) -> &str {
    traceparent.get(3..35).unwrap_or_default()
}

/// A valid incoming `traceparent`'s trace id and flags (W3C Trace Context §3.2).
fn incoming_trace(v: &str) -> Option<(&str, &str)> {
    let mut parts = v.split('-');
    let (ver, trace, parent, flags) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let hex = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    let valid = parts.next().is_none()
        && hex(ver, 2)
        && ver != "ff"
        && hex(trace, 32)
        && hex(parent, 16)
        && hex(flags, 2)
        && trace.bytes().any(|b| b != b'0')
        && parent.bytes().any(|b| b != b'0');
    valid.then_some((trace, flags))
}

/// A UUID in its hyphenated lowercase form, on the stack (for header values).
pub fn uuid_text<'b>(id: &uuid::Uuid, buf: &'b mut [u8; 36]) -> &'b str {
    id.hyphenated().encode_lower(buf)
}

/// Names of what the upstream must never receive from a client: hop-by-hop headers, headers
/// the client named in `Connection`, `X-Portcullis-*`, the configured identity headers, every
/// header carrying a Portcullis API key (`pcl_…`), and — unless the peer is a trusted proxy —
/// the client claims ([`is_client_claim`]). Removed before the gateway adds its own headers, so a
/// client cannot make it drop them.
pub fn client_headers_to_strip(
    headers: &HeaderMap,
    identity: &[HeaderName],
    trusted_peer: bool,
) -> Vec<HeaderName> {
    let named: Vec<HeaderName> = headers
        .get_all(http::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok())
        .filter(|n| !FRAMING.contains(&n.as_str()))
        .collect();
    // One pass over what the client sent (no lookup per listed name).
    let listed = |k: &HeaderName| {
        let n = k.as_str();
        is_hop_by_hop(n)
            || n.starts_with("x-portcullis-")
            || identity.contains(k)
            || (!trusted_peer && is_client_claim(n))
            || named.contains(k)
    };
    let mut out: Vec<HeaderName> = headers
        .iter()
        // A value holding a Portcullis API key anywhere (linear, no copy: see `api_key`).
        .filter(|(k, v)| listed(k) || crate::authn::api_key::bytes_contain_key(v.as_bytes()))
        .map(|(k, _)| k.clone())
        .collect();
    out.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    out.dedup();
    out
}

/// Whether the direct peer is one of `headers.trusted_proxies`.
pub fn is_trusted(peer: Option<IpAddr>, trusted: &[IpNet]) -> bool {
    peer.is_some_and(|ip| trusted.iter().any(|n| n.contains(&ip)))
}

/// The `X-Forwarded-For/Proto/Host` values to set (a `None` value means remove): what the
/// gateway received (peer address, `http`, the `Host`). Client-sent values are kept (and
/// extended) only when the direct peer is a trusted proxy.
pub fn forwarded(
    headers: &HeaderMap,
    peer: Option<IpAddr>,
    trusted_peer: bool,
) -> [(&'static HeaderName, Option<HeaderValue>); 3] {
    let mut xff = String::with_capacity(16);
    if let Some(prev) = headers
        .get(&X_FORWARDED_FOR)
        .and_then(|v| v.to_str().ok())
        .filter(|_| trusted_peer)
    {
        xff.push_str(prev);
        xff.push_str(", ");
    }
    match peer {
        Some(p) => crate::text::push_ip(&mut xff, p),
        None => xff.push_str("unknown"),
    }
    let proto = match headers
        .get(&X_FORWARDED_PROTO)
        .and_then(|v| v.to_str().ok())
    {
        Some("https") if trusted_peer => HeaderValue::from_static("https"),
        _ => HeaderValue::from_static("http"),
    };
    let host = match headers.get(&X_FORWARDED_HOST) {
        Some(h) if trusted_peer => Some(h.clone()),
        _ => headers.get(http::header::HOST).cloned(),
    };
    [
        // An owned `String` becomes the value without a copy.
        (&X_FORWARDED_FOR, HeaderValue::try_from(xff).ok()),
        (&X_FORWARDED_PROTO, Some(proto)),
        (&X_FORWARDED_HOST, host),
    ]
}

/// One change to the upstream request's headers; applied in order ([`apply`]). The names the
/// gateway sets are statics, checked when compiled and cloned without a copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Edit {
    Remove(HeaderName),
    Set(HeaderName, HeaderValue),
}

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
/// [`REQUEST_ID`] parsed once.
pub static REQUEST_ID_NAME: HeaderName = HeaderName::from_static(REQUEST_ID);
static TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
static API_KEY: HeaderName = HeaderName::from_static("api-key");
static PRINCIPAL: HeaderName = HeaderName::from_static("x-portcullis-principal");
static PRINCIPAL_KIND: HeaderName = HeaderName::from_static("x-portcullis-principal-kind");
static GROUPS: HeaderName = HeaderName::from_static("x-portcullis-groups");
static MEMBER: HeaderName = HeaderName::from_static("x-portcullis-member");
static DECISION_ID_NAME: HeaderName = HeaderName::from_static(DECISION_ID);

/// Carries `edits` and the authorised `target` (canonical path and query; `None`: the target as
/// received) into the upstream request. The URI pingora parsed is kept when its path and query
/// are byte for byte the authorised target (the usual case): the request line is written from
/// them either way, so only a different target is parsed again.
///
/// The edits go through the request's `http` parts, where a name goes into the header map as
/// it is, after one reserve for all; pingora's `insert_header` parses and copies every name
/// into its header-case map (~2.4 k instructions a header, measured). Without that map pingora
/// writes the names it knows as standard in title case (`Host`, `Content-Type`) and every
/// other name in lower case. Names are case-insensitive (RFC 9110 §5.1), and Kestrel, which
/// Umbraco runs on, matches its known headers ignoring case and keeps the others in a
/// `Dictionary` with `StringComparer.OrdinalIgnoreCase` (aspnetcore,
/// `src/Servers/Kestrel/Core/src/Internal/Http/HttpHeaders.cs`, `Unknown`).
pub fn apply(
    upstream: &mut RequestHeader,
    edits: Vec<Edit>,
    target: Option<&str>,
) -> pingora::Result<()> {
    let end_stream = upstream.send_end_stream();
    let raw_target = target.is_none().then(|| upstream.raw_path().to_vec());
    // Parsed before anything changes: on an error the request is left as it was.
    let uri = match target {
        Some(t) if upstream.uri.path_and_query().map(|pq| pq.as_str()) != Some(t) => {
            Some(t.parse::<http::Uri>().map_err(|_| {
                pingora::Error::explain(
                    pingora::ErrorType::InternalError,
                    "canonical uri does not parse",
                )
            })?)
        }
        _ => None,
    };
    let placeholder = RequestHeader::from(http::Request::new(()).into_parts().0);
    let mut parts: http::request::Parts = std::mem::replace(upstream, placeholder).into();
    let h = &mut parts.headers;
    h.reserve(edits.len());
    for e in edits {
        match e {
            Edit::Remove(name) => drop(h.remove(&name)),
            Edit::Set(name, value) => drop(h.insert(name, value)),
        }
    }
    if let Some(uri) = uri {
        parts.uri = uri;
    }
    let mut rebuilt = RequestHeader::from(parts);
    if let Some(raw) = raw_target {
        rebuilt.set_raw_path(&raw)?;
    }
    if let Some(end) = end_stream {
        rebuilt.set_send_end_stream(end);
    }
    *upstream = rebuilt;
    Ok(())
}

/// Adds `X-Request-Id` and, for a decided request, `X-Portcullis-Decision-Id` to the upstream's
/// response, through its `http` parts as [`apply`] does for the request (its status and a
/// reason phrase other than the status's own are kept). The client receives the response's
/// header names as pingora writes them without a header-case map (see [`apply`]).
pub fn add_response_ids(
    response: &mut ResponseHeader,
    request_id: &str,
    decision_id: Option<&str>,
) -> pingora::Result<()> {
    let invalid = |_| pingora::Error::new(pingora::ErrorType::InternalError);
    // Every value first: on an error the response is left as it was.
    let request_id = HeaderValue::from_str(request_id).map_err(invalid)?;
    let decision_id = match decision_id {
        Some(id) => Some(HeaderValue::from_str(id).map_err(invalid)?),
        None => None,
    };
    let reason = response.get_reason_phrase();
    let reason = (reason != response.status.canonical_reason()).then(|| reason.map(str::to_owned));
    let placeholder = ResponseHeader::from(http::Response::new(()).into_parts().0);
    let mut parts: http::response::Parts = std::mem::replace(response, placeholder).into();
    let h = &mut parts.headers;
    h.reserve(2);
    h.insert(REQUEST_ID_NAME.clone(), request_id);
    if let Some(id) = decision_id {
        h.insert(DECISION_ID_NAME.clone(), id);
    }
    let mut rebuilt = ResponseHeader::from(parts);
    if let Some(reason) = reason {
        rebuilt.set_reason_phrase(reason.as_deref())?;
    }
    *response = rebuilt;
    Ok(())
}

/// What the upstream request's headers depend on besides the client's own headers.
#[derive(Debug, Clone, Copy)]
pub struct Forwarding<'a> {
    /// The direct peer's address.
    pub peer: Option<IpAddr>,
    pub trusted_proxies: &'a [IpNet],
    /// `headers.identity`.
    pub identity: &'a [HeaderName],
    /// The decision (`None` only when the request was never decided).
    pub verdict: Option<&'a Verdict>,
    /// The audit event id (`X-Portcullis-Decision-Id`).
    pub decision_id: Option<&'a str>,
    pub request_id: &'a str,
    /// From [`traceparent`] (random, so made by the caller).
    pub traceparent: &'a str,
    /// The whole body was read for inspection and goes out at once.
    pub body_inspected: bool,
    /// `upstream.host`.
    pub upstream_host: Option<&'a str>,
    /// Umbraco's one real Delivery API key.
    pub delivery_api_key: Option<&'a str>,
}

/// Header carrying the audit event id upstream (and on the response).
pub const DECISION_ID: &str = "x-portcullis-decision-id";

/// Every change the upstream request's headers get, as a pure function of the client's headers
/// and the decision: first everything a client may not send upstream is removed
/// ([`client_headers_to_strip`]), then the gateway's own headers are set — `X-Forwarded-*`,
/// `X-Request-Id`, `traceparent`, the identity headers, `Host` — so no client header can stand
/// in for one of them. Portcullis API keys never leave; for Delivery requests made with one,
/// Umbraco's single real key is set. Errs only when a value cannot be a header value.
pub fn upstream_edits(
    headers: &HeaderMap,
    f: &Forwarding,
) -> Result<Vec<Edit>, http::header::InvalidHeaderValue> {
    let trusted = is_trusted(f.peer, f.trusted_proxies);
    let strip = client_headers_to_strip(headers, f.identity, trusted);
    let mut edits: Vec<Edit> = Vec::with_capacity(strip.len() + 16);
    edits.extend(strip.into_iter().map(Edit::Remove));
    for (name, value) in forwarded(headers, f.peer, trusted) {
        edits.push(match value {
            Some(v) => Edit::Set(name.clone(), v),
            None => Edit::Remove(name.clone()),
        });
    }
    if f.body_inspected {
        edits.push(Edit::Remove(http::header::EXPECT));
    }
    edits.push(set(&REQUEST_ID_NAME, f.request_id)?);
    edits.push(set(&TRACEPARENT, f.traceparent)?);
    if let Some(v) = f.verdict {
        identity(&mut edits, v, f)?;
    }
    if let Some(host) = f.upstream_host {
        edits.push(Edit::Set(http::header::HOST, HeaderValue::from_str(host)?));
    }
    Ok(edits)
}

/// Sets `name` to a copy of `value`.
fn set(name: &HeaderName, value: &str) -> Result<Edit, http::header::InvalidHeaderValue> {
    HeaderValue::from_str(value).map(|v| Edit::Set(name.clone(), v))
}

/// The identity headers for a decided request (who, how, which groups, which member, which
/// audit event), and the Delivery key swap for API-key callers.
fn identity(
    edits: &mut Vec<Edit>,
    v: &Verdict,
    f: &Forwarding,
) -> Result<(), http::header::InvalidHeaderValue> {
    let Some(p) = &v.principal else { return Ok(()) };
    if let PrincipalKind::ApiKey { .. } = p.kind {
        edits.push(Edit::Remove(API_KEY.clone()));
        edits.push(Edit::Remove(http::header::AUTHORIZATION));
        if v.api == Some(Api::Delivery) {
            if let Some(real) = f.delivery_api_key {
                edits.push(set(&API_KEY, real)?);
            }
        }
    }
    edits.push(set(&PRINCIPAL, &p.id)?);
    edits.push(Edit::Set(
        PRINCIPAL_KIND.clone(),
        HeaderValue::from_static(p.kind.as_str()),
    ));
    if !v.groups.is_empty() {
        let groups = HeaderValue::try_from(v.groups.join(","))?;
        edits.push(Edit::Set(GROUPS.clone(), groups));
    }
    if let Subject::Member { username, .. } = &p.subject {
        edits.push(set(&MEMBER, username.as_str())?);
    }
    if let Some(id) = f.decision_id {
        edits.push(set(&DECISION_ID_NAME, id)?);
    }
    Ok(())
}

#[cfg(test)]
#[path = "headers_tests.rs"]
mod tests;
