//! The pingora glue: `Gateway` implements `ProxyHttp`. Only this module knows pingora phases;
//! decisions come from `gate`, responses from `respond`, header rules from `headers`.

mod api_user;
mod body;
pub mod edge;
mod edge_head;
mod finish;
pub mod head_check;
pub mod headers;
pub mod respond;

use crate::app::{Runtime, Shared};
use crate::audit::RequestMeta;
use crate::authz::{Decision, DenyReason};
use crate::gate::{Progress, Verdict};
use crate::request::Api;
use crate::telemetry::request_span;
use api_user::UpstreamCredential;
use async_trait::async_trait;
use body::inspect_body;
use bytes::Bytes;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::prelude::{HttpPeer, ProxyHttp, Session};
use pingora::{Error, ErrorType, OrErr, Result};
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
    verdict: Option<Box<Verdict>>,
    meta: Option<RequestMeta>,
    /// The W3C `traceparent` sent upstream (its trace id: `headers::trace_id`).
    traceparent: Option<String>,
    upstream_started: Option<Instant>,
    upstream_elapsed: Option<Duration>,
    upstream_failure: Option<UpstreamFailure>,
    /// The body was read for inspection (and is forwarded from pingora's retry buffer).
    body_inspected: bool,
    /// The API user's token sent upstream, when `[upstream.credential]` replaced the caller's.
    upstream_token: Option<Arc<crate::umbraco::UpstreamToken>>,
    /// The API user's token Umbraco answered 401 to, until the replay replaces it.
    rejected_token: Option<Arc<crate::umbraco::UpstreamToken>>,
    /// The request was already replayed once after such a 401 (never twice).
    replayed: bool,
    /// Streamed request body bytes so far (`listen.limits.max_body_bytes`).
    body_bytes: u64,
    _in_flight: InFlight,
}

impl RequestCtx {
    /// The decision on this request (`None` before one was made).
    fn decision(&self) -> Option<&Decision> {
        self.verdict.as_ref().map(|v| &v.decision)
    }
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

use headers::DECISION_ID;

/// The head checks on the head as received (raw bytes for HTTP/1, see [`head_check`]).
fn head_refusal(session: &Session, cfg: &head_check::HeadPolicy) -> Option<DenyReason> {
    let req = session.req_header();
    let raw = session
        .as_downstream()
        .as_http1()
        .map(|h| h.get_headers_raw_bytes());
    let head = match &raw {
        Some(raw) => head_check::HeadFacts::from_raw(raw),
        None => head_check::HeadFacts::from_headers(&req.headers, req.raw_path().len()),
    };
    let authority = req.uri.authority().map(|a| a.as_str());
    head_check::check(&head, req.version, req.raw_path(), authority, cfg)
}

fn api_label(api: Option<Api>) -> &'static str {
    api.map_or("other", Api::as_str)
}

/// Writes a gateway-made response (deny or error) with the request id.
async fn write_reply(session: &mut Session, reply: &Reply, request_id: &str) -> Result<()> {
    let head = reply.head(request_id)?;
    session.write_response_header(Box::new(head), false).await?;
    session
        .write_response_body(Some(Bytes::clone(&reply.body)), true)
        .await
}

/// Umbraco's one real Delivery API key, read once from the environment variable named by
/// `upstream.delivery_api_key_env` (set by `app` at start).
pub fn delivery_api_key() -> Option<&'static str> {
    DELIVERY_API_KEY.get().and_then(|k| k.as_deref())
}

/// Set once at start from the environment; never logged.
pub static DELIVERY_API_KEY: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();

#[async_trait]
impl ProxyHttp for Gateway {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> RequestCtx {
        RequestCtx {
            runtime: self.shared.runtime.load_full(),
            started: Instant::now(),
            request_id: String::new(),
            api: None,
            route: crate::request::route::NOT_YET.clone(),
            verdict: None,
            meta: None,
            traceparent: None,
            upstream_started: None,
            upstream_elapsed: None,
            upstream_failure: None,
            body_inspected: false,
            upstream_token: None,
            rejected_token: None,
            replayed: false,
            body_bytes: 0,
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
        let progress = if let Some(reason) = head_refusal(session, &ctx.runtime.config.head_policy)
        {
            // Framing or a head the checks refuse: this connection is not read any further.
            session.set_keepalive(None);
            Progress::Decided(Box::new(Verdict::denied(reason)))
        } else {
            let req = session.req_header();
            // Everything cached: decided without waiting. Otherwise the rest of the decision
            // runs in its own allocation, so this future stays small on the warm path.
            let warm = request_span(&ctx.request_id, &req.method, false);
            match warm.in_scope(|| ctx.runtime.gate.decide_now(req, req.raw_path())) {
                Progress::Wait(resume) => {
                    let gate = &ctx.runtime.gate;
                    let span = request_span(&ctx.request_id, &req.method, true);
                    Box::pin(gate.resume(req, resume).instrument(span)).await
                }
                progress => progress,
            }
        };
        let verdict = match progress {
            Progress::Decided(v) => v,
            Progress::ReadBody {
                pending,
                principal,
                limit,
            } => {
                ctx.body_inspected = true;
                let span = request_span(&ctx.request_id, &session.req_header().method, true);
                let inspect = inspect_body(session, &ctx.runtime, &pending, principal, limit);
                Box::new(Box::pin(inspect.instrument(span)).await?)
            }
            // `resume` never waits again; fail closed if it ever did.
            Progress::Wait(_) => Box::new(Verdict::denied(DenyReason::StoreUnavailable)),
        };
        self.shared
            .metrics
            .api(verdict.api)
            .decision_duration
            .observe(t0.elapsed().as_secs_f64());
        ctx.api = verdict.api;
        ctx.route = verdict.route.clone();
        let req = session.req_header();
        let path = verdict.uri.as_deref().map_or_else(
            || req.uri.path().to_owned(),
            |u| u[..memchr::memchr(b'?', u.as_bytes()).unwrap_or(u.len())].to_owned(),
        );
        let peer = session
            .client_addr()
            .and_then(|a| a.as_inet())
            .map(|a| a.ip());
        ctx.meta = Some(RequestMeta::new(&req.method, path, peer, &req.headers));
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
            Box::pin(write_reply(session, &reply, &ctx.request_id)).await?;
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
        let peer = session
            .client_addr()
            .and_then(|a| a.as_inet())
            .map(|a| a.ip());
        let traceparent = headers::traceparent(&upstream.headers);
        let mut id_buf = [0u8; 36];
        let decision_id = ctx
            .meta
            .as_ref()
            .map(|m| headers::uuid_text(&m.event_id, &mut id_buf));
        let forwarding = headers::Forwarding {
            peer,
            trusted_proxies: &cfg.trusted_proxies,
            identity: &cfg.identity_headers,
            verdict: ctx.verdict.as_deref(),
            decision_id,
            request_id: &ctx.request_id,
            traceparent: &traceparent,
            body_inspected: ctx.body_inspected,
            upstream_host: cfg.file.upstream.host.as_deref(),
            delivery_api_key: delivery_api_key(),
        };
        let edits = headers::upstream_edits(&upstream.headers, &forwarding).or_err(
            ErrorType::InternalError,
            "an upstream header value is invalid",
        )?;
        ctx.traceparent = Some(traceparent);
        // Forward exactly the canonical form that was authorised.
        let target = ctx.verdict.as_ref().and_then(|v| v.uri.as_deref());
        headers::apply(upstream, edits, target)?;
        let kind = cfg.file.upstream.credential.kind;
        let credential = ctx
            .verdict
            .as_ref()
            .map_or(UpstreamCredential::AsSent, |v| {
                api_user::upstream_credential(v.api, v.principal.as_deref(), kind)
            });
        if credential == UpstreamCredential::ApiUser {
            // Boxed: pingora boxes this filter's future per request, so it stays small.
            Box::pin(self.use_api_user(upstream, ctx)).await?;
        }
        ctx.upstream_started = Some(Instant::now());
        Ok(())
    }

    /// Counts a streamed body against `listen.limits.max_body_bytes`; past it the request
    /// fails (413 `body_too_large` unless the upstream already answered) and the upstream
    /// connection is dropped before the body's end, so the upstream never gets a whole request.
    async fn request_body_filter(
        &self,
        session: &mut Session,
        body: &mut Option<Bytes>,
        _end_of_stream: bool,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        ctx.body_bytes += body.as_ref().map_or(0, |b| b.len() as u64);
        if ctx.body_bytes > ctx.runtime.config.head_policy.limits.max_body_bytes {
            session.set_keepalive(None);
            let denied = Decision::Deny(DenyReason::BodyTooLarge);
            match ctx.verdict.as_mut() {
                Some(v) => v.decision = denied,
                None => ctx.verdict = Some(Box::new(Verdict::denied(DenyReason::BodyTooLarge))),
            }
            return Err(Error::explain(
                ErrorType::HTTPStatus(413),
                "request body over listen.limits.max_body_bytes",
            ));
        }
        Ok(())
    }

    async fn upstream_response_filter(
        &self,
        session: &mut Session,
        upstream_response: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        self.shared.health.mark_upstream_seen();
        if upstream_response.status == http::StatusCode::UNAUTHORIZED {
            self.on_upstream_401(session, ctx)?;
        }
        if let Some(t) = ctx.upstream_started {
            let elapsed = t.elapsed();
            ctx.upstream_elapsed = Some(elapsed);
            self.shared
                .metrics
                .api(ctx.api)
                .upstream_duration
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
        let mut id_buf = [0u8; 36];
        let decision_id = ctx
            .meta
            .as_ref()
            .map(|m| headers::uuid_text(&m.event_id, &mut id_buf));
        headers::add_response_ids(response, &ctx.request_id, decision_id)
    }

    /// pingora's default policy (no retry of a non-idempotent method or a truncated body
    /// buffer; a reused-connection failure is retried), except for the replay after Umbraco
    /// refused the API user's token, which `api_user` already decided is safe: Umbraco refused
    /// the request before acting on it, and the request is replayed byte for byte.
    fn error_while_proxy(
        &self,
        peer: &HttpPeer,
        session: &mut Session,
        e: Box<Error>,
        _ctx: &mut RequestCtx,
        client_reused: bool,
    ) -> Box<Error> {
        if api_user::is_token_rejected(&e) {
            return e;
        }
        let mut e = e.more_context(format!("Peer: {peer}"));
        if !session.req_header().method.is_idempotent()
            || session.as_downstream().retry_buffer_truncated()
        {
            e.set_retry(false);
        } else {
            e.retry.decide_reuse(client_reused);
        }
        e
    }

    /// The replay after a refused API-user token is logged by `api_user`, not as a failure.
    fn suppress_proxy_warn_log(
        &self,
        _session: &Session,
        _ctx: &RequestCtx,
        error: &Error,
        _context: pingora_proxy::ProxyWarnLogContext,
    ) -> bool {
        api_user::is_token_rejected(error)
    }

    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        e: &Error,
        ctx: &mut RequestCtx,
    ) -> FailToProxy {
        self.answer_failure(session, e, ctx).await
    }

    async fn logging(&self, session: &mut Session, e: Option<&Error>, ctx: &mut RequestCtx) {
        self.log_and_audit(session, e, ctx);
    }
}
