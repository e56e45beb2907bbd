#![allow(clippy::unwrap_used)] // tests: a panic is the failure report
use super::*;

const G: &str = "3f0c1d2e-4b5a-4c6d-8e7f-9a0b1c2d3e4f";

fn key() -> NodeRef {
    NodeRef::Key(Uuid::parse_str(G).unwrap())
}

fn nodes(body: &str, path: &str, null_root: bool) -> Result<Vec<NodeRef>, BodyError> {
    let json = parse(body.as_bytes(), 1 << 20).unwrap();
    node_refs(&json, &BodyPath::parse(path).unwrap(), null_root)
}

#[test]
fn guid_parses_in_d_n_b_p_forms_with_whitespace() {
    let want = Uuid::parse_str(G).unwrap();
    for form in [
        G.to_string(),
        G.to_uppercase(),
        G.replace('-', ""),
        format!("{{{G}}}"),
        format!("({G})"),
        format!("  {G}\t"),
    ] {
        assert_eq!(parse_guid(&form), Some(want), "{form}");
    }
}

#[test]
fn guid_rejects_other_forms() {
    for bad in [
        "",
        "not-a-guid",
        "3f0c1d2e4b5a4c6d8e7f9a0b1c2d3e4",
        "{3f0c1d2e-4b5a-4c6d-8e7f-9a0b1c2d3e4f)",
        "urn:uuid:3f0c1d2e-4b5a-4c6d-8e7f-9a0b1c2d3e4f",
        "{0x3f0c1d2e,0x4b5a,0x4c6d,{0x8e,0x7f,0x9a,0x0b,0x1c,0x2d,0x3e,0x4f}}",
        "3f0c1d2e-4b5a-4c6d-8e7f-9a0b1c2d3e4g",
        "3f0c1d2e04b5a-4c6d-8e7f-9a0b1c2d3e4f",
        // What `uuid`'s own parser must refuse now that nothing scans before it.
        "3f0c1d2e4b5a4c6d8e7f9a0b1c2d3e4g",
        "+f0c1d2e-4b5a-4c6d-8e7f-9a0b1c2d3e4f",
        "3f0c1d2e-4b5a-4c6d-8e7f-9a0b1c2d3e\u{e9}",
        "{3f0c1d2e-4b5a-4c6d-8e7f-9a0b1c2d3e4g}",
        "[3f0c1d2e-4b5a-4c6d-8e7f-9a0b1c2d3e4f]",
        "{3f0c1d2e4b5a4c6d8e7f9a0b1c2d3e4f}",
        "3f0c1d2e-4b5a-4c6d-8e7f-9a0b1c2d3e4f0000",
    ] {
        assert_eq!(parse_guid(bad), None, "{bad}");
    }
}

#[test]
fn property_names_bind_ascii_case_insensitively() {
    // System.Text.Json with `JsonSerializerDefaults.Web` (aspnetcore
    // src/Mvc/Mvc.Core/src/JsonOptions.cs): `PropertyNameCaseInsensitive = true`.
    for body in [
        format!(r#"{{"PARENT":{{"Id":"{G}"}}}}"#),
        format!(r#"{{"Parent":{{"iD":"{G}"}}}}"#),
        // Escapes are decoded before the lookup, as System.Text.Json unescapes member names.
        format!(r#"{{"\u0070arent":{{"\u0069d":"{G}"}}}}"#),
    ] {
        assert_eq!(
            nodes(&body, "parent.id", false).unwrap(),
            vec![key()],
            "{body}"
        );
    }
}

fn ambiguous(body: &str, path: &str) -> bool {
    let json = parse(body.as_bytes(), 1 << 20).unwrap();
    matches!(
        node_refs(&json, &BodyPath::parse(path).unwrap(), true),
        Err(BodyError::AmbiguousName { .. })
    )
}

#[test]
fn dotless_i_and_long_s_do_not_bind_as_i_and_s_in_dotnet_ordinal_casing() {
    // dotnet/runtime src/native/libs/System.Globalization.Native/pal_common.c
    // `InitOrdinalCasingPage` maps U+0131 and U+017F to themselves, so `ıd` is not `Id` and
    // `ſorting` is not `sorting`: Umbraco ignores those members. Alone they are refused (they
    // fold to the name Portcullis looks up), never read as the field.
    for (body, path) in [
        (format!(r#"{{"parent":{{"\u0131d":"{G}"}}}}"#), "parent.id"),
        (format!(r#"{{"parent":{{"ıd":"{G}"}}}}"#), "parent.id"),
        (format!(r#"{{"ſorting":[{{"id":"{G}"}}]}}"#), "sorting[].id"),
        (format!(r#"{{"parent":{{"İd":"{G}"}}}}"#), "parent.id"),
    ] {
        assert!(ambiguous(&body, path), "{body}");
    }
}

#[test]
fn two_member_names_equal_under_any_case_folding_are_refused() {
    let other = "00000000-0000-0000-0000-000000000001";
    for body in [
        // The bypass: Umbraco binds the first id (`ıd` is unknown to it), the old fold the last.
        format!(r#"{{"parent":{{"id":"{G}","ıd":"{other}"}}}}"#),
        format!(r#"{{"parent":{{"id":"{G}","\u0131d":"{other}"}}}}"#),
        format!(r#"{{"parent":{{"ıd":"{other}","id":"{G}"}}}}"#),
        // Turkish capital I with dot (U+0130) equals `i` under Turkic folding.
        format!(r#"{{"parent":{{"id":"{G}","İd":"{other}"}}}}"#),
        // Exact and ASCII-case duplicates: System.Text.Json's last-wins is not relied on.
        format!(r#"{{"parent":{{"id":"{G}","id":"{other}"}}}}"#),
        format!(r#"{{"parent":{{"id":"{other}"}},"PARENT":{{"Id":"{G}"}}}}"#),
        format!(r#"{{"Parent":{{"ID":"{G}","id":"{other}"}}}}"#),
    ] {
        assert!(ambiguous(&body, "parent.id"), "{body}");
    }
    // Kelvin sign (U+212A) folds to `k`; Deseret capital/small (a surrogate pair in UTF-16) fold
    // together; final and medial sigma fold together. Collisions anywhere in an inspected object
    // are refused, not only on the looked-up name.
    for body in [
        format!(r#"{{"parent":{{"id":"{G}"}},"key":1,"\u212aey":2}}"#),
        format!(r#"{{"parent":{{"id":"{G}","\ud801\udc28":1,"\ud801\udc00":2}}}}"#),
        format!(r#"{{"parent":{{"id":"{G}"}},"σ":1,"ς":2}}"#),
    ] {
        assert!(ambiguous(&body, "parent.id"), "{body}");
    }
    // Cultures are read through the same lookup.
    let json = parse(
        br#"{"cultures":["en-us"],"culture\u017f":["da-dk"]}"#,
        1 << 20,
    )
    .unwrap();
    assert!(matches!(
        cultures(&json, &BodyPath::parse("cultures").unwrap()),
        Err(BodyError::AmbiguousName { .. })
    ));
}

#[test]
fn fullwidth_letters_are_other_names_and_bind_nothing() {
    // U+FF49 U+FF44 (`ｉｄ`) has no case relation to `id`: .NET binds `id`, and so does Portcullis.
    let other = "00000000-0000-0000-0000-000000000001";
    let body = format!(r#"{{"parent":{{"id":"{G}","ｉｄ":"{other}"}}}}"#);
    assert_eq!(nodes(&body, "parent.id", false).unwrap(), vec![key()]);
    let body = format!(r#"{{"parent":{{"ｉｄ":"{G}"}}}}"#);
    assert!(nodes(&body, "parent.id", true).is_err());
}

#[test]
fn lone_surrogate_escapes_in_member_names_are_malformed() {
    assert!(parse(br#"{"parent":{"\ud800d":"x"}}"#, 1 << 20).is_err());
}

#[test]
fn null_or_absent_parent_is_the_root_only_when_allowed() {
    assert_eq!(
        nodes(r#"{"parent":null}"#, "parent.id", true).unwrap(),
        vec![NodeRef::Root]
    );
    assert_eq!(
        nodes(r#"{"name":"x"}"#, "parent.id", true).unwrap(),
        vec![NodeRef::Root]
    );
    assert!(nodes(r#"{"parent":null}"#, "parent.id", false).is_err());
    // A present parent without an id is malformed even when null means root.
    assert!(nodes(r#"{"parent":{}}"#, "parent.id", true).is_err());
    assert!(nodes(r#"{"parent":{"id":null}}"#, "parent.id", true).is_err());
}

#[test]
fn unparsable_node_ids_are_errors_never_skipped() {
    assert!(nodes(r#"{"parent":{"id":"nope"}}"#, "parent.id", true).is_err());
    assert!(nodes(r#"{"parent":{"id":42}}"#, "parent.id", true).is_err());
    assert!(nodes(r#"{"parent":"x"}"#, "parent.id", true).is_err());
    assert!(parse(b"{\"a\":", 100).is_err());
    assert!(parse(b"", 100).is_err());
    assert!(parse(b"null", 100).is_err());
    assert!(parse(b"[]", 100).is_err());
}

#[test]
fn arrays_yield_every_element() {
    let other = "00000000-0000-0000-0000-000000000001";
    let body = format!(r#"{{"sorting":[{{"id":"{G}","sortOrder":1}},{{"ID":" {{{other}}} "}}]}}"#);
    assert_eq!(
        nodes(&body, "sorting[].id", false).unwrap(),
        vec![key(), NodeRef::Key(Uuid::parse_str(other).unwrap())]
    );
    assert_eq!(
        nodes(r#"{"sorting":[]}"#, "sorting[].id", false).unwrap(),
        vec![]
    );
    assert!(nodes(r#"{"sorting":null}"#, "sorting[].id", false).is_err());
    assert!(nodes(r#"{"sorting":[null]}"#, "sorting[].id", false).is_err());
}

#[test]
fn bodies_over_the_limit_are_too_large() {
    assert!(matches!(
        parse(br#"{"a":1}"#, 3),
        Err(BodyError::TooLarge { limit: 3 })
    ));
}

#[test]
fn cultures_are_read_from_lists_and_object_arrays() {
    let json = parse(
        br#"{"cultures":["en-US","DA-dk"],"publishSchedules":[{"culture":"fr-FR"},{"culture":null}],"Translations":[{"isoCode":"de-DE"}]}"#,
        1 << 20,
    )
    .unwrap();
    let c = |p: &str| cultures(&json, &BodyPath::parse(p).unwrap()).unwrap();
    assert_eq!(c("cultures"), ["da-dk", "en-us"]);
    assert_eq!(c("publishSchedules[].culture"), ["fr-fr"]);
    assert_eq!(c("translations[].isoCode"), ["de-de"]);
    assert!(c("culturesToPublish").is_empty());
    let bad = parse(br#"{"cultures":[1]}"#, 100).unwrap();
    assert!(cultures(&bad, &BodyPath::parse("cultures").unwrap()).is_err());
}

#[test]
fn body_paths_reject_bad_syntax() {
    for bad in ["", "a..b", "a[", "a[]]", "a.", "a b"] {
        assert!(BodyPath::parse(bad).is_none(), "{bad}");
    }
    assert!(BodyPath::parse("userIds[].id").is_some());
}
