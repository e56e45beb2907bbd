//! Composition root: builds every part once from the config, wires the pingora services (proxy,
//! admin, optional dev upstream), the reloader and the drain-on-SIGTERM signal watch, and runs.
//! Only this module knows the wiring (`build.rs`: the parts; `readiness.rs`: `/readyz`;
//! `lifecycle.rs`: reloads, drain).

use crate::admin::{AdminApp, AdminAuth};
use crate::audit::Auditor;
use crate::config::{env_overrides, Config};
use crate::gate::{Gate, Services};
use crate::proxy::edge::{Edge, EdgeMetrics};
use crate::proxy::Gateway;
use crate::telemetry::Metrics;
mod build;
mod lifecycle;
mod readiness;

use arc_swap::ArcSwap;
pub(crate) use build::build_policy_cache;
use build::build_services;
use lifecycle::{finish_drain, spawn_background, DrainOnTerm};
use pingora::server::configuration::{Opt, ServerConf};
use pingora::server::{RunArgs, Server};
use pingora::services::listening::Service;
pub use readiness::Check;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Everything built from one config; swapped whole on reload.
pub struct Runtime {
    pub config: Config,
    pub gate: Gate,
    /// The admin tokens read for this config (re-read on every reload).
    pub admin: AdminAuth,
}

impl Runtime {
    /// Builds the request pipeline for `config` over the long-lived services.
    pub fn build(config: Config, services: Arc<Services>) -> Runtime {
        let gate = Gate::new(&config, services);
        let admin = AdminAuth::load(&config.file.admin, config.base_dir());
        Runtime {
            config,
            gate,
            admin,
        }
    }
}

/// Process-wide liveness facts read by `/readyz` and the drain logic.
#[derive(Default)]
pub struct Health {
    pub in_flight: AtomicI64,
    draining: AtomicBool,
    upstream_seen: AtomicBool,
    store_seen: AtomicBool,
}

impl Health {
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }
    /// Called when any upstream answered or accepted a connection.
    pub fn mark_upstream_seen(&self) {
        self.upstream_seen.store(true, Ordering::SeqCst);
    }
}

/// State shared by the proxy, the admin listener and background tasks.
pub struct Shared {
    pub runtime: ArcSwap<Runtime>,
    pub metrics: Metrics,
    pub health: Health,
    pub services: Arc<Services>,
    pub auditor: Auditor,
    /// Where the admin API reads and writes API keys (the policy store's tables or file).
    pub keys: Option<crate::store::KeyWriter>,
    /// Where the admin API reads and writes local overrides (Postgres store only).
    pub overrides: Option<crate::store::OverrideWriter>,
    /// The Postgres audit sink's database, read by `GET /v1/audit`.
    pub audit_db: Option<sqlx::PgPool>,
    /// Postgres store: push invalidation state is reported by readiness.
    push_invalidation: bool,
}

impl Shared {
    /// Re-reads the config file; a bad config is rejected and logged, the old one keeps serving.
    pub fn reload(&self) -> bool {
        let current = self.runtime.load();
        let path = current.config.path.clone();
        match Config::load(&path, &env_overrides()) {
            Ok(new) => {
                for (what, old, new) in [
                    ("listen.address", current.config.listen, new.listen),
                    ("admin.address", current.config.admin, new.admin),
                ] {
                    if old != new {
                        tracing::warn!(
                            config.key = what,
                            "changed; takes effect only after a restart"
                        );
                    }
                }
                let profiles = new.classifier.table().describe_profiles();
                self.runtime
                    .store(Arc::new(Runtime::build(new, self.services.clone())));
                self.metrics.config_reloads.with_label_values(&["ok"]).inc();
                tracing::info!(
                    config.path = %path.display(),
                    routes.profiles = %profiles,
                    "config reloaded"
                );
                true
            }
            Err(e) => {
                self.metrics
                    .config_reloads
                    .with_label_values(&["rejected"])
                    .inc();
                tracing::error!(config.path = %path.display(), error = %e, "config reload rejected; keeping the running config");
                false
            }
        }
    }
}

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("cannot start the server")]
    Server(#[source] Box<pingora::Error>),
    #[error("cannot start the background thread")]
    Thread(#[source] std::io::Error),
    #[error("cannot set up authentication")]
    Authn(#[source] crate::authn::AuthnError),
    #[error("cannot open the policy store")]
    Store(#[source] crate::store::StoreError),
    #[error("cannot start the audit trail")]
    Audit(#[source] crate::audit::AuditError),
    #[error("cannot register metrics")]
    Metrics(#[source] prometheus::Error),
    #[error("cannot set up the upstream credential")]
    Umbraco(#[source] crate::umbraco::UmbracoError),
    #[error("cannot set up the umbraco mirror")]
    Mirror(#[source] crate::mirror::SyncError),
}

/// Extra services for `portcullis dev` (the bundled demo upstream).
pub type ExtraService = Box<dyn pingora::services::ServiceWithDependents>;

/// h2c on; an h2c connection idle for `idle` is closed (HTTP/1.1 idling is the edge's).
fn server_options(idle: Duration) -> pingora::apps::HttpServerOptions {
    let mut o = pingora::apps::HttpServerOptions::default();
    o.h2c = true;
    o.h2_idle_timeout = Some(idle);
    o
}

/// The proxy listener (the connection edge in front of pingora's `HttpProxy`: connection cap,
/// head deadline, keep-alive idle timeout), the admin listener and the `extra` services.
fn add_services(
    server: &mut Server,
    shared: &Arc<Shared>,
    listen: &str,
    admin: &str,
    keepalive_timeout: Duration,
    extra: Vec<ExtraService>,
) -> Result<(), AppError> {
    let mut http = pingora_proxy::http_proxy(&server.configuration, Gateway::new(shared.clone()));
    http.server_options = Some(server_options(keepalive_timeout));
    let edge_metrics =
        EdgeMetrics::register(&shared.metrics.registry).map_err(AppError::Metrics)?;
    let mut proxy = Service::new(
        "portcullis proxy".into(),
        Edge::new(http, shared.clone(), edge_metrics),
    );
    proxy.add_tcp(listen);
    let mut admin_svc = Service::new(
        "portcullis admin".into(),
        pingora::apps::http_app::HttpServer::new_app(AdminApp::new(shared.clone())),
    );
    admin_svc.add_tcp(admin);
    admin_svc.threads = Some(1);
    server.add_service(proxy);
    server.add_service(admin_svc);
    for svc in extra {
        server.add_boxed_service(svc);
    }
    Ok(())
}

/// The mirror's scheduled sync rounds on the background runtime (when there is a mirror); a
/// draining gateway starts no new round.
fn spawn_sync(bg: &tokio::runtime::Runtime, shared: &Arc<Shared>) -> Result<(), AppError> {
    if let Some(mirror) = shared.services.mirror.clone() {
        let metrics = crate::mirror::schedule::SyncMetrics::register(&shared.metrics.registry)
            .map_err(AppError::Metrics)?;
        let draining = shared.clone();
        let job = crate::mirror::schedule::SyncJob::new(mirror, metrics);
        bg.spawn(job.run(move || draining.health.is_draining()));
    }
    Ok(())
}

/// Runs the gateway until SIGTERM (drain) or SIGINT (immediate). Blocks.
///
/// Every stop writes or spools (fsynced) the audit events recorded so far before the process
/// exits: a graceful stop through [`finish_drain`], a fast one after `server.run` returns.
pub fn run(config: Config, extra: Vec<ExtraService>) -> Result<(), AppError> {
    let metrics = Metrics::new();
    let listen = config.listen.to_string();
    let admin = config.admin.to_string();
    let threads = config.file.listen.threads;
    let keepalive_timeout = config.file.listen.keepalive_timeout;
    let keepalive = config.file.upstream.keepalive_pool;
    let lifecycle = config.file.lifecycle.clone();
    let audit_flush = config.file.audit.write_timeout;
    let profiles = config.classifier.table().describe_profiles();
    let real_key = config
        .file
        .upstream
        .delivery_api_key_env
        .as_ref()
        .and_then(|v| std::env::var(v).ok());
    let _ = crate::proxy::DELIVERY_API_KEY.set(real_key);
    // Background tasks (key refresh, invalidation, audit writers) run on their own runtime,
    // independent of pingora's per-service runtimes; it lives as long as `run`.
    let bg = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("portcullis-bg")
        .enable_all()
        .build()
        .map_err(AppError::Thread)?;
    let (services, auditor, built) = bg.block_on(build_services(&config, &metrics))?;
    let audit_db = {
        let _rt = bg.enter();
        crate::admin::audit::audit_pool(&config.file.audit)
    };
    let shared = Arc::new(Shared {
        runtime: ArcSwap::from_pointee(Runtime::build(config, services.clone())),
        metrics,
        health: Health::default(),
        services,
        auditor,
        keys: Some(built.keys),
        overrides: built
            .pool
            .clone()
            .map(|p| crate::store::OverrideWriter::new(p, Some(built.cache.clone()))),
        audit_db,
        push_invalidation: built.push,
    });

    // pingora sleeps this long after closing its listeners before it stops its runtimes;
    // `finish_drain` exits earlier, as soon as the in-flight requests are done and the audit
    // trail is flushed, so this only bounds a drain that overruns.
    let overrun = lifecycle.grace_period + audit_flush + Duration::from_secs(2);
    let conf = ServerConf {
        threads,
        upstream_keepalive_pool_size: keepalive,
        grace_period_seconds: Some(overrun.as_secs()),
        graceful_shutdown_timeout_seconds: Some(1),
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(Opt::default(), conf);
    server.bootstrap();

    add_services(
        &mut server,
        &shared,
        &listen,
        &admin,
        keepalive_timeout,
        extra,
    )?;

    spawn_background(shared.clone())?;
    spawn_sync(&bg, &shared)?;
    bg.spawn(finish_drain(
        server.watch_execution_phase(),
        shared.clone(),
        lifecycle.grace_period,
        audit_flush,
    ));
    tracing::info!(listen = %listen, admin = %admin, routes.profiles = %profiles, "portcullis starting");
    server.run(RunArgs {
        shutdown_signal: Box::new(DrainOnTerm {
            shared: shared.clone(),
            drain_delay: lifecycle.drain_delay,
        }),
    });
    // A fast stop (SIGINT), or a drain that overran: whatever is still queued is spooled.
    let report = bg.block_on(shared.auditor.shutdown(Duration::ZERO));
    tracing::info!(
        audit.spooled_bytes = report.spooled_bytes,
        "portcullis stopped"
    );
    Ok(())
}
