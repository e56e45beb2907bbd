//! The gateway's own Umbraco identity: an API user's access token, obtained with the OAuth2
//! client-credentials grant (`POST …/security/back-office/token`, `BackOfficeController.Token`
//! in Umbraco; errors shaped by OpenIddict: 401 `invalid_client`, 400 otherwise).
//!
//! One token is shared by every request and background task. It is used until shortly before it
//! expires (`refresh_before`, at most half its lifetime); a refresh is single flight: the first
//! caller fetches, callers meanwhile keep using the still-valid token (or wait when there is
//! none). When Umbraco rejects the token anyway (revoked), [`ApiUser::replace`] fetches a new
//! one once for all the requests that saw the rejection.

use arc_swap::ArcSwapOption;
use serde::Deserialize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::config::CredentialConfig;
use super::{parse_json, ManagementClient, UmbracoError, UmbracoMetrics, TOKEN_PATH};

/// Lifetime assumed when the token answer has no `expires_in` (Umbraco's default access-token
/// lifetime: `GlobalSettings.TimeOut` 20 min / 4).
const DEFAULT_LIFETIME: Duration = Duration::from_secs(300);
/// The longest lifetime believed, whatever `expires_in` says.
const MAX_LIFETIME: Duration = Duration::from_secs(24 * 3600);
/// Token answers are small; anything larger is refused.
const ANSWER_LIMIT: usize = 64 * 1024;

/// An access token for the API user. `Debug` never shows it.
pub struct UpstreamToken {
    header: http::HeaderValue,
    refresh_at: Instant,
    expires_at: Instant,
    generation: u64,
}

impl std::fmt::Debug for UpstreamToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamToken")
            .field("token", &"[redacted]")
            .field("generation", &self.generation)
            .finish()
    }
}

impl UpstreamToken {
    /// `Bearer <token>`, marked sensitive, for the upstream `Authorization` header.
    pub fn authorization(&self) -> &http::HeaderValue {
        &self.header
    }
    /// Which fetch produced this token (1 for the first); a rejected token's generation tells
    /// [`ApiUser::replace`] whether someone already replaced it.
    pub fn generation(&self) -> u64 {
        self.generation
    }
    /// Whether the token is past its refresh point.
    fn due(&self, now: Instant) -> bool {
        now >= self.refresh_at
    }
    fn expired(&self, now: Instant) -> bool {
        now >= self.expires_at
    }
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    token_type: Option<String>,
    expires_in: Option<u64>,
}

#[derive(Deserialize, Default)]
struct ErrorAnswer {
    error: Option<String>,
}

/// The API user's token source. Share it in an `Arc`.
pub struct ApiUser {
    client: ManagementClient,
    client_id: String,
    secret: String,
    refresh_before: Duration,
    timeout: Duration,
    current: ArcSwapOption<UpstreamToken>,
    refresh: tokio::sync::Mutex<()>,
    generation: AtomicU64,
    metrics: UmbracoMetrics,
}

impl std::fmt::Debug for ApiUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiUser")
            .field("client_id", &self.client_id)
            .field("secret", &"[redacted]")
            .finish()
    }
}

impl ApiUser {
    /// Reads the client secret from `cfg.client_secret_env`. No I/O besides the environment.
    pub fn new(
        cfg: &CredentialConfig,
        client: ManagementClient,
        metrics: UmbracoMetrics,
    ) -> Result<Self, UmbracoError> {
        let secret =
            std::env::var(&cfg.client_secret_env).map_err(|source| UmbracoError::MissingEnv {
                name: cfg.client_secret_env.clone(),
                source,
            })?;
        Ok(Self::with_secret(cfg, secret, client, metrics))
    }

    /// Like [`new`](ApiUser::new) with the secret given (development mode, tests).
    pub fn with_secret(
        cfg: &CredentialConfig,
        secret: String,
        client: ManagementClient,
        metrics: UmbracoMetrics,
    ) -> Self {
        ApiUser {
            client,
            client_id: cfg.client_id.clone(),
            secret,
            refresh_before: cfg.refresh_before,
            timeout: cfg.timeout,
            current: ArcSwapOption::empty(),
            refresh: tokio::sync::Mutex::new(()),
            generation: AtomicU64::new(0),
            metrics,
        }
    }

    /// The configured client id (`umbraco-back-office-…`): the upstream identity in audit rows.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// How many tokens were fetched so far.
    pub fn fetches(&self) -> u64 {
        self.generation.load(Ordering::Relaxed)
    }

    /// A usable token: the cached one when it is not due for refresh; otherwise one caller
    /// fetches a new one while others keep using the old one until it expires. When the
    /// refresh fails and the old token has not expired, the old token is returned (and the
    /// failure logged); with no valid token the error is returned.
    pub async fn token(&self) -> Result<Arc<UpstreamToken>, UmbracoError> {
        if let Some(t) = self.current.load_full() {
            let now = Instant::now();
            if !t.due(now) {
                return Ok(t);
            }
            if !t.expired(now) {
                // Somebody is refreshing: the old token is still valid meanwhile.
                let Ok(_guard) = self.refresh.try_lock() else {
                    return Ok(t);
                };
                return self.refresh_locked().await;
            }
        }
        let _guard = self.refresh.lock().await;
        self.refresh_locked().await
    }

    /// A token to use instead of `rejected`, which Umbraco answered 401 to. Concurrent callers
    /// holding the same rejected token share one fetch; a caller whose token was already
    /// replaced gets the replacement.
    pub async fn replace(
        &self,
        rejected: &UpstreamToken,
    ) -> Result<Arc<UpstreamToken>, UmbracoError> {
        let _guard = self.refresh.lock().await;
        if let Some(t) = self.current.load_full() {
            if t.generation != rejected.generation && !t.expired(Instant::now()) {
                return Ok(t);
            }
        }
        self.current.store(None);
        self.fetch().await
    }

    /// With the refresh lock held: the token another caller just fetched, else a new one
    /// (falling back to the current token while it has not expired).
    async fn refresh_locked(&self) -> Result<Arc<UpstreamToken>, UmbracoError> {
        let now = Instant::now();
        let old = match self.current.load_full() {
            Some(t) if !t.due(now) => return Ok(t),
            Some(t) if !t.expired(now) => t,
            _ => return self.fetch().await,
        };
        match self.fetch().await {
            Ok(t) => Ok(t),
            Err(e) => {
                tracing::warn!(
                    umbraco.client_id = %self.client_id,
                    error = %crate::config::error_chain(&e),
                    "api user token refresh failed; using the current token until it expires"
                );
                Ok(old)
            }
        }
    }

    /// One call to the token endpoint; stores and returns the new token.
    async fn fetch(&self) -> Result<Arc<UpstreamToken>, UmbracoError> {
        let started = Instant::now();
        let outcome = self.request_token().await;
        self.metrics.observe("token", started.elapsed(), &outcome);
        let (value, lifetime) = outcome?;
        let header = http::HeaderValue::from_str(&format!("Bearer {value}")).map_err(|_| {
            UmbracoError::Unusable {
                path: TOKEN_PATH,
                why: "access_token is not a header value",
            }
        })?;
        let mut header = header;
        header.set_sensitive(true);
        let margin = self.refresh_before.min(lifetime / 2);
        let token = Arc::new(UpstreamToken {
            header,
            refresh_at: started + lifetime - margin,
            expires_at: started + lifetime,
            generation: self.generation.fetch_add(1, Ordering::Relaxed) + 1,
        });
        self.current.store(Some(token.clone()));
        tracing::debug!(umbraco.client_id = %self.client_id, token.generation = token.generation, token.lifetime_s = lifetime.as_secs(), "api user token fetched");
        Ok(token)
    }

    async fn request_token(&self) -> Result<(String, Duration), UmbracoError> {
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", self.client_id.as_str()),
            ("client_secret", self.secret.as_str()),
        ];
        let req = self
            .client
            .request(reqwest::Method::POST, TOKEN_PATH, self.timeout)
            .form(&form);
        let answer = self.client.send(TOKEN_PATH, req, ANSWER_LIMIT).await?;
        if answer.status.is_client_error() {
            let err: ErrorAnswer = serde_json::from_slice(&answer.body).unwrap_or_default();
            return Err(UmbracoError::Rejected {
                client_id: self.client_id.clone(),
                status: answer.status.as_u16(),
                error: err.error.unwrap_or_default(),
            });
        }
        if !answer.status.is_success() {
            return Err(UmbracoError::Status {
                path: TOKEN_PATH,
                status: answer.status.as_u16(),
            });
        }
        let t: TokenAnswer = parse_json(TOKEN_PATH, &answer.body)?;
        let unusable = |why| UmbracoError::Unusable {
            path: TOKEN_PATH,
            why,
        };
        if t.access_token.is_empty() || t.access_token.bytes().any(|b| !b.is_ascii_graphic()) {
            return Err(unusable("access_token is empty or not visible ascii"));
        }
        if t.token_type
            .as_deref()
            .is_some_and(|ty| !ty.eq_ignore_ascii_case("bearer"))
        {
            return Err(unusable("token_type is not bearer"));
        }
        let lifetime = match t.expires_in {
            Some(0) => return Err(unusable("expires_in is 0")),
            Some(s) => Duration::from_secs(s).min(MAX_LIFETIME),
            None => DEFAULT_LIFETIME,
        };
        Ok((t.access_token, lifetime))
    }
}
