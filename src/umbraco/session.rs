//! The `umbraco` authenticator: a caller holding one of Umbraco's own (opaque) access tokens is
//! who Umbraco says it is. The credential parts — the `Authorization` value exactly as received
//! and, for the back-office form, the one access cookie — and nothing else of the request are
//! sent to `GET user/current`:
//! - 200: the principal is that user, with the access built from the answer ([`current_user`]);
//! - 401: `invalid_token` (`inactive`); 403 (a user who is not approved, `BackOfficeHandler`):
//!   `user_disabled`; both remembered for `negative_ttl`;
//! - anything else, or no answer within `timeout`: an error (the gate fails closed with 503),
//!   never cached.
//!
//! Answers are cached by the SHA-256 of the credential parts (never the token itself) for
//! `session_ttl` (`user/current` does not tell a token's lifetime, so nothing shorter is known),
//! in a cache bounded by the estimated bytes of what it holds; concurrent misses of one
//! credential share one upstream call.
//!
//! [`current_user`]: super::current_user

use moka::future::Cache;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

use super::current_user::{CurrentUser, CURRENT_USER_PATH};
use super::tree::NodeResolver;
use super::{parse_json, ManagementClient, UmbracoError};
use crate::authn::openiddict::AccessCookie;
use crate::authn::{Principal, PrincipalKind, Subject, UmbracoAuthnConfig};
use crate::authz::{DenyReason, NodePath, TokenProblem};
use crate::store::PolicyCache;

/// `user/current` answers grow with the user's granular entries; this bounds one.
const ANSWER_LIMIT: usize = 4 * 1024 * 1024;
/// The weight of a remembered rejection.
const REJECTION_WEIGHT: u32 = 64;

/// What Umbraco said about one credential.
#[derive(Debug, Clone)]
pub enum SessionOutcome {
    /// The user's principal (`umbraco:{user key}`, with the access), made once per answer and
    /// shared by every request the answer is remembered for.
    User(Arc<Principal>),
    Rejected(DenyReason),
}

struct Ttls {
    positive: Duration,
    negative: Duration,
}

impl moka::Expiry<[u8; 32], Arc<(SessionOutcome, u32)>> for Ttls {
    fn expire_after_create(
        &self,
        _: &[u8; 32],
        value: &Arc<(SessionOutcome, u32)>,
        _: Instant,
    ) -> Option<Duration> {
        Some(match value.0 {
            SessionOutcome::User(_) => self.positive,
            SessionOutcome::Rejected(_) => self.negative,
        })
    }
}

/// The credential parts sent to `user/current`.
#[derive(Clone, Copy)]
pub struct CredentialParts<'a> {
    /// The `Authorization` header value as received.
    pub authorization: &'a http::HeaderValue,
    /// The access cookie of the `Bearer [redacted]` form.
    pub cookie: Option<&'a AccessCookie>,
}

impl CredentialParts<'_> {
    fn digest(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(b"portcullis-umbraco-session\0");
        h.update(self.authorization.as_bytes());
        if let Some(c) = self.cookie {
            h.update(b"\0cookie\0");
            h.update(c.name.as_bytes());
            h.update(b"=");
            h.update(c.value.as_bytes());
        }
        h.finalize().into()
    }
}

/// Checked Umbraco sessions. Share it in an `Arc`.
pub struct Sessions {
    client: ManagementClient,
    nodes: Option<Arc<NodeResolver>>,
    timeout: Duration,
    cache: Cache<[u8; 32], Arc<(SessionOutcome, u32)>>,
    calls: AtomicU64,
}

impl Sessions {
    /// `nodes` resolves start nodes and entries the store does not know (needs an API user).
    pub fn new(
        cfg: &UmbracoAuthnConfig,
        client: ManagementClient,
        nodes: Option<Arc<NodeResolver>>,
    ) -> Self {
        let cache = Cache::builder()
            .max_capacity(cfg.cache_bytes)
            .weigher(|_: &[u8; 32], v: &Arc<(SessionOutcome, u32)>| v.1)
            .expire_after(Ttls {
                positive: cfg.session_ttl,
                negative: cfg.negative_ttl,
            })
            .build();
        Sessions {
            client,
            nodes,
            timeout: cfg.timeout,
            cache,
            calls: AtomicU64::new(0),
        }
    }

    /// How many `user/current` calls were made.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// The resolver of unknown nodes, when an API user is configured.
    pub fn nodes(&self) -> Option<&Arc<NodeResolver>> {
        self.nodes.as_ref()
    }

    /// What Umbraco says about the credential: cached, or one shared `user/current` call.
    pub async fn check(
        &self,
        parts: CredentialParts<'_>,
        store: &PolicyCache,
    ) -> Result<SessionOutcome, Arc<UmbracoError>> {
        let hit = self
            .cache
            .try_get_with(parts.digest(), self.ask(parts, store))
            .await?;
        Ok(hit.0.clone())
    }

    async fn ask(
        &self,
        parts: CredentialParts<'_>,
        store: &PolicyCache,
    ) -> Result<Arc<(SessionOutcome, u32)>, UmbracoError> {
        let mut req = self
            .client
            .request(reqwest::Method::GET, CURRENT_USER_PATH, self.timeout)
            .header(http::header::AUTHORIZATION, parts.authorization.clone());
        if let Some(c) = parts.cookie {
            req = req.header(http::header::COOKIE, format!("{}={}", c.name, c.value));
        }
        self.calls.fetch_add(1, Ordering::Relaxed);
        let answer = self
            .client
            .send(CURRENT_USER_PATH, req, ANSWER_LIMIT)
            .await?;
        let rejected = |r| Ok(Arc::new((SessionOutcome::Rejected(r), REJECTION_WEIGHT)));
        match answer.status.as_u16() {
            200 => {}
            401 => return rejected(DenyReason::InvalidToken(TokenProblem::Inactive)),
            403 => return rejected(DenyReason::UserDisabled),
            status => {
                return Err(UmbracoError::Status {
                    path: CURRENT_USER_PATH,
                    status,
                })
            }
        }
        let user: CurrentUser = parse_json(CURRENT_USER_PATH, &answer.body)?;
        let paths = self.paths(&user, store).await?;
        let weight = user.weight();
        let access = Arc::new(user.to_access(&paths));
        let principal = Principal {
            id: format!("umbraco:{}", access.user_key).into(),
            kind: PrincipalKind::Umbraco {
                user_key: access.user_key,
            },
            subject: Subject::Umbraco(access),
        };
        Ok(Arc::new((
            SessionOutcome::User(Arc::new(principal)),
            weight,
        )))
    }

    /// The paths of the user's start nodes and entries: from the store, else the tree API.
    async fn paths(
        &self,
        user: &CurrentUser,
        store: &PolicyCache,
    ) -> Result<HashMap<Uuid, NodePath>, UmbracoError> {
        let mut out = HashMap::new();
        for key in user.document_keys().into_iter().chain(user.media_keys()) {
            let known = store.node(key).await.ok().flatten();
            let node = match (known, &self.nodes) {
                (Some(n), _) => Some(n),
                (None, Some(nodes)) => {
                    nodes
                        .node(key, store)
                        .await
                        .map_err(|e| UmbracoError::Unusable {
                            path: CURRENT_USER_PATH,
                            why: if matches!(*e, UmbracoError::Unreachable { .. }) {
                                "a tree lookup failed: umbraco unreachable"
                            } else {
                                "a tree lookup failed"
                            },
                        })?
                }
                (None, None) => None,
            };
            if let Some(n) = node {
                out.insert(key, n.path.clone());
            }
        }
        Ok(out)
    }
}
