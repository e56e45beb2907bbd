//! The end of a request in pingora: the gateway's answer when proxying failed, and the
//! metrics, access-log line and audit event every request leaves.

use super::respond::{self, UpstreamFailure};
use super::{api_label, headers, write_reply, Gateway, RequestCtx};
use crate::audit::AuditEvent;
use crate::authz::{Decision, DenyReason};
use pingora::prelude::Session;
use pingora::{Error, ErrorSource, ErrorType};
use pingora_proxy::FailToProxy;

impl Gateway {
    /// The response for a request pingora could not proxy (`fail_to_proxy`): the body-limit
    /// deny, an upstream failure (counted by kind), or an internal error.
    pub(super) async fn answer_failure(
        &self,
        session: &mut Session,
        e: &Error,
        ctx: &mut RequestCtx,
    ) -> FailToProxy {
        if ctx.request_id.is_empty() {
            ctx.request_id = headers::request_id(&session.req_header().headers);
        }
        let over_limit = ctx.decision() == Some(&Decision::Deny(DenyReason::BodyTooLarge));
        let reply = match ctx.upstream_failure.or_else(|| classify_failure(e)) {
            _ if over_limit => respond::deny(DenyReason::BodyTooLarge, &ctx.request_id),
            Some(kind) => {
                ctx.upstream_failure = Some(kind);
                let label = match kind {
                    UpstreamFailure::Timeout => "timeout",
                    UpstreamFailure::Unavailable => "unavailable",
                    UpstreamFailure::Credential => "credential",
                };
                self.shared
                    .metrics
                    .upstream_errors
                    .with_label_values(&[label])
                    .inc();
                respond::upstream_failure(kind, &ctx.request_id)
            }
            None => {
                let code = match e.etype() {
                    ErrorType::HTTPStatus(c) => *c,
                    _ if *e.esource() == ErrorSource::Downstream => 400,
                    _ => 500,
                };
                let status = http::StatusCode::from_u16(code)
                    .unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
                respond::internal(status, &ctx.request_id)
            }
        };
        let code = reply.status.as_u16();
        // A response may already be on the wire (failure mid-stream): then only log. A
        // `100 Continue` alone does not count.
        if session
            .response_written()
            .is_none_or(|r| r.status.is_informational())
        {
            if let Err(err) = write_reply(session, &reply, &ctx.request_id).await {
                tracing::debug!(request.id = %ctx.request_id, error = %err, "cannot write error response");
            }
        }
        FailToProxy {
            error_code: code,
            can_reuse_downstream: false,
        }
    }

    /// Counts the request, writes its access-log line and records its audit event (`logging`).
    pub(super) fn log_and_audit(&self, session: &Session, e: Option<&Error>, ctx: &mut RequestCtx) {
        let status = session.response_written().map_or(0, |r| r.status.as_u16());
        let (decision, reason) = match ctx.decision() {
            Some(d) => (d.as_str(), d.reason_str()),
            None => ("none", ""),
        };
        let api = api_label(ctx.api);
        let elapsed = ctx.started.elapsed();
        let m = &self.shared.metrics;
        let per_api = m.api(ctx.api);
        if status == 200 && decision == "allow" {
            per_api.allowed_ok.inc();
        } else {
            let code = http::StatusCode::from_u16(status).ok();
            let code = code.as_ref().map_or("0", http::StatusCode::as_str);
            m.requests
                .with_label_values(&[api, decision, reason, code])
                .inc();
        }
        per_api.request_duration.observe(elapsed.as_secs_f64());
        {
            let req = session.req_header();
            tracing::event!(
                target: "access",
                tracing::Level::INFO,
                request.id = %ctx.request_id,
                http.method = %req.method,
                http.path = %req.uri.path(),
                http.status = status,
                route.id = %ctx.route,
                decision = decision,
                deny.reason = reason,
                upstream.ms = ctx.upstream_elapsed.map(|d| d.as_secs_f64() * 1000.0),
                upstream.failure = ctx.upstream_failure.map(UpstreamFailure::as_str),
                trace.id = ctx.traceparent.as_deref().map(headers::trace_id),
                principal.id = ctx.verdict.as_ref().and_then(|v| v.principal.as_ref()).map(|p| &*p.id),
                upstream.identity = self.upstream_identity(ctx),
                duration.ms = elapsed.as_secs_f64() * 1000.0,
                error = e.map(|e| e.etype().as_str()),
                "request"
            );
        }
        // Last: the event takes the request's meta, verdict and id (their strings move into it).
        if let (Some(meta), Some(v)) = (ctx.meta.take(), ctx.verdict.take()) {
            // Sampling is decided before the event is built: a sampled-out allow costs nothing.
            let deny = matches!(v.decision, Decision::Deny(_));
            if self.shared.auditor.keeps(meta.event_id, deny) {
                let upstream_status = session.response_written().map(|r| r.status.as_u16());
                let identity = self.upstream_identity(ctx);
                let id = std::mem::take(&mut ctx.request_id);
                let v = *v;
                let event =
                    AuditEvent::decided(id, meta, v.target, v.principal, v.groups, v.decision)
                        .with_upstream(upstream_status, ctx.upstream_elapsed)
                        .with_upstream_identity(identity);
                self.shared.auditor.record(event);
            }
        }
    }
}

fn classify_failure(e: &Error) -> Option<UpstreamFailure> {
    use ErrorType::*;
    if *e.esource() != ErrorSource::Upstream {
        return None;
    }
    Some(match e.etype() {
        ConnectTimedout | ReadTimedout | WriteTimedout | TLSHandshakeTimedout => {
            UpstreamFailure::Timeout
        }
        _ => UpstreamFailure::Unavailable,
    })
}
