//! The admin route table as data: every (method, path template) the admin listener serves and
//! the endpoint it reaches. The dispatcher matches against it, and a test checks the committed
//! OpenAPI document against it, so the two cannot drift apart.

use super::http::AdminError;
use super::overrides::{Op, Resource};

/// What an admin request reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Healthz,
    Readyz,
    Metrics,
    Explain,
    OpenApi,
    Audit,
    KeyList,
    KeyCreate,
    KeyGet,
    KeyUpdate,
    KeyRevoke,
    KeyRotate,
    UmbracoWebhook,
    /// `/v1/overrides/…` (`overrides.rs`).
    Override(Resource, Op),
}

/// One route: method, path template (`{name}` captures one percent-decoded segment), endpoint.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
    pub endpoint: Endpoint,
}

const fn route(method: &'static str, path: &'static str, endpoint: Endpoint) -> Route {
    Route {
        method,
        path,
        endpoint,
    }
}

/// Every admin route.
pub const ROUTES: &[Route] = &[
    route("GET", "/healthz", Endpoint::Healthz),
    route("GET", "/readyz", Endpoint::Readyz),
    route("GET", "/metrics", Endpoint::Metrics),
    route("POST", "/v1/explain", Endpoint::Explain),
    route("GET", "/v1/openapi.json", Endpoint::OpenApi),
    route("GET", "/v1/audit", Endpoint::Audit),
    route("GET", "/v1/keys", Endpoint::KeyList),
    route("POST", "/v1/keys", Endpoint::KeyCreate),
    route("GET", "/v1/keys/{key_id}", Endpoint::KeyGet),
    route("PATCH", "/v1/keys/{key_id}", Endpoint::KeyUpdate),
    route("POST", "/v1/keys/{key_id}/revoke", Endpoint::KeyRevoke),
    route("POST", "/v1/keys/{key_id}/rotate", Endpoint::KeyRotate),
    route("POST", "/v1/webhooks/umbraco", Endpoint::UmbracoWebhook),
    route("GET", GROUPS, ov(Resource::Groups, Op::List)),
    route("POST", GROUPS, ov(Resource::Groups, Op::Create)),
    route("GET", GROUP, ov(Resource::Groups, Op::Get)),
    route("PUT", GROUP, ov(Resource::Groups, Op::Replace)),
    route("DELETE", GROUP, ov(Resource::Groups, Op::Delete)),
    route("GET", MAPPINGS, ov(Resource::GroupMappings, Op::List)),
    route("POST", MAPPINGS, ov(Resource::GroupMappings, Op::Create)),
    route("GET", MAPPING, ov(Resource::GroupMappings, Op::Get)),
    route("PUT", MAPPING, ov(Resource::GroupMappings, Op::Replace)),
    route("DELETE", MAPPING, ov(Resource::GroupMappings, Op::Delete)),
    route("GET", USERS, ov(Resource::Users, Op::List)),
    route("POST", USERS, ov(Resource::Users, Op::Create)),
    route("GET", USER, ov(Resource::Users, Op::Get)),
    route("PUT", USER, ov(Resource::Users, Op::Replace)),
    route("DELETE", USER, ov(Resource::Users, Op::Delete)),
];

const GROUPS: &str = "/v1/overrides/groups";
const GROUP: &str = "/v1/overrides/groups/{alias}";
const MAPPINGS: &str = "/v1/overrides/group-mappings";
const MAPPING: &str = "/v1/overrides/group-mappings/{issuer}/{idp_group}";
const USERS: &str = "/v1/overrides/users";
const USER: &str = "/v1/overrides/users/{external_id}";

const fn ov(resource: Resource, op: Op) -> Endpoint {
    Endpoint::Override(resource, op)
}

/// The OpenAPI 3.1 document of these routes (committed as `docs/admin-openapi.json`).
pub const OPENAPI: &str = include_str!("../../docs/admin-openapi.json");

/// A matched route with its captured path parameters, in template order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matched {
    pub endpoint: Endpoint,
    pub params: Vec<String>,
}

/// Captures of `template` in `path`, or `None` when it does not match.
fn captures(template: &str, path: &str) -> Option<Vec<String>> {
    let mut t = template.split('/');
    let mut p = path.split('/');
    let mut out = Vec::new();
    loop {
        match (t.next(), p.next()) {
            (None, None) => return Some(out),
            (Some(ts), Some(ps)) if ts.starts_with('{') => {
                let value = percent_encoding::percent_decode_str(ps)
                    .decode_utf8()
                    .ok()?
                    .into_owned();
                if value.is_empty() {
                    return None;
                }
                out.push(value);
            }
            (Some(ts), Some(ps)) if ts == ps => {}
            _ => return None,
        }
    }
}

/// The route for `method` and `path` (HEAD is served as GET). 404 when no template matches,
/// 405 with the allowed methods when only the method differs.
pub fn find(method: &str, path: &str) -> Result<Matched, AdminError> {
    let method = if method == "HEAD" { "GET" } else { method };
    let mut allow = Vec::new();
    for r in ROUTES {
        if let Some(params) = captures(r.path, path) {
            if r.method == method {
                return Ok(Matched {
                    endpoint: r.endpoint,
                    params,
                });
            }
            allow.push(r.method);
        }
    }
    if allow.is_empty() {
        Err(AdminError::NoRoute)
    } else {
        Err(AdminError::MethodNotAllowed { allow })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn templates_capture_decoded_segments() {
        assert_eq!(
            captures("/v1/x/{a}/{b}", "/v1/x/auth0%7C1/CN%3DA%2FB"),
            Some(vec!["auth0|1".to_owned(), "CN=A/B".to_owned()])
        );
        assert_eq!(captures("/v1/x/{a}", "/v1/x/"), None);
        assert_eq!(captures("/v1/x/{a}", "/v1/x/a/b"), None);
        assert_eq!(captures("/v1/x/{a}", "/v1/x/%FF"), None);
    }

    #[test]
    fn a_known_path_with_another_method_is_405_and_an_unknown_path_404() {
        assert_eq!(
            find("POST", "/v1/explain").unwrap().endpoint,
            Endpoint::Explain
        );
        assert_eq!(
            find("HEAD", "/healthz").unwrap().endpoint,
            Endpoint::Healthz
        );
        match find("GET", "/v1/explain") {
            Err(AdminError::MethodNotAllowed { allow }) => assert_eq!(allow, ["POST"]),
            other => panic!("{other:?}"),
        }
        assert!(matches!(find("GET", "/v1/nope"), Err(AdminError::NoRoute)));
    }

    #[test]
    fn the_openapi_document_describes_exactly_the_routes() {
        let doc: serde_json::Value = serde_json::from_str(OPENAPI).unwrap();
        assert_eq!(doc["openapi"], "3.1.0");
        let mut documented = std::collections::BTreeSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for method in item.as_object().unwrap().keys() {
                if method != "parameters" {
                    documented.insert((method.to_ascii_uppercase(), path.clone()));
                }
            }
        }
        let served: std::collections::BTreeSet<(String, String)> = ROUTES
            .iter()
            .map(|r| (r.method.to_owned(), r.path.to_owned()))
            .collect();
        assert_eq!(documented, served);
    }

    #[test]
    fn every_route_is_unique() {
        let mut seen = std::collections::HashSet::new();
        for r in ROUTES {
            assert!(seen.insert((r.method, r.path)), "{r:?} twice");
        }
    }
}
