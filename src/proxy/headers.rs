//! Header hygiene between client and upstream: request ids, hop-by-hop and gateway-owned
//! headers, `X-Forwarded-*`, and which credential Umbraco receives. Pure functions over
//! `http::HeaderMap` and the decision.

use crate::authn::{Principal, PrincipalKind};
use crate::request::Api;
use crate::umbraco::CredentialKind;
use http::{HeaderMap, HeaderName, HeaderValue};
use ipnet::IpNet;
use std::net::IpAddr;

pub const REQUEST_ID: &str = "x-request-id";

/// Headers meaningful only for one hop (RFC 9110 §7.6.1). `Transfer-Encoding` is framing that
/// pingora rewrites itself, so it is not in this list.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "upgrade",
];

/// Headers framing the message: never removed because a client named them in `Connection`.
const FRAMING: &[&str] = &["host", "content-length", "transfer-encoding"];

/// A client-supplied request id is kept when it is 1–128 visible characters of
/// `[A-Za-z0-9._:-]`; otherwise a new UUID v7 is made.
pub fn request_id(headers: &HeaderMap) -> String {
    headers
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 128
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b))
        })
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string())
}

/// The W3C `traceparent` to send upstream: the client's trace continues (same trace id and
/// flags) with the gateway as the new parent span; a missing or malformed one starts a new
/// sampled trace. Returns `(header value, trace id)`.
pub fn traceparent(headers: &HeaderMap) -> (String, String) {
    let span: u64 = rand::random::<u64>() | 1;
    let incoming = headers
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let parts: Vec<&str> = v.trim().split('-').collect();
            let hex = |s: &str, n: usize| {
                s.len() == n
                    && s.bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            };
            match parts.as_slice() {
                [ver, trace, parent, flags]
                    if hex(ver, 2)
                        && *ver != "ff"
                        && hex(trace, 32)
                        && hex(parent, 16)
                        && hex(flags, 2)
                        && trace.bytes().any(|b| b != b'0')
                        && parent.bytes().any(|b| b != b'0') =>
                {
                    Some((trace.to_string(), flags.to_string()))
                }
                _ => None,
            }
        });
    let (trace, flags) = incoming.unwrap_or_else(|| {
        (
            format!("{:032x}", rand::random::<u128>() | 1),
            "01".to_owned(),
        )
    });
    (format!("00-{trace}-{span:016x}-{flags}"), trace)
}

/// Names of what the upstream must never receive from a client: hop-by-hop headers, headers
/// the client named in `Connection`, `X-Portcullis-*`, and the configured identity headers.
/// Removed before the gateway adds its own headers, so a client cannot make it drop them.
pub fn client_headers_to_strip(headers: &HeaderMap, identity: &[HeaderName]) -> Vec<HeaderName> {
    let mut out: Vec<HeaderName> = headers
        .get_all(http::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok())
        .filter(|n| !FRAMING.contains(&n.as_str()))
        .collect();
    out.extend(HOP_BY_HOP.iter().map(|h| HeaderName::from_static(h)));
    out.extend(
        headers
            .keys()
            .filter(|k| k.as_str().starts_with("x-portcullis-"))
            .cloned(),
    );
    out.extend(identity.iter().cloned());
    out.retain(|n| headers.contains_key(n));
    out.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    out.dedup();
    out
}

/// The `X-Forwarded-For/Proto/Host` values to set (a `None` value means remove). Client-sent
/// values are kept (and extended) only when the direct peer is a trusted proxy.
pub fn forwarded(
    headers: &HeaderMap,
    peer: Option<IpAddr>,
    trusted: &[IpNet],
) -> [(&'static str, Option<HeaderValue>); 3] {
    let trusted_peer = peer.is_some_and(|ip| trusted.iter().any(|n| n.contains(&ip)));
    let peer_s = peer
        .map(|p| p.to_string())
        .unwrap_or_else(|| "unknown".into());
    let xff = match headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
        Some(prev) if trusted_peer => format!("{prev}, {peer_s}"),
        _ => peer_s,
    };
    let proto = match headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
    {
        Some(p) if trusted_peer && (p == "http" || p == "https") => p.to_owned(),
        _ => "http".to_owned(),
    };
    let host = match headers.get("x-forwarded-host") {
        Some(h) if trusted_peer => Some(h.clone()),
        _ => headers.get(http::header::HOST).cloned(),
    };
    [
        ("x-forwarded-for", HeaderValue::from_str(&xff).ok()),
        ("x-forwarded-proto", HeaderValue::from_str(&proto).ok()),
        ("x-forwarded-host", host),
    ]
}

/// The credential an allowed request carries to Umbraco.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamCredential {
    /// The request's own `Authorization` (Portcullis API keys are removed regardless).
    AsSent,
    /// The configured API user's token replaces `Authorization`.
    ApiUser,
}

/// Which credential Umbraco receives: with `[upstream.credential] kind = "umbraco_api_user"`,
/// Management API requests of callers whose credential Umbraco cannot read (an external IdP's
/// JWT, a Portcullis API key) carry the API user's token; everything else goes as sent.
pub fn upstream_credential(
    api: Option<Api>,
    principal: Option<&Principal>,
    kind: CredentialKind,
) -> UpstreamCredential {
    let foreign = principal.is_some_and(|p| {
        matches!(
            p.kind,
            PrincipalKind::Jwt { .. } | PrincipalKind::ApiKey { .. }
        )
    });
    if kind == CredentialKind::UmbracoApiUser && api == Some(Api::Management) && foreign {
        UpstreamCredential::ApiUser
    } else {
        UpstreamCredential::AsSent
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.append(
                HeaderName::from_bytes(k.as_bytes()).expect("name"),
                HeaderValue::from_str(v).expect("value"),
            );
        }
        m
    }

    #[test]
    fn a_client_trace_continues_with_the_gateway_as_parent_and_a_bad_one_starts_a_new_trace() {
        let t = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let (v, trace) = traceparent(&map(&[("traceparent", t)]));
        assert_eq!(trace, "4bf92f3577b34da6a3ce929d0e0e4736");
        assert!(v.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-") && v.ends_with("-01"));
        assert_ne!(v, t, "the gateway is the new parent span");
        let (v, trace) = traceparent(&map(&[(
            "traceparent",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        )]));
        assert_ne!(trace, "00000000000000000000000000000000");
        assert_eq!(v.len(), 55);
    }

    #[test]
    fn a_well_formed_client_request_id_is_kept_and_a_bad_one_replaced() {
        assert_eq!(request_id(&map(&[("x-request-id", "abc-123")])), "abc-123");
        let fresh = request_id(&map(&[("x-request-id", "bad id\twith spaces")]));
        assert_ne!(fresh, "bad id\twith spaces");
        assert!(uuid::Uuid::parse_str(&fresh).is_ok());
    }

    #[test]
    fn hop_by_hop_connection_named_and_owned_headers_are_removed() {
        let h = map(&[
            ("connection", "close, x-secret, content-length"),
            ("x-secret", "1"),
            ("keep-alive", "timeout=5"),
            ("x-portcullis-user", "admin"),
            ("x-umbraco-user", "admin"),
            ("content-length", "3"),
            ("accept", "*/*"),
        ]);
        let strip = client_headers_to_strip(&h, &[HeaderName::from_static("x-umbraco-user")]);
        let names: Vec<&str> = strip.iter().map(|k| k.as_str()).collect();
        assert_eq!(
            names,
            vec![
                "connection",
                "keep-alive",
                "x-portcullis-user",
                "x-secret",
                "x-umbraco-user"
            ]
        );
    }

    #[test]
    fn forwarded_headers_from_untrusted_peers_are_replaced() {
        let h = map(&[
            ("x-forwarded-for", "1.2.3.4"),
            ("x-forwarded-proto", "https"),
            ("host", "site"),
        ]);
        let f = forwarded(&h, Some("10.1.1.1".parse().expect("ip")), &[]);
        assert_eq!(f[0].1.as_ref().expect("xff"), "10.1.1.1");
        assert_eq!(f[1].1.as_ref().expect("proto"), "http");
        assert_eq!(f[2].1.as_ref().expect("host"), "site");
    }

    #[test]
    fn forwarded_headers_from_trusted_proxies_are_extended() {
        let h = map(&[
            ("x-forwarded-for", "1.2.3.4"),
            ("x-forwarded-proto", "https"),
        ]);
        let trusted = vec!["10.0.0.0/8".parse().expect("cidr")];
        let f = forwarded(&h, Some("10.1.1.1".parse().expect("ip")), &trusted);
        assert_eq!(f[0].1.as_ref().expect("xff"), "1.2.3.4, 10.1.1.1");
        assert_eq!(f[1].1.as_ref().expect("proto"), "https");
    }

    #[test]
    fn only_management_requests_of_jwt_and_key_callers_get_the_api_user_token() {
        use crate::authn::Subject;
        let p = |kind| Principal {
            id: "x".into(),
            kind,
            subject: Subject::Anonymous,
        };
        let jwt = p(PrincipalKind::Jwt {
            issuer: std::sync::Arc::from("idp"),
        });
        let key = p(PrincipalKind::ApiKey { key_id: "k".into() });
        let anon = p(PrincipalKind::Anonymous);
        let api_user = CredentialKind::UmbracoApiUser;
        let m = Some(Api::Management);
        use UpstreamCredential::*;
        assert_eq!(upstream_credential(m, Some(&jwt), api_user), ApiUser);
        assert_eq!(upstream_credential(m, Some(&key), api_user), ApiUser);
        assert_eq!(upstream_credential(m, Some(&anon), api_user), AsSent);
        assert_eq!(upstream_credential(m, None, api_user), AsSent);
        assert_eq!(
            upstream_credential(Some(Api::Delivery), Some(&key), api_user),
            AsSent
        );
        assert_eq!(
            upstream_credential(m, Some(&jwt), CredentialKind::Passthrough),
            AsSent
        );
    }
}
