//! The admin API's HTTP vocabulary: the request as handlers see it, JSON replies, the one
//! error enum with its status and stable id, body/query parsing that names the bad field, and
//! ETags (`If-Match` → 412 on a stale edit).

use crate::store::StoreError;
use http::{HeaderMap, Response, StatusCode};
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

/// Largest admin request body read.
pub const BODY_LIMIT: usize = 64 * 1024;

/// A reply from the admin listener.
pub type Reply = Response<Vec<u8>>;

/// One admin request, read whole: method, decoded path, query pairs, headers and body.
#[derive(Debug, Default)]
pub struct AdminRequest {
    pub method: http::Method,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    /// The authenticated admin (`None` only on an open probe).
    pub actor: Option<super::Actor>,
}

/// Why an admin request failed. Each variant has one status and one stable `error` id; the
/// JSON body is `{"error": id, "message": …, "field": …}` (`field` when one is at fault).
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// Unreadable JSON, a wrong type, an unknown field, a bad query parameter (400).
    #[error("{message}")]
    BadRequest {
        field: Option<String>,
        message: String,
    },
    /// Well-formed but not acceptable: unknown node, group or user, out-of-range value (422).
    #[error("{message}")]
    Invalid {
        field: Option<String>,
        message: String,
    },
    /// The named resource does not exist (404).
    #[error("{what} not found")]
    NotFound { what: String },
    /// The path matches no endpoint (404).
    #[error("no such endpoint")]
    NoRoute,
    /// The resource exists already, is owned by the Umbraco mirror, or is still in use (409).
    #[error("{message}")]
    Conflict {
        field: Option<String>,
        message: String,
    },
    /// An edit of an override without `If-Match` (428): read it first, then send its ETag.
    #[error(
        "If-Match with the resource's current etag is required; its current etag is {current}"
    )]
    PreconditionRequired { current: String },
    /// `If-Match` named another version than the current one (412).
    #[error("the resource changed since it was read; its current etag is {current}")]
    Stale { current: String },
    /// No valid admin token (401).
    #[error("a valid admin bearer token is required")]
    Unauthenticated,
    /// The path exists with other methods (405).
    #[error("method not allowed; allowed: {}", allow.join(", "))]
    MethodNotAllowed { allow: Vec<&'static str> },
    /// The body is over [`BODY_LIMIT`] (413).
    #[error("request body is larger than {BODY_LIMIT} bytes")]
    TooLarge,
    /// The endpoint needs something this gateway is not configured with (501).
    #[error("{what} is not configured on this gateway")]
    NotConfigured { what: &'static str },
    /// The policy store could not answer; details are logged (503).
    #[error("the policy store is unavailable")]
    Store(#[source] StoreError),
    /// The audit database could not answer in time; details are logged (503).
    #[error("the audit database is unavailable")]
    AuditUnavailable,
}

impl AdminError {
    /// A 400 for `field`.
    pub fn bad(field: &str, message: impl Into<String>) -> AdminError {
        AdminError::BadRequest {
            field: Some(field.to_owned()),
            message: message.into(),
        }
    }
    /// A 422 for `field`.
    pub fn invalid(field: &str, message: impl Into<String>) -> AdminError {
        AdminError::Invalid {
            field: Some(field.to_owned()),
            message: message.into(),
        }
    }
    /// A 409 for `field`.
    pub fn conflict(field: &str, message: impl Into<String>) -> AdminError {
        AdminError::Conflict {
            field: Some(field.to_owned()),
            message: message.into(),
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            AdminError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            AdminError::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            AdminError::NotFound { .. } | AdminError::NoRoute => StatusCode::NOT_FOUND,
            AdminError::Conflict { .. } => StatusCode::CONFLICT,
            AdminError::Stale { .. } => StatusCode::PRECONDITION_FAILED,
            AdminError::PreconditionRequired { .. } => StatusCode::PRECONDITION_REQUIRED,
            AdminError::Unauthenticated => StatusCode::UNAUTHORIZED,
            AdminError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            AdminError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            AdminError::NotConfigured { .. } => StatusCode::NOT_IMPLEMENTED,
            AdminError::Store(_) | AdminError::AuditUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The stable error id of the JSON body.
    pub fn id(&self) -> &'static str {
        match self {
            AdminError::BadRequest { .. } => "invalid_request",
            AdminError::Invalid { .. } => "invalid_field",
            AdminError::NotFound { .. } | AdminError::NoRoute => "not_found",
            AdminError::Conflict { .. } => "conflict",
            AdminError::Stale { .. } => "precondition_failed",
            AdminError::PreconditionRequired { .. } => "precondition_required",
            AdminError::Unauthenticated => "unauthenticated",
            AdminError::MethodNotAllowed { .. } => "method_not_allowed",
            AdminError::TooLarge => "body_too_large",
            AdminError::NotConfigured { .. } => "not_configured",
            AdminError::Store(_) => "store_unavailable",
            AdminError::AuditUnavailable => "audit_unavailable",
        }
    }

    /// The field at fault, when one is.
    pub fn field(&self) -> Option<&str> {
        match self {
            AdminError::BadRequest { field, .. }
            | AdminError::Invalid { field, .. }
            | AdminError::Conflict { field, .. } => field.as_deref(),
            _ => None,
        }
    }

    /// The JSON reply (with `WWW-Authenticate` for 401 and `Allow` for 405).
    pub fn reply(&self) -> Reply {
        if let AdminError::Store(e) = self {
            tracing::error!(error = %crate::config::error_chain(e), "admin request failed in the store");
        }
        let mut body = serde_json::json!({"error": self.id(), "message": self.to_string()});
        if let Some(f) = self.field() {
            body["field"] = f.into();
        }
        let mut reply = json(self.status(), &body);
        let h = reply.headers_mut();
        match self {
            AdminError::Unauthenticated => {
                h.insert(
                    http::header::WWW_AUTHENTICATE,
                    http::HeaderValue::from_static("Bearer realm=\"portcullis-admin\""),
                );
            }
            AdminError::MethodNotAllowed { allow } => {
                if let Ok(v) = http::HeaderValue::from_str(&allow.join(", ")) {
                    h.insert(http::header::ALLOW, v);
                }
            }
            AdminError::Stale { current } | AdminError::PreconditionRequired { current } => {
                set_etag(&mut reply, current)
            }
            _ => {}
        }
        reply
    }
}

impl From<StoreError> for AdminError {
    /// A change the policy file would not accept is a 422; anything else a store failure.
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::InvalidPolicy(problems) => AdminError::Invalid {
                field: None,
                message: format!("the policy would be invalid: {}", problems.join("; ")),
            },
            e => AdminError::Store(e),
        }
    }
}

/// A JSON response with its content length (admin endpoints and the dev demo upstream).
pub fn json(status: StatusCode, v: &serde_json::Value) -> Reply {
    let body = serde_json::to_vec(v).unwrap_or_default();
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .header("content-length", body.len())
        .body(body)
        .unwrap_or_default()
}

/// Adds an `ETag` header.
pub fn set_etag(reply: &mut Reply, etag: &str) {
    if let Ok(v) = http::HeaderValue::from_str(etag) {
        reply.headers_mut().insert(http::header::ETAG, v);
    }
}

/// The strong ETag of a resource's canonical JSON: `"` + 32 hex digits of its SHA-256 + `"`.
pub fn etag_of(v: &impl serde::Serialize) -> String {
    let bytes = serde_json::to_vec(v).unwrap_or_default();
    let digest = Sha256::digest(&bytes);
    format!("\"{}\"", hex::encode(&digest[..16]))
}

/// Checks `If-Match` (strong comparison, RFC 9110 §13.1.1) against the current ETag. No header
/// matches; `*` matches any existing resource.
pub fn check_if_match(headers: &HeaderMap, current: &str) -> Result<(), AdminError> {
    let mut values = headers.get_all(http::header::IF_MATCH).iter().peekable();
    if values.peek().is_none() {
        return Ok(());
    }
    for v in values {
        let Ok(text) = v.to_str() else {
            return Err(AdminError::bad("If-Match", "is not visible ascii"));
        };
        for tag in text.split(',').map(str::trim) {
            if tag == "*" || tag == current {
                return Ok(());
            }
        }
    }
    Err(AdminError::Stale {
        current: current.to_owned(),
    })
}

/// As [`check_if_match`], but a request without `If-Match` is refused (428).
pub fn require_if_match(headers: &HeaderMap, current: &str) -> Result<(), AdminError> {
    if headers.get(http::header::IF_MATCH).is_none() {
        return Err(AdminError::PreconditionRequired {
            current: current.to_owned(),
        });
    }
    check_if_match(headers, current)
}

/// Parses a JSON body into `T`; a failure is a 400 naming the field (`apis[1]`, `expires_at`).
pub fn parse_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, AdminError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        AdminError::BadRequest {
            field: (path != "." && !path.is_empty()).then_some(path),
            message: format!("invalid JSON body: {}", e.inner()),
        }
    })?;
    de.end().map_err(|e| AdminError::BadRequest {
        field: None,
        message: format!("invalid JSON body: {e}"),
    })?;
    Ok(value)
}

impl AdminRequest {
    /// The single value of query parameter `name` (a repeated parameter is a 400).
    pub fn query(&self, name: &str) -> Result<Option<&str>, AdminError> {
        let mut found = self.query.iter().filter(|(k, _)| k == name);
        match (found.next(), found.next()) {
            (None, _) => Ok(None),
            (Some((_, v)), None) => Ok(Some(v.as_str())),
            (Some(_), Some(_)) => Err(AdminError::bad(name, "is given more than once")),
        }
    }

    /// Query parameter `name` parsed as `T`, or a 400 naming it.
    pub fn query_parsed<T: std::str::FromStr>(&self, name: &str) -> Result<Option<T>, AdminError>
    where
        T::Err: std::fmt::Display,
    {
        self.query(name)?
            .map(|v| {
                v.parse()
                    .map_err(|e| AdminError::bad(name, format!("`{v}`: {e}")))
            })
            .transpose()
    }

    /// Refuses query parameters other than `allowed` (a typo is a 400, not a silent no-op).
    pub fn only_query(&self, allowed: &[&str]) -> Result<(), AdminError> {
        match self
            .query
            .iter()
            .find(|(k, _)| !allowed.contains(&k.as_str()))
        {
            Some((k, _)) => Err(AdminError::bad(k, "unknown query parameter")),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        apis: Vec<String>,
        #[serde(default)]
        limit: Option<u32>,
    }

    fn field(e: AdminError) -> Option<String> {
        match e {
            AdminError::BadRequest { field, .. } => field,
            other => panic!("not a 400: {other:?}"),
        }
    }

    #[test]
    fn body_errors_name_the_field_at_fault() {
        let e = parse_body::<Body>(br#"{"name":"a","apis":["x",3]}"#).unwrap_err();
        assert_eq!(field(e).as_deref(), Some("apis[1]"));
        let e = parse_body::<Body>(br#"{"name":"a","apis":[],"limit":-1}"#).unwrap_err();
        assert_eq!(field(e).as_deref(), Some("limit"));
        let e = parse_body::<Body>(br#"{"name":"a","apis":[],"colour":1}"#).unwrap_err();
        assert_eq!(field(e).as_deref(), Some("colour"));
        assert!(parse_body::<Body>(br#"{"name":"a","apis":[]} x"#).is_err());
        assert!(parse_body::<Body>(br#"{"name":"a","apis":[]}"#).is_ok());
    }

    #[test]
    fn if_match_compares_strongly_and_accepts_a_star() {
        let mut h = HeaderMap::new();
        assert!(check_if_match(&h, "\"a\"").is_ok());
        h.insert(http::header::IF_MATCH, "\"b\", \"a\"".parse().unwrap());
        assert!(check_if_match(&h, "\"a\"").is_ok());
        h.insert(http::header::IF_MATCH, "W/\"a\"".parse().unwrap());
        let e = check_if_match(&h, "\"a\"").unwrap_err();
        assert_eq!(e.status(), StatusCode::PRECONDITION_FAILED);
        assert_eq!(e.reply().headers()["etag"], "\"a\"");
        h.insert(http::header::IF_MATCH, "*".parse().unwrap());
        assert!(check_if_match(&h, "\"a\"").is_ok());
        assert!(require_if_match(&h, "\"a\"").is_ok());
        let e = require_if_match(&HeaderMap::new(), "\"a\"").unwrap_err();
        assert_eq!(e.status(), StatusCode::PRECONDITION_REQUIRED);
        assert_eq!(e.reply().headers()["etag"], "\"a\"");
    }

    #[test]
    fn etags_differ_exactly_when_the_resource_does() {
        let a = etag_of(&serde_json::json!({"x": 1}));
        assert_eq!(a, etag_of(&serde_json::json!({"x": 1})));
        assert_ne!(a, etag_of(&serde_json::json!({"x": 2})));
        assert_eq!(a.len(), 34);
    }

    #[test]
    fn error_replies_carry_status_id_field_and_headers() {
        let r = AdminError::invalid("rate_limit_rps", "must be at least 1").reply();
        assert_eq!(r.status(), 422);
        let v: serde_json::Value = serde_json::from_slice(r.body()).unwrap();
        assert_eq!(v["error"], "invalid_field");
        assert_eq!(v["field"], "rate_limit_rps");
        let r = AdminError::Unauthenticated.reply();
        assert_eq!(
            r.headers()["www-authenticate"],
            "Bearer realm=\"portcullis-admin\""
        );
        let r = AdminError::MethodNotAllowed {
            allow: vec!["GET", "POST"],
        }
        .reply();
        assert_eq!(r.headers()["allow"], "GET, POST");
    }

    #[test]
    fn repeated_or_unknown_query_parameters_are_refused() {
        let req = AdminRequest {
            query: vec![("limit".into(), "5".into()), ("limit".into(), "6".into())],
            ..AdminRequest::default()
        };
        assert!(req.query("limit").is_err());
        assert!(req.only_query(&["limit"]).is_ok());
        assert!(req.only_query(&["cursor"]).is_err());
        let req = AdminRequest {
            query: vec![("limit".into(), "x".into())],
            ..AdminRequest::default()
        };
        assert!(req.query_parsed::<u32>("limit").is_err());
    }
}
