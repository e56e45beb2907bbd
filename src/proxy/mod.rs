//! The pingora glue: `Gateway` implements `ProxyHttp`. Only this module knows pingora phases;
//! decisions come from `gate`, responses from `respond`, header rules from `headers`.

pub mod edge;
mod edge_head;
pub mod headers;
pub mod respond;

use crate::app::{Runtime, Shared};
use crate::audit::{AuditEvent, RequestMeta};
use crate::authn::{Principal, PrincipalKind, Subject};
use crate::authz::{Decision, DenyReason};
use crate::gate::{Step, Verdict};
use crate::request::{Api, PendingBody};
use async_trait::async_trait;
use bytes::Bytes;
use headers::UpstreamCredential;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::prelude::{HttpPeer, ProxyHttp, Session};
use pingora::{Error, ErrorSource, ErrorType, Result};
use pingora_proxy::FailToProxy;
use respond::{Reply, UpstreamFailure};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::Instrument;

/// The proxy service: one per process, shared by all requests.
pub struct Gateway {
    shared: Arc<Shared>,
}

impl Gateway {
    pub fn new(shared: Arc<Shared>) -> Gateway {
        Gateway { shared }
    }
}

/// Per-request state carried across pingora phases.
pub struct RequestCtx {
    /// The config snapshot this request started with (reloads never change it mid-flight).
    runtime: Arc<Runtime>,
    started: Instant,
    request_id: String,
    api: Option<Api>,
    route: Arc<str>,
    decision: Option<Decision>,
    verdict: Option<Box<Verdict>>,
    meta: Option<RequestMeta>,
    /// W3C trace id sent upstream (`traceparent`).
    trace_id: Option<String>,
    /// The request's tracing span (`request.id`, `http.method`).
    span: tracing::Span,
    upstream_started: Option<Instant>,
    upstream_elapsed: Option<Duration>,
    upstream_failure: Option<UpstreamFailure>,
    /// The body was read for inspection (and is forwarded from pingora's retry buffer).
    body_inspected: bool,
    /// The API user's token sent upstream, when `[upstream.credential]` replaced the caller's.
    upstream_token: Option<Arc<crate::umbraco::UpstreamToken>>,
    _in_flight: InFlight,
}

/// Counts a request as in flight until its context is dropped (drain on SIGTERM waits on it).
struct InFlight(Arc<Shared>);

impl InFlight {
    fn new(shared: &Arc<Shared>) -> InFlight {
        shared
            .health
            .in_flight
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        shared.metrics.in_flight.inc();
        InFlight(shared.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0
            .health
            .in_flight
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        self.0.metrics.in_flight.dec();
    }
}

/// Response (and upstream request) header carrying the audit event id.
const DECISION_ID: &str = "x-portcullis-decision-id";

/// pingora forwards an already-read body only from its retry buffer, which holds 64 KiB: an
/// inspected body larger than that could not be forwarded byte for byte, so it is refused.
const FORWARDABLE_BODY: usize = 64 * 1024;

/// Reads and inspects the body of a request whose head already passed authentication and every
/// check the head can answer. A declared length over the limit is refused before reading;
/// `Expect: 100-continue` is answered only now; the whole body must arrive within
/// `listen.body_timeout` (else 408 and the connection closes).
async fn inspect_body(
    session: &mut Session,
    runtime: &Runtime,
    pending: &PendingBody,
    principal: Principal,
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

fn api_label(api: Option<Api>) -> &'static str {
    api.map_or("other", Api::as_str)
}

/// Writes a gateway-made response (deny or error) with the request id.
async fn write_reply(session: &mut Session, reply: &Reply, request_id: &str) -> Result<()> {
    let mut resp = ResponseHeader::build(reply.status, Some(4))?;
    resp.insert_header("content-type", "application/json")?;
    resp.insert_header("content-length", reply.body.len().to_string())?;
    resp.insert_header(headers::REQUEST_ID, request_id)?;
    resp.insert_header("cache-control", "no-store")?;
    for (name, value) in &reply.headers {
        resp.insert_header(*name, value.as_str())?;
    }
    session.write_response_header(Box::new(resp), false).await?;
    session
        .write_response_body(Some(Bytes::clone(&reply.body)), true)
        .await
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

/// Replaces client credentials the upstream must not see and adds the identity headers.
/// Bearer tokens stay (Umbraco acts on its own tokens); Portcullis API keys never leave the
/// gateway — for Delivery requests made with one, Umbraco's single real key is injected.
fn identity_headers(
    upstream: &mut RequestHeader,
    v: &Verdict,
    meta: Option<&RequestMeta>,
) -> Result<()> {
    let Some(p) = &v.principal else { return Ok(()) };
    if let PrincipalKind::ApiKey { .. } = p.kind {
        upstream.remove_header("api-key");
        upstream.remove_header(&http::header::AUTHORIZATION);
        if v.api == Some(Api::Delivery) {
            if let Some(real) = crate::proxy::delivery_api_key() {
                upstream.insert_header("api-key", real)?;
            }
        }
    }
    upstream.insert_header("x-portcullis-principal", p.id.as_str())?;
    upstream.insert_header("x-portcullis-principal-kind", p.kind.as_str())?;
    if !v.groups.is_empty() {
        upstream.insert_header("x-portcullis-groups", v.groups.join(","))?;
    }
    if let Subject::Member { username, .. } = &p.subject {
        upstream.insert_header("x-portcullis-member", username.as_str())?;
    }
    if let Some(m) = meta {
        upstream.insert_header(DECISION_ID, m.event_id.to_string())?;
    }
    Ok(())
}

/// Umbraco's one real Delivery API key, read once from the environment variable named by
/// `upstream.delivery_api_key_env` (set by `app` at start).
pub fn delivery_api_key() -> Option<&'static str> {
    DELIVERY_API_KEY.get().and_then(|k| k.as_deref())
}

/// Set once at start from the environment; never logged.
pub static DELIVERY_API_KEY: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();

impl Gateway {
    /// Puts the API user's token in the upstream `Authorization` (replacing the caller's). When
    /// no token can be had, the request fails with 503 `upstream_credential_unavailable`.
    async fn use_api_user(&self, upstream: &mut RequestHeader, ctx: &mut RequestCtx) -> Result<()> {
        let Some(api_user) = &self.shared.services.api_user else {
            // Configured after start (reload): the credential source needs a restart.
            ctx.upstream_failure = Some(UpstreamFailure::Credential);
            return Err(Error::explain(
                ErrorType::InternalError,
                "upstream.credential changed; restart to use the api user",
            ));
        };
        match api_user.token().await {
            Ok(token) => {
                upstream
                    .insert_header(http::header::AUTHORIZATION, token.authorization().clone())?;
                ctx.upstream_token = Some(token);
                Ok(())
            }
            Err(e) => {
                tracing::warn!(umbraco.client_id = %api_user.client_id(), error = %crate::config::error_chain(&e), "no api user token for the upstream request");
                ctx.upstream_failure = Some(UpstreamFailure::Credential);
                Err(Error::explain(
                    ErrorType::InternalError,
                    "api user token unavailable",
                ))
            }
        }
    }
}

#[async_trait]
impl ProxyHttp for Gateway {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> RequestCtx {
        RequestCtx {
            runtime: self.shared.runtime.load_full(),
            started: Instant::now(),
            request_id: String::new(),
            api: None,
            route: Arc::from(""),
            decision: None,
            verdict: None,
            meta: None,
            trace_id: None,
            span: tracing::Span::none(),
            upstream_started: None,
            upstream_elapsed: None,
            upstream_failure: None,
            body_inspected: false,
            upstream_token: None,
            _in_flight: InFlight::new(&self.shared),
        }
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<bool> {
        ctx.request_id = headers::request_id(&session.req_header().headers);
        if self.shared.health.is_draining() {
            // Finish this request, but tell the client not to reuse the connection.
            session.set_keepalive(None);
        }
        let t0 = Instant::now();
        // One span per request carries the stable fields into everything logged while deciding.
        let span = {
            let req = session.req_header();
            tracing::info_span!("request", request.id = %ctx.request_id, http.method = %req.method)
        };
        ctx.span = span.clone();
        let step = {
            let req = session.req_header();
            let raw = req.raw_path().to_vec();
            ctx.runtime
                .gate
                .decide(req, &raw)
                .instrument(span.clone())
                .await
        };
        let verdict = match step {
            Step::Decided(v) => v,
            Step::NeedsBody {
                pending,
                principal,
                limit,
            } => {
                ctx.body_inspected = true;
                let verdict = inspect_body(session, &ctx.runtime, &pending, *principal, limit)
                    .instrument(span.clone())
                    .await?;
                Box::new(verdict)
            }
        };
        self.shared
            .metrics
            .decision_duration
            .with_label_values(&[api_label(verdict.api)])
            .observe(t0.elapsed().as_secs_f64());
        ctx.api = verdict.api;
        ctx.route = verdict.route.clone();
        ctx.decision = Some(verdict.decision.clone());
        let req = session.req_header();
        let path = verdict.uri.as_deref().map_or_else(
            || req.uri.path().to_owned(),
            |u| u.split('?').next().unwrap_or(u).to_owned(),
        );
        let peer = session
            .client_addr()
            .and_then(|a| a.as_inet())
            .map(|a| a.ip());
        ctx.meta = Some(RequestMeta::new(
            ctx.request_id.clone(),
            &req.method,
            path,
            peer,
            &req.headers,
        ));
        let denied = match &verdict.decision {
            Decision::Deny(reason) => Some(*reason),
            Decision::Allow(_) => None,
        };
        ctx.verdict = Some(verdict);
        if let Some(reason) = denied {
            // An unread body is never drained: the connection closes after the reply.
            if !session.is_body_done() {
                session.set_keepalive(None);
            }
            let mut reply = respond::deny(reason, &ctx.request_id);
            if let Some(m) = &ctx.meta {
                reply.headers.push((DECISION_ID, m.event_id.to_string()));
            }
            write_reply(session, &reply, &ctx.request_id).await?;
            return Ok(true);
        }
        Ok(false)
    }

    async fn upstream_peer(
        &self,
        _session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> Result<Box<HttpPeer>> {
        let cfg = &ctx.runtime.config;
        let addr = match ctx.api {
            Some(Api::Delivery) => cfg.delivery_upstream,
            _ => cfg.management_upstream,
        };
        let up = &cfg.file.upstream;
        let mut peer = HttpPeer::new(addr, false, String::new());
        peer.options.connection_timeout = Some(up.connect_timeout);
        peer.options.total_connection_timeout = Some(up.total_connect_timeout);
        peer.options.read_timeout = Some(up.read_timeout);
        peer.options.write_timeout = Some(up.write_timeout);
        peer.options.idle_timeout = Some(up.idle_timeout);
        Ok(Box::new(peer))
    }

    async fn upstream_request_filter(
        &self,
        session: &mut Session,
        upstream: &mut RequestHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        let cfg = &ctx.runtime.config;
        for name in headers::client_headers_to_strip(&upstream.headers, &cfg.identity_headers) {
            upstream.remove_header(&name);
        }
        let peer = session
            .client_addr()
            .and_then(|a| a.as_inet())
            .map(|a| a.ip());
        for (name, value) in headers::forwarded(&upstream.headers, peer, &cfg.trusted_proxies) {
            match value {
                Some(v) => upstream.insert_header(name, v)?,
                None => drop(upstream.remove_header(name)),
            }
        }
        if ctx.body_inspected {
            // The whole body is already here and goes out at once: nothing to wait for.
            upstream.remove_header(&http::header::EXPECT);
        }
        upstream.insert_header(headers::REQUEST_ID, ctx.request_id.as_str())?;
        let (traceparent, trace_id) = headers::traceparent(&upstream.headers);
        upstream.insert_header("traceparent", traceparent)?;
        ctx.trace_id = Some(trace_id);
        if let Some(v) = &ctx.verdict {
            // Forward exactly the canonical form that was authorised.
            if let Some(uri) = &v.uri {
                match uri.parse::<http::Uri>() {
                    Ok(u) => upstream.set_uri(u),
                    Err(_) => {
                        return Err(Error::explain(
                            ErrorType::InternalError,
                            "canonical uri does not parse",
                        ))
                    }
                }
            }
            identity_headers(upstream, v, ctx.meta.as_ref())?;
        }
        if let Some(host) = &cfg.file.upstream.host {
            upstream.insert_header(http::header::HOST, host.as_str())?;
        }
        let kind = cfg.file.upstream.credential.kind;
        let credential = ctx
            .verdict
            .as_ref()
            .map_or(UpstreamCredential::AsSent, |v| {
                headers::upstream_credential(v.api, v.principal.as_ref(), kind)
            });
        if credential == UpstreamCredential::ApiUser {
            self.use_api_user(upstream, ctx).await?;
        }
        ctx.upstream_started = Some(Instant::now());
        Ok(())
    }

    async fn upstream_response_filter(
        &self,
        _session: &mut Session,
        _upstream_response: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        self.shared.health.mark_upstream_seen();
        if let Some(t) = ctx.upstream_started {
            let elapsed = t.elapsed();
            ctx.upstream_elapsed = Some(elapsed);
            self.shared
                .metrics
                .upstream_duration
                .with_label_values(&[api_label(ctx.api)])
                .observe(elapsed.as_secs_f64());
        }
        Ok(())
    }

    async fn response_filter(
        &self,
        session: &mut Session,
        response: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        if self.shared.health.is_draining() {
            // Also for requests that began before SIGTERM: `Connection: close`.
            session.set_keepalive(None);
        }
        response.insert_header(headers::REQUEST_ID, ctx.request_id.as_str())?;
        if let Some(m) = &ctx.meta {
            response.insert_header(DECISION_ID, m.event_id.to_string())?;
        }
        Ok(())
    }

    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        e: &Error,
        ctx: &mut RequestCtx,
    ) -> FailToProxy {
        if ctx.request_id.is_empty() {
            ctx.request_id = headers::request_id(&session.req_header().headers);
        }
        let reply = match ctx.upstream_failure.or_else(|| classify_failure(e)) {
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

    async fn logging(&self, session: &mut Session, e: Option<&Error>, ctx: &mut RequestCtx) {
        let status = session.response_written().map_or(0, |r| r.status.as_u16());
        let (decision, reason) = match &ctx.decision {
            Some(d) => (d.as_str(), d.reason_str()),
            None => ("none", ""),
        };
        let api = api_label(ctx.api);
        let elapsed = ctx.started.elapsed();
        let m = &self.shared.metrics;
        m.requests
            .with_label_values(&[api, decision, reason, &status.to_string()])
            .inc();
        m.request_duration
            .with_label_values(&[api])
            .observe(elapsed.as_secs_f64());
        if let (Some(meta), Some(v)) = (&ctx.meta, &ctx.verdict) {
            let event = AuditEvent::new(
                meta,
                v.target.as_ref(),
                v.principal.as_ref(),
                &v.groups,
                &v.decision,
            )
            .with_upstream(
                session.response_written().map(|r| r.status.as_u16()),
                ctx.upstream_elapsed,
            );
            self.shared.auditor.record(event);
        }
        let req = session.req_header();
        let _span = ctx.span.enter();
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
            trace.id = ctx.trace_id.as_deref(),
            principal.id = ctx.verdict.as_ref().and_then(|v| v.principal.as_ref()).map(|p| p.id.as_str()),
            duration.ms = elapsed.as_secs_f64() * 1000.0,
            error = e.map(|e| e.etype().as_str()),
            "request"
        );
    }
}
