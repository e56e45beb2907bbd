use super::*;

fn refusal(raw: &str, edge: &HeadPolicy) -> Option<DenyReason> {
    let head = HeadFacts::from_raw(raw.as_bytes());
    let target = raw.split(' ').nth(1).unwrap_or("/");
    check(&head, Version::HTTP_11, target.as_bytes(), None, edge)
}

fn req(lines: &str) -> String {
    format!("POST /x?a=1 HTTP/1.1\r\n{lines}\r\n")
}

#[test]
fn the_raw_head_is_read_field_by_field_with_crlf_or_bare_lf() {
    let raw = "GET / HTTP/1.1\r\nHost: a\r\nContent-Length:  5 \r\ncontent-length: 5\nTRANSFER-ENCODING: chunked\r\nX: y\r\n\r\n";
    let h = HeadFacts::from_raw(raw.as_bytes());
    assert_eq!(h.fields, 5);
    assert_eq!(h.size, raw.len());
    assert_eq!(&h.content_length[..], [&b"5"[..], b"5"]);
    assert_eq!(&h.transfer_encoding[..], [&b"chunked"[..]]);
    assert_eq!(&h.host[..], [&b"a"[..]]);
}

#[test]
fn one_content_length_or_one_chunked_passes() {
    let e = HeadPolicy::default();
    assert_eq!(refusal(&req("Host: a\r\nContent-Length: 5\r\n"), &e), None);
    assert_eq!(
        refusal(&req("Host: a\r\nTransfer-Encoding: Chunked\r\n"), &e),
        None
    );
    assert_eq!(refusal(&req("Host: a\r\n"), &e), None);
}

#[test]
fn repeated_content_length_or_one_beside_transfer_encoding_is_bad_framing() {
    let e = HeadPolicy::default();
    for lines in [
        "Content-Length: 5, 5\r\n",
        "Content-Length: 5\r\nContent-Length: 5\r\n",
        "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
        "Content-Length: +5\r\n",
        "Content-Length: \r\n",
    ] {
        let r = refusal(&req(&format!("Host: a\r\n{lines}")), &e);
        assert_eq!(r, Some(DenyReason::BadFraming), "{lines}");
    }
}

#[test]
fn codings_other_than_exactly_one_chunked_are_unsupported() {
    let e = HeadPolicy::default();
    for lines in [
        "Transfer-Encoding: gzip, chunked\r\n",
        "Transfer-Encoding: chunked, chunked\r\n",
        "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
        "Transfer-Encoding: identity\r\n",
    ] {
        let r = refusal(&req(&format!("Host: a\r\n{lines}")), &e);
        assert_eq!(r, Some(DenyReason::UnsupportedTransferCoding), "{lines}");
    }
}

#[test]
fn http11_needs_exactly_one_valid_host_and_http10_none() {
    let e = HeadPolicy::default();
    assert_eq!(refusal(&req(""), &e), Some(DenyReason::BadHost));
    assert_eq!(
        refusal(&req("Host: a\r\nHost: a\r\n"), &e),
        Some(DenyReason::BadHost)
    );
    assert_eq!(
        refusal(&req("Host: a b\r\n"), &e),
        Some(DenyReason::BadHost)
    );
    assert_eq!(
        refusal(&req("Host: u@a\r\n"), &e),
        Some(DenyReason::BadHost)
    );
    let raw = "GET / HTTP/1.0\r\n\r\n";
    let h = HeadFacts::from_raw(raw.as_bytes());
    assert_eq!(check(&h, Version::HTTP_10, b"/", None, &e), None);
}

#[test]
fn allowed_hosts_match_name_or_name_and_port_case_insensitively() {
    let e = HeadPolicy {
        allowed_hosts: vec!["cms.example.com".into(), "[::1]:8080".into()],
        ..HeadPolicy::default()
    };
    for ok in ["CMS.example.com", "cms.example.com:443", "[::1]:8080"] {
        assert_eq!(refusal(&req(&format!("Host: {ok}\r\n")), &e), None, "{ok}");
    }
    for bad in [
        "evil.example.com",
        "cms.example.com.evil",
        "[::1]:9090",
        "[::1]",
    ] {
        let r = refusal(&req(&format!("Host: {bad}\r\n")), &e);
        assert_eq!(r, Some(DenyReason::MisdirectedRequest), "{bad}");
    }
    // An absolute-form or HTTP/2 authority must be allowed as well.
    let h = HeadFacts::from_raw(b"GET / HTTP/1.1\r\nHost: cms.example.com\r\n\r\n");
    let r = check(&h, Version::HTTP_11, b"/", Some("evil.example.com"), &e);
    assert_eq!(r, Some(DenyReason::MisdirectedRequest));
    let empty = HeaderMap::new();
    let h2 = HeadFacts::from_headers(&empty, 1);
    assert_eq!(
        check(&h2, Version::HTTP_2, b"/", Some("cms.example.com"), &e),
        None
    );
    assert_eq!(
        check(&h2, Version::HTTP_2, b"/", None, &e),
        Some(DenyReason::MisdirectedRequest)
    );
}

#[test]
fn limits_give_431_414_and_413_in_that_order() {
    let e = HeadPolicy {
        limits: Limits {
            max_head_bytes: 200,
            max_headers: 3,
            max_query_bytes: 4,
            max_body_bytes: 10,
        },
        ..HeadPolicy::default()
    };
    let big = format!("Host: a\r\nX: {}\r\n", "y".repeat(200));
    assert_eq!(refusal(&req(&big), &e), Some(DenyReason::HeadTooLarge));
    let many = "Host: a\r\nA: 1\r\nB: 1\r\nC: 1\r\n";
    assert_eq!(refusal(&req(many), &e), Some(DenyReason::HeadTooLarge));
    let long_query = "GET /x?abcde HTTP/1.1\r\nHost: a\r\n\r\n";
    assert_eq!(refusal(long_query, &e), Some(DenyReason::UriTooLong));
    let four = "GET /x?abcd HTTP/1.1\r\nHost: a\r\n\r\n";
    assert_eq!(refusal(four, &e), None);
    let body = req("Host: a\r\nContent-Length: 11\r\n");
    assert_eq!(refusal(&body, &e), Some(DenyReason::BodyTooLarge));
    let body = req("Host: a\r\nContent-Length: 10\r\n");
    assert_eq!(refusal(&body, &e), None);
}

#[test]
fn limits_are_validated_within_what_pingora_can_enforce() {
    let mut p = Problems::default();
    Limits {
        max_head_bytes: 0,
        max_headers: 300,
        max_query_bytes: 1,
        max_body_bytes: 0,
    }
    .validate(&mut p);
    assert_eq!(p.0.len(), 3, "{p}");
    let mut p = Problems::default();
    Limits::default().validate(&mut p);
    assert!(p.is_empty());
}

#[test]
fn allowed_hosts_are_checked_by_check_config_and_kept_lower_case() {
    let listen = crate::config::ListenConfig {
        allowed_hosts: vec!["CMS.example.com".into(), "bad host".into(), "u@h".into()],
        ..Default::default()
    };
    let mut p = Problems::default();
    let edge = HeadPolicy::from_config(&listen, &mut p);
    assert_eq!(p.0.len(), 2, "{p}");
    assert!(p.0[0].starts_with("listen.allowed_hosts[1]"), "{p}");
    assert_eq!(edge.allowed_hosts[0], "cms.example.com");
}
