//! The one place where a deny reason or an upstream failure becomes an HTTP status, headers and
//! a small JSON body. Internal error text never reaches the client.

use crate::authz::DenyReason;
use bytes::Bytes;
use http::StatusCode;
use pingora::http::ResponseHeader;
use serde::Serialize;

/// HTTP status for a deny reason.
pub fn status(reason: DenyReason) -> StatusCode {
    use DenyReason::*;
    match reason {
        Malformed | AmbiguousCredentials | ApiKeyInQuery | TokenInQuery | BadFraming | BadHost => {
            StatusCode::BAD_REQUEST
        }
        UnsupportedTransferCoding => StatusCode::NOT_IMPLEMENTED,
        MisdirectedRequest => StatusCode::MISDIRECTED_REQUEST,
        HeadTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        UriTooLong => StatusCode::URI_TOO_LONG,
        BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        RequestTimeout => StatusCode::REQUEST_TIMEOUT,
        NoRoute => StatusCode::NOT_FOUND,
        Unauthenticated | InvalidToken(_) | MemberRequired => StatusCode::UNAUTHORIZED,
        UserDisabled | UnknownPrincipal | ApiNotAllowed | NoSection | AdminRequired
        | OutsideStartNodes | MissingVerb | CultureNotAllowed | UnknownNode | OutsideKeyScope
        | PreviewNotAllowed | ExpandNotAllowed | MemberNotAllowed | UserGroupNotMember => {
            StatusCode::FORBIDDEN
        }
        RateLimited => StatusCode::TOO_MANY_REQUESTS,
        StoreUnavailable | KeysUnavailable => StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// `WWW-Authenticate` value for 401s (RFC 6750 §3).
pub fn www_authenticate(reason: DenyReason) -> Option<String> {
    match reason {
        DenyReason::Unauthenticated | DenyReason::MemberRequired => {
            Some(r#"Bearer realm="portcullis""#.to_owned())
        }
        DenyReason::InvalidToken(p) => Some(format!(
            r#"Bearer realm="portcullis", error="invalid_token", error_description="{}""#,
            p.as_str()
        )),
        _ => None,
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'a str>,
    request_id: &'a str,
}

/// A response the gateway writes itself: status, extra headers and the JSON body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: Vec<(&'static str, String)>,
    pub body: Bytes,
}

impl Reply {
    /// The response head: the status, `content-type`, `content-length`, `x-request-id`,
    /// `cache-control: no-store` and the reply's own headers. Built through its `http` parts,
    /// as `headers::add_response_ids` does for the upstream's responses: pingora's
    /// `insert_header` parses and copies every name into a header-case map (~2.4 k instructions
    /// a header, measured), which a deny under attack would pay five times. Without that map
    /// pingora writes a standard name in title case (`Content-Type`), any other in lower case.
    pub fn head(&self, request_id: &str) -> pingora::Result<ResponseHeader> {
        use http::header::{HeaderName, HeaderValue, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE};
        fn invalid<E>(_: E) -> pingora::BError {
            pingora::Error::explain(pingora::ErrorType::InternalError, "reply header invalid")
        }
        let mut parts = http::Response::new(()).into_parts().0;
        parts.status = self.status;
        let h = &mut parts.headers;
        h.reserve(4 + self.headers.len());
        h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        h.insert(CONTENT_LENGTH, HeaderValue::from(self.body.len()));
        let id = HeaderValue::from_str(request_id).map_err(invalid)?;
        h.insert(super::headers::REQUEST_ID_NAME.clone(), id);
        h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        for (name, value) in &self.headers {
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(invalid)?;
            h.insert(name, HeaderValue::from_str(value).map_err(invalid)?);
        }
        Ok(ResponseHeader::from(parts))
    }
}

/// The response for a denied request.
pub fn deny(reason: DenyReason, request_id: &str) -> Reply {
    let message = match reason {
        DenyReason::ApiKeyInQuery => {
            Some("api keys are never accepted in the query string; send the Api-Key header")
        }
        DenyReason::TokenInQuery => Some(
            "access tokens are never accepted in the query string; send the Authorization header",
        ),
        _ => None,
    };
    let body = ErrorBody {
        error: reason.as_str(),
        reason: reason.detail(),
        message,
        request_id,
    };
    let mut headers = Vec::new();
    if let Some(v) = www_authenticate(reason) {
        headers.push(("www-authenticate", v));
    }
    if reason == DenyReason::RateLimited {
        // Limits are per second with a one-second burst: the next request fits within 1 s.
        headers.push(("retry-after", "1".to_owned()));
    }
    Reply {
        status: status(reason),
        headers,
        body: json(&body),
    }
}

/// Why the upstream could not answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamFailure {
    /// Refused, unreachable, reset: 502.
    Unavailable,
    /// Connect, read or write timed out: 504.
    Timeout,
    /// The API user's token for Umbraco cannot be obtained: 503.
    Credential,
}

impl UpstreamFailure {
    pub fn as_str(self) -> &'static str {
        match self {
            UpstreamFailure::Unavailable => "upstream_unavailable",
            UpstreamFailure::Timeout => "upstream_timeout",
            UpstreamFailure::Credential => "upstream_credential_unavailable",
        }
    }
}

/// The response when the upstream fails.
pub fn upstream_failure(kind: UpstreamFailure, request_id: &str) -> Reply {
    let status = match kind {
        UpstreamFailure::Unavailable => StatusCode::BAD_GATEWAY,
        UpstreamFailure::Timeout => StatusCode::GATEWAY_TIMEOUT,
        UpstreamFailure::Credential => StatusCode::SERVICE_UNAVAILABLE,
    };
    plain(status, kind.as_str(), request_id)
}

/// The response for a request the gateway itself could not handle (never carries details).
pub fn internal(status: StatusCode, request_id: &str) -> Reply {
    let error = if status.is_client_error() {
        "bad_request"
    } else {
        "internal_error"
    };
    plain(status, error, request_id)
}

/// A reply with only an error id and the request id.
fn plain(status: StatusCode, error: &str, request_id: &str) -> Reply {
    let body = ErrorBody {
        error,
        reason: None,
        message: None,
        request_id,
    };
    Reply {
        status,
        headers: Vec::new(),
        body: json(&body),
    }
}

fn json<T: Serialize>(v: &T) -> Bytes {
    Bytes::from(serde_json::to_vec(v).unwrap_or_else(|_| b"{}".to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authz::TokenProblem;

    #[test]
    fn an_expired_token_is_a_401_with_invalid_token_and_the_reason() {
        let r = deny(DenyReason::InvalidToken(TokenProblem::Expired), "req-1");
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        let v: serde_json::Value = serde_json::from_slice(&r.body).expect("json");
        assert_eq!(v["error"], "invalid_token");
        assert_eq!(v["reason"], "expired");
        assert_eq!(v["request_id"], "req-1");
        assert!(r.headers[0].1.contains(r#"error="invalid_token""#));
    }

    #[test]
    fn a_missing_credential_asks_for_a_bearer_token() {
        let r = deny(DenyReason::Unauthenticated, "x");
        assert_eq!(
            r.headers,
            vec![(
                "www-authenticate",
                r#"Bearer realm="portcullis""#.to_owned()
            )]
        );
    }

    #[test]
    fn a_reply_head_carries_the_status_the_gateway_headers_and_its_own() {
        let r = deny(DenyReason::Unauthenticated, "req-9");
        let head = r.head("req-9").expect("head");
        assert_eq!(head.status, StatusCode::UNAUTHORIZED);
        let mut wire = Vec::new();
        head.header_to_h1_wire(&mut wire);
        let wire = String::from_utf8(wire).expect("utf-8");
        let want = format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n\
             x-request-id: req-9\r\nCache-Control: no-store\r\n\
             www-authenticate: Bearer realm=\"portcullis\"\r\n",
            r.body.len()
        );
        assert_eq!(wire, want);
        // A request id that cannot be a header value is an error, never a panic.
        assert!(r.head("bad\nid").is_err());
    }

    #[test]
    fn each_deny_class_has_its_status() {
        assert_eq!(status(DenyReason::Malformed), 400);
        assert_eq!(status(DenyReason::NoRoute), 404);
        assert_eq!(status(DenyReason::MissingVerb), 403);
        assert_eq!(status(DenyReason::StoreUnavailable), 503);
        assert_eq!(status(DenyReason::BodyTooLarge), 413);
    }

    #[test]
    fn upstream_timeouts_are_504_and_failures_502() {
        assert_eq!(upstream_failure(UpstreamFailure::Timeout, "r").status, 504);
        assert_eq!(
            upstream_failure(UpstreamFailure::Unavailable, "r").status,
            502
        );
    }
}
