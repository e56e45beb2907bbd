//! Building the long-lived parts from a config: the key sets, the policy store behind its
//! cache, the auditor, and the Umbraco callers (API user, session checks, node and version
//! look-ups, the mirror).

use super::AppError;
use crate::audit::Auditor;
use crate::authn::{Authenticator, UmbracoAuthnConfig};
use crate::config::Config;
use crate::gate::Services;
use crate::store::{
    FileStore, KeyWriter, Listener, PolicyCache, PolicyStore, PostgresStore, StoreKind,
    StoreMetrics,
};
use crate::telemetry::Metrics;
use crate::umbraco::{
    ApiUser, CredentialKind, ManagementClient, NodeResolver, Sessions, UmbracoMetrics,
};
use std::sync::Arc;
use std::time::Duration;

/// Builds the long-lived services on the background runtime: key sets (fetched now, so
/// readiness waits for them), the policy store with its cache and invalidation, the auditor.
pub(super) async fn build_services(
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
fn build_sessions(
    config: &Config,
    api_user: Option<&Arc<ApiUser>>,
) -> Result<UmbracoCallers, AppError> {
    let client = || management_client(config);
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
    let client = management_client(config)?;
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
    let client = management_client(config)?;
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

/// A client of Umbraco's Management API on the configured upstream (and `Host`).
fn management_client(config: &Config) -> Result<ManagementClient, AppError> {
    ManagementClient::new(
        config.management_upstream,
        config.file.upstream.host.as_deref(),
    )
    .map_err(AppError::Umbraco)
}
