//! Composition root: builds every part once from the config, wires the pingora services (proxy,
//! admin, optional dev upstream), the reloader and the drain-on-SIGTERM signal watch, and runs.
//! Only this module knows the wiring (`readiness.rs`: `/readyz`; `lifecycle.rs`: reloads, drain).

use crate::admin::{AdminApp, AdminAuth};
use crate::audit::Auditor;
use crate::authn::Authenticator;
use crate::authn::UmbracoAuthnConfig;
use crate::config::{env_overrides, Config};
use crate::gate::{Gate, Services};
use crate::proxy::edge::{Edge, EdgeMetrics};
use crate::proxy::Gateway;
use crate::store::{
    FileStore, KeyWriter, Listener, PolicyCache, PolicyStore, PostgresStore, StoreKind,
    StoreMetrics,
};
use crate::telemetry::Metrics;
use crate::umbraco::{
    ApiUser, CredentialKind, ManagementClient, NodeResolver, Sessions, UmbracoMetrics,
};
mod lifecycle;
mod readiness;

use arc_swap::ArcSwap;
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

/// Builds the long-lived services on the background runtime: key sets (fetched now, so
/// readiness waits for them), the policy store with its cache and invalidation, the auditor.
async fn build_services(
    config: &Config,
    metrics: &Metrics,
) -> Result<(Arc<Services>, Auditor, BuiltStore), AppError> {
    let f = &config.file;
    let authn = Authenticator::new(&f.authn, &metrics.registry).map_err(AppError::Authn)?;
    authn.start().await;
    let store_metrics = StoreMetrics::register(&metrics.registry).map_err(AppError::Metrics)?;
    let built = build_policy_cache(config, store_metrics, true).await?;
    let cache = built.cache.clone();
    let auditor = Auditor::start(&f.audit, &metrics.registry).map_err(AppError::Audit)?;
    let umbraco_metrics = UmbracoMetrics::register(&metrics.registry).map_err(AppError::Umbraco)?;
    let api_user = build_api_user(config, &umbraco_metrics)?;
    let (sessions, nodes) = build_sessions(config, api_user.as_ref())?;
    let versions = build_versions(config, api_user.as_ref(), &umbraco_metrics)?;
    let mirror = match (&api_user, &built.pool) {
        (Some(a), Some(pool)) => Some(
            crate::mirror::Mirror::for_gateway(config, a.clone(), pool.clone(), umbraco_metrics)
                .map_err(AppError::Mirror)?,
        ),
        _ => None,
    };
    let services = Services {
        authn,
        cache,
        api_user,
        sessions,
        nodes,
        versions,
        mirror,
    };
    Ok((Arc::new(services), auditor, built))
}

/// The session checks of the `umbraco` authenticator and the tree-API resolver of nodes.
type UmbracoCallers = (Option<Arc<Sessions>>, Option<Arc<NodeResolver>>);

/// The `umbraco` authenticator's session checks (`[authn.umbraco]`) and the tree-API resolver
/// of unknown nodes (with the API user). No I/O.
pub fn build_sessions(
    config: &Config,
    api_user: Option<&Arc<ApiUser>>,
) -> Result<UmbracoCallers, AppError> {
    let client = || {
        ManagementClient::new(
            config.management_upstream,
            config.file.upstream.host.as_deref(),
        )
        .map_err(AppError::Umbraco)
    };
    let umbraco = config.file.authn.umbraco.as_ref();
    let defaults = UmbracoAuthnConfig::default();
    let cfg = umbraco.unwrap_or(&defaults);
    let nodes = match api_user {
        Some(u) => Some(Arc::new(NodeResolver::new(
            client()?,
            u.clone(),
            cfg.timeout,
            cfg.node_ttl,
        ))),
        None => None,
    };
    let sessions = match umbraco {
        Some(cfg) => Some(Arc::new(Sessions::new(cfg, client()?, nodes.clone()))),
        None => None,
    };
    Ok((sessions, nodes))
}

/// The document-version owner look-ups (with the API user; `[authn.umbraco] timeout` per call).
fn build_versions(
    config: &Config,
    api_user: Option<&Arc<ApiUser>>,
    metrics: &UmbracoMetrics,
) -> Result<Option<Arc<crate::umbraco::VersionResolver>>, AppError> {
    let Some(api_user) = api_user else {
        return Ok(None);
    };
    let client = ManagementClient::new(
        config.management_upstream,
        config.file.upstream.host.as_deref(),
    )
    .map_err(AppError::Umbraco)?;
    let timeout = config
        .file
        .authn
        .umbraco
        .as_ref()
        .map_or(UmbracoAuthnConfig::default().timeout, |u| u.timeout);
    let reader =
        crate::mirror::client::Reader::new(client, api_user.clone(), metrics.clone(), timeout);
    Ok(Some(Arc::new(crate::umbraco::VersionResolver::new(reader))))
}

/// Tries of the first API-user token fetch at start (0.25 s, then doubling, between them).
const WARM_TOKEN_TRIES: u32 = 4;

/// The API user of `[upstream.credential]` (`None` for `passthrough`); its first token is
/// fetched in the background so that the first request does not wait for it.
fn build_api_user(
    config: &Config,
    umbraco_metrics: &UmbracoMetrics,
) -> Result<Option<Arc<ApiUser>>, AppError> {
    let cred = &config.file.upstream.credential;
    if cred.kind != CredentialKind::UmbracoApiUser {
        return Ok(None);
    }
    let client = ManagementClient::new(
        config.management_upstream,
        config.file.upstream.host.as_deref(),
    )
    .map_err(AppError::Umbraco)?;
    let api_user =
        Arc::new(ApiUser::new(cred, client, umbraco_metrics.clone()).map_err(AppError::Umbraco)?);
    let warm = api_user.clone();
    tokio::spawn(async move {
        // Umbraco may start after the gateway (or, in `portcullis dev`, the demo upstream
        // beside it): a few tries before the failure is worth a warning.
        let mut pause = Duration::from_millis(250);
        for attempt in 1..=WARM_TOKEN_TRIES {
            match warm.token().await {
                Ok(_) => return,
                Err(e) if attempt == WARM_TOKEN_TRIES => {
                    tracing::warn!(umbraco.client_id = %warm.client_id(), error = %crate::config::error_chain(&e), "cannot obtain the api user token yet");
                }
                Err(_) => {
                    tokio::time::sleep(pause).await;
                    pause *= 2;
                }
            }
        }
    });
    Ok(Some(api_user))
}

/// The policy store named by the config: its cache, whether push invalidation is used, and
/// the writer of API keys.
pub(crate) struct BuiltStore {
    pub cache: PolicyCache,
    pub push: bool,
    pub keys: KeyWriter,
    /// The Postgres pool (the mirror writes through it).
    pub pool: Option<sqlx::PgPool>,
}

/// The policy store named by the config, behind its cache. `background` starts the file
/// watch, the invalidation listener, the key-use flusher and `migrate_on_start` (the gateway);
/// one-shot commands such as `portcullis explain` pass `false` and only read.
pub(crate) async fn build_policy_cache(
    config: &Config,
    store_metrics: StoreMetrics,
    background: bool,
) -> Result<BuiltStore, AppError> {
    let f = &config.file;
    let st = &f.store;
    let built = match st.kind {
        StoreKind::File => {
            let rel = st.policy_file.clone().unwrap_or_default();
            let path = config.base_dir().join(rel);
            let file = Arc::new(FileStore::open(&path).map_err(AppError::Store)?);
            let store: Arc<dyn PolicyStore> = file.clone();
            let failures = store_metrics.policy_reload_failures.clone();
            let cache = PolicyCache::new(store, st.cache.clone(), st.max_staleness, store_metrics);
            if background {
                file.clone()
                    .spawn_watch(&cache, st.policy_file_poll, failures);
            }
            let keys = KeyWriter::file(&path, Some(file), Some(cache.clone()));
            BuiltStore {
                cache,
                push: false,
                keys,
                pool: None,
            }
        }
        StoreKind::Postgres => {
            let pool = crate::store::connect(st).map_err(AppError::Store)?;
            if background && st.migrate_on_start {
                crate::store::migrate(&pool)
                    .await
                    .map_err(AppError::Store)?;
            }
            let store: Arc<dyn PolicyStore> = Arc::new(
                PostgresStore::new(pool.clone(), store_metrics.clone())
                    .with_query_timeout(st.query_timeout),
            );
            let cache = PolicyCache::new(store, st.cache.clone(), st.max_staleness, store_metrics);
            if background {
                Listener::new(
                    pool.clone(),
                    cache.clone(),
                    st.listener_heartbeat,
                    st.listener_timeout,
                )
                .spawn();
                cache.spawn_api_key_use_flusher(Duration::from_secs(10));
            }
            let keys = KeyWriter::postgres(pool.clone(), Some(cache.clone()));
            BuiltStore {
                cache,
                push: true,
                keys,
                pool: Some(pool),
            }
        }
    };
    Ok(built)
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

    // The proxy listener's application is the connection edge in front of pingora's
    // `HttpProxy` (connection cap, head deadline, keep-alive idle timeout).
    let mut http = pingora_proxy::http_proxy(&server.configuration, Gateway::new(shared.clone()));
    http.server_options = Some(server_options(keepalive_timeout));
    let edge_metrics =
        EdgeMetrics::register(&shared.metrics.registry).map_err(AppError::Metrics)?;
    let mut proxy = Service::new(
        "portcullis proxy".into(),
        Edge::new(http, shared.clone(), edge_metrics),
    );
    proxy.add_tcp(&listen);
    let mut admin_svc = Service::new(
        "portcullis admin".into(),
        pingora::apps::http_app::HttpServer::new_app(AdminApp::new(shared.clone())),
    );
    admin_svc.add_tcp(&admin);
    admin_svc.threads = Some(1);
    server.add_service(proxy);
    server.add_service(admin_svc);
    for svc in extra {
        server.add_boxed_service(svc);
    }

    spawn_background(shared.clone())?;
    if let Some(mirror) = shared.services.mirror.clone() {
        let metrics = crate::mirror::schedule::SyncMetrics::register(&shared.metrics.registry)
            .map_err(AppError::Metrics)?;
        let draining = shared.clone();
        let job = crate::mirror::schedule::SyncJob::new(mirror, metrics);
        bg.spawn(job.run(move || draining.health.is_draining()));
    }
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
