//! One test per canonicalisation rule (numbered as in the module doc), plus property tests.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use super::*;
use proptest::prelude::*;

const M: &str = "/umbraco/management/api";

fn prefixes() -> Prefixes {
    Prefixes::new([M, "/umbraco/delivery/api"])
}

fn canon(t: &str) -> Result<String, NormalizeError> {
    canonicalize(t, &prefixes()).map(|c| c.uri())
}

#[test]
fn rule_1_absolute_form_keeps_only_path_and_query() {
    assert_eq!(
        canon("http://evil.example/umbraco/management/api/v1/user?x=1").unwrap(),
        "/umbraco/management/api/v1/user?x=1"
    );
    assert_eq!(canon("*"), Err(NormalizeError::NotOriginForm));
    assert_eq!(canon("host:443"), Err(NormalizeError::NotOriginForm));
}

#[test]
fn rule_2_only_unreserved_escapes_are_decoded() {
    assert_eq!(canon("/a%62c/%7e%2d%5F%41").unwrap(), "/abc/~-_A");
    assert_eq!(canon("/a%3a%40b%20").unwrap(), "/a%3A%40b%20");
    assert_eq!(canon("/a%2"), Err(NormalizeError::BadPercent));
    assert_eq!(canon("/a%zz"), Err(NormalizeError::BadPercent));
    assert_eq!(canon("/a{b}").unwrap(), "/a%7Bb%7D");
}

#[test]
fn rule_3_double_encoding_is_rejected() {
    assert_eq!(
        canon("/a/%252e%252e/b"),
        Err(NormalizeError::DoubleEncoding)
    );
    assert_eq!(canon("/a/%25"), Err(NormalizeError::DoubleEncoding));
    assert_eq!(canon("/a?x=%2541"), Err(NormalizeError::DoubleEncoding));
    // A literal percent sign in a query value is data.
    assert_eq!(canon("/a?x=100%25").unwrap(), "/a?x=100%25");
}

#[test]
fn rule_4_control_characters_are_rejected_raw_or_encoded() {
    assert_eq!(canon("/a%00b"), Err(NormalizeError::ControlChar));
    assert_eq!(canon("/a%0d%0a"), Err(NormalizeError::ControlChar));
    assert_eq!(canon("/a\tb"), Err(NormalizeError::ControlChar));
    assert_eq!(canon("/a%7F"), Err(NormalizeError::ControlChar));
    assert_eq!(canon("/a%C2%85"), Err(NormalizeError::ControlChar));
    assert_eq!(canon("/a?x=%00"), Err(NormalizeError::ControlChar));
}

#[test]
fn rule_5_non_ascii_must_be_valid_shortest_utf8() {
    assert_eq!(canon("/caf%c3%a9").unwrap(), "/caf%C3%A9");
    assert_eq!(canon("/caf\u{e9}"), Err(NormalizeError::NonAscii));
    assert_eq!(canon("/%C0%AE%C0%AE/x"), Err(NormalizeError::InvalidUtf8));
    assert_eq!(canon("/%E0%80%AF"), Err(NormalizeError::InvalidUtf8));
    assert_eq!(canon("/%C3"), Err(NormalizeError::InvalidUtf8));
    assert_eq!(canon("/%FF"), Err(NormalizeError::InvalidUtf8));
}

#[test]
fn rule_6_backslashes_are_rejected_and_encoded_slashes_flagged() {
    assert_eq!(canon("/a\\b"), Err(NormalizeError::Backslash));
    assert_eq!(canon("/a%5cb"), Err(NormalizeError::Backslash));
    let c = canonicalize("/a/b%2fc/d", &prefixes()).unwrap();
    assert_eq!(c.path, "/a/b%2Fc/d");
    assert_eq!(c.encoded_slash.as_slice(), &[1]);
    assert_eq!(c.segments().collect::<Vec<_>>(), ["a", "b%2Fc", "d"]);
}

#[test]
fn rule_7_path_parameters_are_rejected() {
    assert_eq!(canon("/a;jsessionid=1/b"), Err(NormalizeError::PathParam));
    assert_eq!(canon("/a%3bx"), Err(NormalizeError::PathParam));
}

#[test]
fn rule_8_fragments_are_rejected() {
    assert_eq!(canon("/a#b"), Err(NormalizeError::Fragment));
    assert_eq!(canon("/a?x=1#b"), Err(NormalizeError::Fragment));
    assert_eq!(canon("/a%23b").unwrap(), "/a%23b");
}

#[test]
fn rule_9_repeated_slashes_collapse() {
    assert_eq!(
        canon("//umbraco///management/api//v1/user").unwrap(),
        "/umbraco/management/api/v1/user"
    );
}

#[test]
fn rule_10_dot_segments_resolve_in_any_encoding() {
    assert_eq!(canon("/a/./b/../c").unwrap(), "/a/c");
    assert_eq!(canon("/a/%2e/b/%2E%2e/c").unwrap(), "/a/c");
    assert_eq!(canon("/a/b/.%2E/c").unwrap(), "/a/c");
    assert_eq!(
        canon("/x/../umbraco/management/api/v1/user").unwrap(),
        "/umbraco/management/api/v1/user"
    );
}

#[test]
fn rule_10_dot_segments_never_leave_a_protected_prefix_or_the_root() {
    assert_eq!(
        canon("/umbraco/management/api/v1/../../index.html"),
        Err(NormalizeError::DotSegmentEscape)
    );
    assert_eq!(
        canon("/UMBRACO/Management/API/%2e%2e/x"),
        Err(NormalizeError::DotSegmentEscape)
    );
    assert_eq!(canon("/.."), Err(NormalizeError::DotSegmentEscape));
    assert_eq!(
        canon("/umbraco/management/api/v1/x/..").unwrap(),
        "/umbraco/management/api/v1"
    );
}

#[test]
fn rule_11_trailing_dots_are_rejected() {
    assert_eq!(canon("/a/publish."), Err(NormalizeError::TrailingDot));
    assert_eq!(canon("/a/.../b"), Err(NormalizeError::TrailingDot));
    assert_eq!(canon("/a/b%2e"), Err(NormalizeError::TrailingDot));
    assert_eq!(canon("/a/.b").unwrap(), "/a/.b");
}

#[test]
fn rule_12_trailing_slash_is_removed() {
    assert_eq!(canon("/a/b/").unwrap(), "/a/b");
    assert_eq!(canon("/").unwrap(), "/");
    assert_eq!(canon("/?x=1").unwrap(), "/?x=1");
}

#[test]
fn rule_13_case_is_kept_and_prefixes_are_found_in_any_case() {
    let c = canonicalize("/UMBRACO/Management/API/v1/User", &prefixes()).unwrap();
    assert_eq!(c.path, "/UMBRACO/Management/API/v1/User");
    assert_eq!(prefixes().find(c.segments()), Some(0));
}

#[test]
fn rule_14_query_is_canonicalised_and_ambiguity_rejected() {
    assert_eq!(canon("/a?&b=%7e%2f&&c").unwrap(), "/a?b=~%2F&c");
    assert_eq!(
        canon("/a?fetch=children:x&FETCH=descendants:y"),
        Err(NormalizeError::DuplicateParam("fetch".into()))
    );
    assert_eq!(
        canon("/a?%66etch=a&fetch=b"),
        Err(NormalizeError::DuplicateParam("fetch".into()))
    );
    assert_eq!(canon("/a?x=1;y=2"), Err(NormalizeError::QuerySemicolon));
    assert_eq!(canon("/a?x=%g1"), Err(NormalizeError::BadPercent));
    // Repeatable parameters stay repeated, in order.
    assert_eq!(canon("/a?id=1&id=2").unwrap(), "/a?id=1&id=2");
}

#[test]
fn decoding_helpers_follow_asp_net() {
    assert_eq!(decode_query_component("a+b%2Fc").as_deref(), Some("a b/c"));
    assert_eq!(decode_path_component("a%2Fb+c").as_deref(), Some("a/b+c"));
    assert_eq!(decode_query_component("%FF"), None);
}

fn seg() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9_~-]{1,6}",
        Just(".".to_string()),
        Just("..".to_string()),
        Just("%2e%2E".to_string()),
        Just("%41%7e".to_string()),
        Just("%2F".to_string()),
        Just("".to_string()),
        "[ -~]{1,4}",
    ]
}

proptest! {
    #[test]
    fn canonicalisation_is_idempotent(segs in prop::collection::vec(seg(), 0..8), q in "[ -~]{0,12}") {
        let t = format!("/{}?{}", segs.join("/"), q);
        if let Ok(once) = canon(&t) {
            prop_assert_eq!(canon(&once), Ok(once.clone()));
        }
    }

    #[test]
    fn canonicalisation_never_leaves_the_input_prefix(segs in prop::collection::vec(seg(), 0..8), upper in any::<bool>()) {
        let prefix = if upper { "/UMBRACO/management/Api" } else { M };
        let t = format!("{prefix}/{}", segs.join("/"));
        if let Ok(c) = canonicalize(&t, &prefixes()) {
            prop_assert_eq!(prefixes().find(c.segments()), Some(0), "{} -> {}", t, c.path);
        }
    }
}
