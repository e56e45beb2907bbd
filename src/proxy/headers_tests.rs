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
    let v = traceparent(&map(&[("traceparent", t)]));
    assert_eq!(trace_id(&v), "4bf92f3577b34da6a3ce929d0e0e4736");
    assert!(v.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-") && v.ends_with("-01"));
    assert_ne!(v, t, "the gateway is the new parent span");
    let v = traceparent(&map(&[(
        "traceparent",
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
    )]));
    assert_ne!(trace_id(&v), "00000000000000000000000000000000");
    assert_eq!(trace_id(&v).len(), 32);
    assert!(v.starts_with("00-") && v.ends_with("-01"));
    assert_eq!(v.len(), 55);
    assert!(
        incoming_trace(&v).is_some(),
        "a new trace is itself valid: {v}"
    );
    for extra in [
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
        "garbage",
    ] {
        let v = traceparent(&map(&[("traceparent", extra)]));
        assert_ne!(trace_id(&v), "4bf92f3577b34da6a3ce929d0e0e4736", "{extra}");
        assert_eq!(v.len(), 55);
    }
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
    let strip = client_headers_to_strip(&h, &[HeaderName::from_static("x-umbraco-user")], false);
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
    let f = forwarded(&h, Some("10.1.1.1".parse().expect("ip")), false);
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
    let peer = Some("10.1.1.1".parse().expect("ip"));
    assert!(is_trusted(peer, &trusted));
    assert!(!is_trusted(Some("11.1.1.1".parse().expect("ip")), &trusted));
    let f = forwarded(&h, peer, true);
    assert_eq!(f[0].1.as_ref().expect("xff"), "1.2.3.4, 10.1.1.1");
    assert_eq!(f[1].1.as_ref().expect("proto"), "https");
}

fn removed(edits: &[Edit]) -> Vec<&str> {
    edits
        .iter()
        .filter_map(|e| match e {
            Edit::Remove(n) => Some(n.as_str()),
            Edit::Set(..) => None,
        })
        .collect()
}

fn set<'a>(edits: &'a [Edit], name: &str) -> Vec<&'a str> {
    edits
        .iter()
        .filter_map(|e| match e {
            Edit::Set(n, v) if n.as_str().eq_ignore_ascii_case(name) => v.to_str().ok(),
            _ => None,
        })
        .collect()
}

const KEY: &str = "pcl_live_0123456789ABCDEF_abcdefghijABCDEFGHIJabcdefghijABCDEFGHIJabcd";

fn forwarding<'a>(verdict: Option<&'a Verdict>, trusted: &'a [IpNet]) -> Forwarding<'a> {
    Forwarding {
        peer: Some("10.1.1.1".parse().expect("ip")),
        trusted_proxies: trusted,
        identity: &[],
        verdict,
        decision_id: Some("ev-1"),
        request_id: "req-1",
        traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        body_inspected: false,
        upstream_host: None,
        delivery_api_key: Some("umbraco-real-key"),
    }
}

/// What `is_client_claim` must match, written out as the specification.
const CLIENT_CLAIMS: &[&str] = &[
    "forwarded",
    "x-real-ip",
    "true-client-ip",
    "cf-connecting-ip",
    "x-client-ip",
    "x-cluster-client-ip",
    "x-original-url",
    "x-rewrite-url",
    "x-original-host",
    "x-forwarded-prefix",
    "x-forwarded-uri",
    "x-forwarded-port",
    "x-forwarded-server",
    "x-envoy-original-path",
    "x-http-method",
    "x-http-method-override",
    "x-method-override",
];

/// RFC 9110 §7.6.1's hop-by-hop fields and their legacy companions.
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

#[test]
fn every_hop_by_hop_header_is_removed_for_any_peer_and_near_misses_are_kept() {
    let near = [
        "connections",
        "t",
        "tee",
        "upgrades",
        "x-keep-alive",
        "x-real-ip2",
    ];
    let mut pairs: Vec<(&str, &str)> = HOP_BY_HOP.iter().map(|h| (*h, "1")).collect();
    pairs.extend(near.iter().map(|h| (*h, "1")));
    let h = map(&pairs);
    for trusted in [false, true] {
        let strip = client_headers_to_strip(&h, &[], trusted);
        let names: Vec<&str> = strip.iter().map(|k| k.as_str()).collect();
        let mut want = HOP_BY_HOP.to_vec();
        want.sort_unstable();
        assert_eq!(names, want, "trusted peer: {trusted}");
    }
}

fn claims() -> Vec<(&'static str, &'static str)> {
    CLIENT_CLAIMS.iter().map(|h| (*h, "spoofed")).collect()
}

#[test]
fn an_untrusted_peer_loses_every_client_claim_and_any_header_holding_a_key() {
    let mut pairs = claims();
    pairs.extend([
        ("host", "cms"),
        ("x-forwarded-for", "1.2.3.4"),
        (
            "cookie",
            "a=1; k=pcl_live_0123456789ABCDEF_abcdefghijABCDEFGHIJabcdefghijABCDEFGHIJabcd",
        ),
        ("x-note", "harmless"),
    ]);
    let h = map(&pairs);
    let edits = upstream_edits(&h, &forwarding(None, &[])).expect("edits");
    let gone = removed(&edits);
    for claim in CLIENT_CLAIMS {
        assert!(gone.contains(claim), "{claim} removed");
    }
    assert!(gone.contains(&"cookie"), "the header holding a key");
    assert!(!gone.contains(&"x-note"));
    assert_eq!(set(&edits, "x-forwarded-for"), ["10.1.1.1"]);
    assert_eq!(set(&edits, "x-forwarded-host"), ["cms"]);
    assert_eq!(set(&edits, "x-forwarded-proto"), ["http"]);
    assert_eq!(set(&edits, "x-request-id"), ["req-1"]);
    // Every removal comes before every header the gateway sets.
    let first_set = edits.iter().position(|e| matches!(e, Edit::Set(..)));
    let last_remove = edits.iter().rposition(|e| matches!(e, Edit::Remove(..)));
    assert!(last_remove < first_set, "{edits:?}");
}

#[test]
fn a_trusted_proxy_keeps_the_client_claims_but_never_a_key() {
    let mut pairs = claims();
    pairs.push(("x-api-key-copy", KEY));
    let h = map(&pairs);
    let trusted = vec!["10.0.0.0/8".parse().expect("cidr")];
    let edits = upstream_edits(&h, &forwarding(None, &trusted)).expect("edits");
    let gone = removed(&edits);
    assert!(gone.contains(&"x-api-key-copy"));
    assert!(CLIENT_CLAIMS.iter().all(|c| !gone.contains(c)), "{gone:?}");
}

#[test]
fn an_api_key_caller_on_delivery_sends_umbracos_key_and_its_identity() {
    use crate::authn::Principal;
    let h = map(&[("api-key", KEY), ("x-portcullis-principal", "admin")]);
    let verdict = Verdict {
        api: Some(Api::Delivery),
        principal: Some(std::sync::Arc::new(Principal {
            id: "key:0123456789ABCDEF".into(),
            kind: PrincipalKind::ApiKey {
                key_id: "0123456789ABCDEF".into(),
            },
            subject: Subject::Anonymous,
        })),
        groups: vec!["editors".into()],
        ..Verdict::denied(crate::authz::DenyReason::NoRoute)
    };
    let edits = upstream_edits(&h, &forwarding(Some(&verdict), &[])).expect("edits");
    let gone = removed(&edits);
    assert!(gone.contains(&"api-key") && gone.contains(&"x-portcullis-principal"));
    assert_eq!(set(&edits, "api-key"), ["umbraco-real-key"]);
    assert_eq!(
        set(&edits, "x-portcullis-principal"),
        ["key:0123456789ABCDEF"]
    );
    assert_eq!(set(&edits, "x-portcullis-principal-kind"), ["api_key"]);
    assert_eq!(set(&edits, "x-portcullis-groups"), ["editors"]);
    assert_eq!(set(&edits, DECISION_ID), ["ev-1"]);
    // The real key is set after the presented one is removed.
    let remove_at = edits
        .iter()
        .position(|e| *e == Edit::Remove(HeaderName::from_static("api-key")));
    let set_at = edits
        .iter()
        .position(|e| matches!(e, Edit::Set(n, _) if *n == "api-key"));
    assert!(remove_at < set_at);
}

#[test]
fn an_inspected_body_drops_expect_and_upstream_host_replaces_host() {
    let h = map(&[("expect", "100-continue"), ("host", "cms")]);
    let mut f = forwarding(None, &[]);
    f.body_inspected = true;
    f.upstream_host = Some("umbraco.internal");
    let edits = upstream_edits(&h, &f).expect("edits");
    assert!(removed(&edits).contains(&"expect"));
    assert_eq!(set(&edits, "host"), ["umbraco.internal"]);
    assert_eq!(
        set(&edits, "x-forwarded-host"),
        ["cms"],
        "what the gateway received"
    );
}

fn client_request(target: &[u8]) -> RequestHeader {
    let mut req = RequestHeader::build("POST", target, None).expect("head");
    req.insert_header("X-Client", "kept").expect("header");
    req.append_header("Api-Key", "pcl_presented")
        .expect("header");
    req.append_header("Api-Key", "pcl_second").expect("header");
    req
}

fn wire(req: &RequestHeader) -> String {
    let mut buf = Vec::new();
    req.header_to_h1_wire(&mut buf);
    String::from_utf8(buf).expect("utf-8")
}

#[test]
fn apply_carries_the_edits_and_the_authorised_target_into_the_upstream_request() {
    let mut req = client_request(b"/umbraco/delivery/api/v2/content/item/%41?x=1");
    let edits = vec![
        Edit::Remove(API_KEY.clone()),
        Edit::Set(PRINCIPAL.clone(), HeaderValue::from_static("key:k1")),
        Edit::Set(http::header::HOST, HeaderValue::from_static("cms.internal")),
    ];
    let target = "/umbraco/delivery/api/v2/content/item/A?x=1";
    apply(&mut req, edits, Some(target)).expect("applied");
    assert_eq!(req.method, http::Method::POST);
    assert_eq!(
        req.raw_path(),
        b"/umbraco/delivery/api/v2/content/item/A?x=1"
    );
    assert_eq!(
        req.headers.get_all("api-key").iter().count(),
        0,
        "every value removed"
    );
    assert_eq!(req.headers["x-portcullis-principal"], "key:k1");
    assert_eq!(req.headers["host"], "cms.internal");
    // The client's own header goes on. No header-case map is kept: pingora writes a standard
    // name in its title case and any other in lower case (the client sent `X-Client`). Kestrel
    // reads names ignoring case (aspnetcore `src/Servers/Kestrel/Core/src/Internal/Http/
    // HttpHeaders.cs`: unknown headers in a `StringComparer.OrdinalIgnoreCase` dictionary).
    assert!(!req.has_case());
    let head = wire(&req);
    assert!(head.contains("x-client: kept\r\n"), "{head}");
    assert!(head.contains("Host: cms.internal\r\n"), "{head}");
    assert!(!head.contains("pcl_"), "{head}");
}

#[test]
fn apply_sends_the_authorised_target_when_the_received_one_is_already_it() {
    // Same path and query: the parsed URI is kept. Absolute-form: only its path and query go
    // upstream, never the scheme and authority the client wrote.
    for (received, target) in [
        (
            &b"/umbraco/management/api/v1/document/1?x=1"[..],
            "/umbraco/management/api/v1/document/1?x=1",
        ),
        (b"http://example.test/p?q=1", "/p?q=1"),
        (b"/p?q=1", "/p?q=2"),
        (b"/P", "/p"),
    ] {
        let mut req = client_request(received);
        apply(&mut req, Vec::new(), Some(target)).expect("applied");
        assert_eq!(req.raw_path(), target.as_bytes());
        // The request head pingora writes to the upstream.
        let head = pingora::protocols::http::v1::client::http_req_header_to_wire(&req)
            .expect("a valid head");
        let line = format!("POST {target} HTTP/1.1\r\n");
        assert!(head.starts_with(line.as_bytes()), "{head:?}");
    }
    let mut req = client_request(b"/a");
    let err = apply(&mut req, Vec::new(), Some("/a b")).expect_err("not a uri");
    assert_eq!(err.etype(), &pingora::ErrorType::InternalError);
    assert_eq!(req.raw_path(), b"/a", "left as it was");
    assert_eq!(req.headers.get_all("api-key").iter().count(), 2);
}

#[test]
fn apply_without_an_authorised_target_keeps_the_target_as_received() {
    for target in [&b"/a/b%2Fc?q=%20"[..], b"http://example.test/p?q=1"] {
        let mut req = client_request(target);
        let before = req.raw_path().to_vec();
        apply(&mut req, Vec::new(), None).expect("applied");
        assert_eq!(req.raw_path(), &before[..]);
        assert_eq!(req.headers.get_all("api-key").iter().count(), 2);
    }
}

#[test]
fn response_ids_are_added_and_the_status_reason_and_headers_kept() {
    let mut resp = ResponseHeader::build(299, None).expect("head");
    resp.insert_header("X-Upstream", "kept").expect("header");
    resp.set_reason_phrase(Some("Fine Indeed")).expect("reason");
    add_response_ids(&mut resp, "req-1", Some("ev-1")).expect("added");
    assert_eq!(resp.status.as_u16(), 299);
    assert_eq!(resp.get_reason_phrase(), Some("Fine Indeed"));
    assert_eq!(resp.headers["x-request-id"], "req-1");
    assert_eq!(resp.headers[DECISION_ID], "ev-1");
    let mut buf = Vec::new();
    resp.header_to_h1_wire(&mut buf);
    let head = String::from_utf8(buf).expect("utf-8");
    assert!(head.contains("x-upstream: kept\r\n"), "{head}");
    let mut plain = ResponseHeader::build(200, None).expect("head");
    add_response_ids(&mut plain, "req-2", None).expect("added");
    assert_eq!(plain.get_reason_phrase(), Some("OK"));
    assert!(plain.headers.get(DECISION_ID).is_none());
}
