//! Classification of one-route tables: encoded slashes and `decode_path` parameters, file
//! paths followed by a rename, and GUIDs kept escaped in the path.

use super::tests::{classify, key, ready, G, M};
use super::*;

/// A one-route Management table from `route` (the keys after `[[route]]`).
fn one_route(route: &str) -> Classifier {
    let text =
        format!("api = \"management\"\nprefix = \"/umbraco/management/api\"\n[[route]]\n{route}");
    let file = (
        std::path::PathBuf::from("t.toml"),
        toml::from_str(&text).unwrap(),
    );
    let table = RouteTable::build(&[file], &[]).unwrap();
    Classifier::from_table(table, &RoutesConfig::default())
}

#[test]
fn encoded_slashes_are_accepted_only_in_decode_path_parameters_without_dot_segments() {
    let route = "id = \"stylesheet.by-path\"\nmethod = \"GET\"\npath = \"/umbraco/management/api/v1/stylesheet/{*path}\"\nsections = [\"settings\"]\n";
    let c = one_route(&format!("{route}decode_path = [\"path\"]\n"));
    let h = HeaderMap::new();
    let (t, uri) = ready(c.classify_target("GET", &format!("{M}/stylesheet/css%2Fsite.css"), &h));
    assert_eq!(&*t.route, "stylesheet.by-path");
    assert_eq!(uri, format!("{M}/stylesheet/css%2Fsite.css"));
    for bad in ["..%2Fweb.config", "css%2F..%2F..%2Fx", "css%2F%2Fx"] {
        assert_eq!(
            c.classify_target("GET", &format!("{M}/stylesheet/{bad}"), &h),
            Classified::Reject(DenyReason::Malformed),
            "{bad}"
        );
    }
    // The same catch-all without `decode_path`: Umbraco would not decode it, so `%2F` is refused.
    let plain = one_route(route);
    assert_eq!(
        plain.classify_target("GET", &format!("{M}/stylesheet/css%2Fsite.css"), &h),
        Classified::Reject(DenyReason::Malformed)
    );
}

#[test]
fn a_file_path_followed_by_rename_needs_settings_in_either_spelling() {
    // Umbraco's `[HttpPut("{path}/rename")]`: one segment, `/` sent as `%2F` and decoded by
    // `DecodePath`. With real slashes ASP.NET routes the request to `{*path}` (update), since a
    // catch-all must be last (aspnetcore RoutePatternParser `IsAllValid`): settings either way.
    for kind in ["partial-view", "script", "stylesheet"] {
        let (t, uri) = ready(classify(
            "PUT",
            &format!("{M}/{kind}/folder%2Fa%2Fsite.x/rename"),
        ));
        assert_eq!(&*t.route, format!("{kind}.rename"));
        assert_eq!(
            t.sections,
            SectionPolicy::AnyOf(vec!["settings".into()].into())
        );
        assert_eq!(uri, format!("{M}/{kind}/folder%2Fa%2Fsite.x/rename"));
        let (t, _) = ready(classify(
            "PUT",
            &format!("{M}/{kind}/folder/a/site.x/rename"),
        ));
        assert_eq!(&*t.route, format!("{kind}.update"));
        assert_eq!(
            t.sections,
            SectionPolicy::AnyOf(vec!["settings".into()].into())
        );
        for bad in [
            "..%2Fsite.x",
            "a%2F..%2F..%2Fsite.x",
            "a%2F%2Fsite.x",
            "a%2F.%2Fb",
        ] {
            assert_eq!(
                classify("PUT", &format!("{M}/{kind}/{bad}/rename")),
                Classified::Reject(DenyReason::Malformed),
                "{kind} {bad}"
            );
        }
    }
}

#[test]
fn decode_path_must_name_a_non_guid_parameter() {
    let text = "api = \"management\"\nprefix = \"/umbraco/management/api\"\n[[route]]\nid = \"a\"\nmethod = \"GET\"\npath = \"/umbraco/management/api/v1/a/{id:guid}\"\nsections = [\"settings\"]\ndecode_path = [\"id\", \"nope\"]\n";
    let file = (
        std::path::PathBuf::from("t.toml"),
        toml::from_str(text).unwrap(),
    );
    let Err(RouteError::Invalid(problems)) = RouteTable::build(&[file], &[]) else {
        panic!("accepted");
    };
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(problems[0].contains("guid parameter"), "{problems:?}");
    assert!(problems[1].contains("names no parameter"), "{problems:?}");
}

#[test]
fn a_guid_kept_escaped_in_the_path_is_the_node_it_decodes_to() {
    // `{` and `}` are not unreserved, so canonicalisation keeps them escaped; ASP.NET's `guid`
    // constraint and `Guid.TryParse` read the decoded `{…}` (B format) as the GUID.
    let (t, uri) = ready(classify("GET", &format!("{M}/document/%7B{G}%7D")));
    assert_eq!(t.checks[0].nodes, vec![key(G)]);
    assert!(uri.ends_with(&format!("/document/%7B{G}%7D")), "{uri}");
    // Escaped but not a GUID once decoded: no `{id:guid}` route matches it.
    assert_eq!(
        classify("GET", &format!("{M}/document/%7B{G}x%7D")),
        Classified::Reject(DenyReason::NoRoute)
    );
}
