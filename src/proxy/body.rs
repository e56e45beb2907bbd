//! Reading and inspecting a request body whose route decides on it (`Progress::ReadBody`).

use crate::app::Runtime;
use crate::authn::Principal;
use crate::authz::DenyReason;
use crate::gate::Verdict;
use crate::request::PendingBody;
use bytes::Bytes;
use pingora::http::RequestHeader;
use pingora::prelude::Session;
use pingora::Result;
use std::sync::Arc;

/// pingora forwards an already-read body only from its retry buffer, which holds 64 KiB: an
/// inspected body larger than that could not be forwarded byte for byte, so it is refused.
const FORWARDABLE_BODY: usize = 64 * 1024;

/// Reads and inspects the body of a request whose head already passed authentication and every
/// check the head can answer. A declared length over the limit is refused before reading;
/// `Expect: 100-continue` is answered only now; the whole body must arrive within
/// `listen.body_timeout` (else 408 and the connection closes).
pub(super) async fn inspect_body(
    session: &mut Session,
    runtime: &Runtime,
    pending: &PendingBody,
    principal: Arc<Principal>,
    limit: usize,
) -> Result<Verdict> {
    let limit = limit.min(FORWARDABLE_BODY);
    let refuse = |reason, principal| Verdict {
        principal: Some(principal),
        ..Verdict::for_pending(pending, reason)
    };
    let declared = session
        .req_header()
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Ok(refuse(DenyReason::BodyTooLarge, principal));
    }
    if expects_continue(session.req_header()) {
        session.write_continue_response().await?;
    }
    let deadline = runtime.config.file.listen.body_timeout;
    let body = match tokio::time::timeout(deadline, read_body(session, limit)).await {
        Ok(read) => read?,
        Err(_) => Err(DenyReason::RequestTimeout),
    };
    Ok(match body {
        Ok(body) => {
            runtime
                .gate
                .decide_with_body(pending, principal, &body)
                .await
        }
        Err(reason) => refuse(reason, principal),
    })
}

/// `Expect: 100-continue` on an HTTP/1.1 request (RFC 9110 §10.1.1).
fn expects_continue(req: &RequestHeader) -> bool {
    req.version == http::Version::HTTP_11
        && req
            .headers
            .get(http::header::EXPECT)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"))
}

/// Reads the whole request body for inspection (`Ok(Err(BodyTooLarge))` past the limit). The
/// bytes stay in pingora's retry buffer, which is what gets forwarded after an allow — so the
/// upstream receives exactly the inspected bytes, and nothing at all after a deny.
async fn read_body(
    session: &mut Session,
    limit: usize,
) -> Result<std::result::Result<Bytes, DenyReason>> {
    session.as_downstream_mut().enable_retry_buffering();
    let mut body = bytes::BytesMut::new();
    while let Some(chunk) = session.read_request_body().await? {
        if body.len() + chunk.len() > limit {
            // The rest of the body stays unread: never reuse this connection.
            session.set_keepalive(None);
            return Ok(Err(DenyReason::BodyTooLarge));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Ok(body.freeze()))
}
