//! The decision pipeline: what `request_filter` calls. Classifies the request (`request`),
//! authenticates the caller (`authn`), resolves permissions from the cache (`store`) and decides
//! (`authz`). Knows nothing of pingora: it takes `http::request::Parts` and bytes.

use crate::authn::{AuthMethods, Authenticator, Principal};
use crate::authz::{authorize, Decision, DecisionPolicy, DenyReason, Resolved, UserAccess, Who};
use crate::config::{Config, Mode};
use crate::request::{Api, Classified, Classifier, PendingBody, Target};
use crate::store::PolicyCache;
use crate::umbraco::{NodeResolver, Sessions};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

mod explain;
mod umbraco;
mod verdict;
mod wait;
mod warm;

pub use explain::{explain_principal, Explanation};
pub use verdict::Verdict;
use verdict::{concluded, passthrough, refused, Evaluation};
use wait::bounded;

/// The parts built once per process (key sets, caches, the API user's token) that survive
/// config reloads.
pub struct Services {
    pub authn: Authenticator,
    pub cache: PolicyCache,
    /// The gateway's own Umbraco identity, when `[upstream.credential]` configures one.
    pub api_user: Option<Arc<crate::umbraco::ApiUser>>,
    /// The `umbraco` authenticator's session checks, when `[authn.umbraco]` is configured.
    pub sessions: Option<Arc<Sessions>>,
    /// Nodes the store does not know, resolved through Umbraco's tree API (needs the API user).
    pub nodes: Option<Arc<NodeResolver>>,
    /// Document versions' owners, asked of Umbraco's document-version API (needs the API user).
    pub versions: Option<Arc<crate::umbraco::VersionResolver>>,
    /// The Umbraco mirror (webhooks), with a Postgres store and an API user.
    pub mirror: Option<crate::mirror::Mirror>,
}

impl Services {
    /// Services with only an authenticator and a policy cache: no Umbraco API user, sessions,
    /// node or version resolvers, nor mirror (`explain` and the benches).
    pub fn local(authn: Authenticator, cache: PolicyCache) -> Services {
        Services {
            authn,
            cache,
            api_user: None,
            sessions: None,
            nodes: None,
            versions: None,
            mirror: None,
        }
    }
}

/// Where a request's decision stands: decided, waiting for something not cached, or waiting
/// for the body.
pub enum Progress {
    Decided(Box<Verdict>),
    /// Something the decision needs is not cached (a token to verify, a user or node to load,
    /// an Umbraco session to check): finish with [`Gate::resume`]. Only [`Gate::decide_now`]
    /// returns it.
    Wait(Resume),
    /// The caller is authenticated and passed every check the head can answer (sections, user
    /// state, nodes named in the path or query): read at most `limit` body bytes, then call
    /// [`Gate::decide_with_body`] with this principal. Nothing of the body was needed so far.
    ReadBody {
        pending: Box<PendingBody>,
        principal: Arc<Principal>,
        limit: usize,
    },
}

/// Everything needed to decide, built once per config (re)load.
pub struct Gate {
    mode: Mode,
    classifier: Arc<Classifier>,
    policy: DecisionPolicy,
    services: Arc<Services>,
    /// `store.decision_deadline`: the most a decision waits for the store.
    deadline: Duration,
    /// Which authenticators each API accepts.
    methods: AuthMethods,
    /// Umbraco's cookie-name suffix (`[authn.umbraco] site_name`).
    site_name: String,
}

impl Gate {
    /// Builds the pipeline from a validated config and the long-lived services.
    pub fn new(config: &Config, services: Arc<Services>) -> Gate {
        Gate {
            mode: config.file.mode,
            classifier: config.classifier.clone(),
            policy: config.file.authz.clone(),
            services,
            deadline: config.file.store.decision_deadline,
            methods: config.file.authn.methods(),
            site_name: config
                .file
                .authn
                .umbraco
                .as_ref()
                .map(|u| u.site_name.clone())
                .unwrap_or_default(),
        }
    }

    pub fn services(&self) -> &Arc<Services> {
        &self.services
    }

    /// Decides from the request head (`raw_target` as received, so fragments are seen), or
    /// asks for the body when the route carries node ids or cultures in it. A body is asked for
    /// only after the caller authenticated and passed the head's checks, so an anonymous or
    /// sectionless caller is refused (401/403) before a byte of its body is read.
    pub async fn decide(&self, parts: &http::request::Parts, raw_target: &[u8]) -> Progress {
        match self.decide_now(parts, raw_target) {
            Progress::Wait(resume) => self.resume(parts, resume).await,
            progress => progress,
        }
    }

    /// [`Gate::decide`] without waiting: decided from the caches (the warm path: the verified
    /// token, the API key, the user and every node the decision needs are cached and fresh), or
    /// [`Progress::Wait`] with how far it got, to be finished by [`Gate::resume`]: the resumed decision
    /// continues where this one stopped (a credential is never checked twice).
    pub fn decide_now(&self, parts: &http::request::Parts, raw_target: &[u8]) -> Progress {
        let classified =
            self.classifier
                .classify_raw(parts.method.as_str(), raw_target, &parts.headers);
        let (target, uri) = match classified {
            Classified::Passthrough { uri } => {
                return Progress::Decided(Box::new(Verdict {
                    uri: Some(uri),
                    ..Verdict::unprotected()
                }))
            }
            // The development placeholder allows what no route matches; malformed stays refused.
            Classified::Reject(DenyReason::NoRoute) if self.mode == Mode::Passthrough => {
                return Progress::Decided(Box::new(Verdict {
                    api: api_of(parts.uri.path()),
                    ..Verdict::unprotected()
                }))
            }
            Classified::Reject(reason) => {
                return Progress::Decided(Box::new(Verdict {
                    api: api_of(parts.uri.path()),
                    ..Verdict::denied(reason)
                }))
            }
            Classified::NeedsBody(pending) => {
                return Progress::Wait(Resume(Box::new(At::Body(pending))))
            }
            Classified::Ready { target, uri } => (target, uri),
        };
        if self.mode == Mode::Passthrough {
            return Progress::Decided(Box::new(passthrough(target, uri)));
        }
        let principal = match self.authenticate_now(parts, target.api) {
            Some(Ok(p)) => p,
            Some(Err(reason)) => return Progress::Decided(Box::new(refused(target, uri, reason))),
            None => return Progress::Wait(Resume(Box::new(At::Authenticate { target, uri }))),
        };
        let access = match self.access_now(&principal) {
            Some(a) => a,
            None => {
                return Progress::Wait(Resume(Box::new(At::Access {
                    principal,
                    target,
                    uri,
                })))
            }
        };
        let Some(resolved) = self.resolve_now(&target, &principal, access.as_deref()) else {
            return Progress::Wait(Resume(Box::new(At::Resolve {
                principal,
                access,
                target,
                uri,
            })));
        };
        let evaluation = self.conclude(principal, access, &target, &resolved, false);
        Progress::Decided(Box::new(concluded(target, Some(uri), Ok(evaluation))))
    }

    /// Finishes a decision [`Gate::decide_now`] could not, waiting for what was missing (the
    /// store and Umbraco waits together end at `store.decision_deadline`): decided, or
    /// [`Progress::ReadBody`] (never [`Progress::Wait`]).
    pub async fn resume(&self, parts: &http::request::Parts, resume: Resume) -> Progress {
        let deadline = Instant::now() + self.deadline;
        let verdict = match *resume.0 {
            At::Body(pending) => return self.before_body(parts, pending).await,
            At::Authenticate { target, uri } => {
                match self.authenticate(parts, target.api, deadline).await {
                    Ok(principal) => {
                        self.authorize_in(principal, target, Some(uri), deadline)
                            .await
                    }
                    Err(reason) => refused(target, uri, reason),
                }
            }
            At::Access {
                principal,
                target,
                uri,
            } => {
                self.authorize_in(principal, target, Some(uri), deadline)
                    .await
            }
            At::Resolve {
                principal,
                access,
                target,
                uri,
            } => {
                let evaluation = self
                    .evaluate_with(principal, access, &target, false, deadline)
                    .await;
                concluded(target, Some(uri), evaluation)
            }
        };
        Progress::Decided(Box::new(verdict))
    }

    /// Authenticates and runs the decision on what the head says (the body's node lists are
    /// still empty, and an empty list passes): a deny here needs no body. Every check of this
    /// pre-decision is also part of the final one, so it never refuses what the body would allow.
    async fn before_body(&self, parts: &http::request::Parts, pending: PendingBody) -> Progress {
        if self.mode == Mode::Passthrough {
            let uri = pending.uri.clone();
            return Progress::Decided(Box::new(passthrough(pending.target, uri)));
        }
        let deadline = Instant::now() + self.deadline;
        let principal = match self.authenticate(parts, pending.target.api, deadline).await {
            Ok(p) => p,
            Err(reason) => {
                return Progress::Decided(Box::new(Verdict::for_pending(&pending, reason)))
            }
        };
        let verdict = self
            .authorize_in(principal.clone(), pending.target.clone(), None, deadline)
            .await;
        match verdict.decision {
            Decision::Allow(_) => Progress::ReadBody {
                pending: Box::new(pending),
                principal,
                limit: self.classifier.body_limit(),
            },
            Decision::Deny(_) => Progress::Decided(Box::new(Verdict {
                uri: Some(pending.uri),
                ..verdict
            })),
        }
    }

    /// Finishes a decision once the body has been read (these exact bytes are forwarded), for
    /// the principal [`Progress::ReadBody`] authenticated.
    pub async fn decide_with_body(
        &self,
        pending: &PendingBody,
        principal: Arc<Principal>,
        body: &[u8],
    ) -> Verdict {
        match self.classifier.complete(pending, body) {
            Ok((target, uri)) => self.authorize_as(principal, target, Some(uri)).await,
            Err(reason) => Verdict {
                principal: Some(principal),
                ..Verdict::for_pending(pending, reason)
            },
        }
    }

    /// Authorises a classified request for an authenticated principal (after its body was
    /// read: the store gets a fresh `decision_deadline`).
    async fn authorize_as(
        &self,
        principal: Arc<Principal>,
        target: Target,
        uri: Option<String>,
    ) -> Verdict {
        let deadline = Instant::now() + self.deadline;
        self.authorize_in(principal, target, uri, deadline).await
    }

    /// Authorises for an authenticated principal; the store waits end at `deadline`.
    async fn authorize_in(
        &self,
        principal: Arc<Principal>,
        target: Target,
        uri: Option<String>,
        deadline: Instant,
    ) -> Verdict {
        let evaluation = self.evaluate_in(principal, &target, false, deadline).await;
        concluded(target, uri, evaluation)
    }

    /// Resolves and decides; every store wait together ends at `deadline` (503 after it).
    async fn evaluate_in(
        &self,
        principal: Arc<Principal>,
        target: &Target,
        with_evidence: bool,
        deadline: Instant,
    ) -> Result<Evaluation, DenyReason> {
        let access = match self.access_now(&principal) {
            Some(a) => a,
            None => Box::pin(bounded(deadline, self.access(&principal))).await?,
        };
        if let Some(resolved) = self.resolve_now(target, &principal, access.as_deref()) {
            return Ok(self.conclude(principal, access, target, &resolved, with_evidence));
        }
        self.evaluate_with(principal, access, target, with_evidence, deadline)
            .await
    }

    /// Resolves (waiting for the store) and decides, for a principal whose access is known.
    async fn evaluate_with(
        &self,
        principal: Arc<Principal>,
        access: Option<Arc<UserAccess>>,
        target: &Target,
        with_evidence: bool,
        deadline: Instant,
    ) -> Result<Evaluation, DenyReason> {
        let who = who(&principal, access.as_deref());
        let resolved = Box::pin(bounded(deadline, self.resolve(target, &principal, &who))).await?;
        Ok(self.conclude(principal, access, target, &resolved, with_evidence))
    }

    /// `authz.delivery_default_culture`, which wins over the mirrored default language.
    fn configured_culture(&self) -> Option<Arc<str>> {
        self.policy
            .delivery_default_culture
            .as_deref()
            .map(Arc::from)
    }

    /// The decision on resolved facts (and its evidence, for explain).
    fn conclude(
        &self,
        principal: Arc<Principal>,
        access: Option<Arc<UserAccess>>,
        target: &Target,
        resolved: &Resolved,
        with_evidence: bool,
    ) -> Evaluation {
        let who = who(&principal, access.as_deref());
        let decision = authorize(target, &who, resolved, &self.policy);
        let explanation =
            with_evidence.then(|| crate::authz::explain(target, &who, resolved, &self.policy));
        let groups = access
            .map(|a| a.groups.iter().map(|g| g.alias.clone()).collect())
            .unwrap_or_default();
        Evaluation {
            decision,
            principal,
            groups,
            explanation,
        }
    }
}

/// Where a decision [`Gate::decide_now`] could not finish resumes ([`Gate::resume`]).
pub struct Resume(Box<At>);

enum At {
    /// The route reads the body: authenticate and pre-decide on the head first.
    Body(PendingBody),
    /// The credential needs a wait (a token to verify, an API key or session to load).
    Authenticate { target: Target, uri: String },
    /// The principal's user access needs the store.
    Access {
        principal: Arc<Principal>,
        target: Target,
        uri: String,
    },
    /// A node (or route) the decision needs is not cached.
    Resolve {
        principal: Arc<Principal>,
        access: Option<Arc<UserAccess>>,
        target: Target,
        uri: String,
    },
}

/// Who is asking, with the resolved access.
fn who<'a>(principal: &'a Principal, access: Option<&'a UserAccess>) -> Who<'a> {
    let who = Who::new(principal);
    match access {
        Some(a) => who.with_access(a),
        None => who,
    }
}

/// The API a raw path belongs to, for labels of requests refused before classification.
fn api_of(path: &str) -> Option<Api> {
    let p = path.as_bytes();
    let starts = |prefix: &str| {
        p.len() >= prefix.len() && p[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
    };
    if starts("/umbraco/management/api") {
        Some(Api::Management)
    } else if starts("/umbraco/delivery/api") {
        Some(Api::Delivery)
    } else {
        None
    }
}
