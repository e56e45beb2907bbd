//! What the pipeline concludes about one request ([`Verdict`]), and how it is built from an
//! evaluation, a refusal or the development passthrough.

use crate::authn::Principal;
use crate::authz::{Decision, DenyReason, Evidence, Grant, Permit};
use crate::request::route::{PASSTHROUGH, UNMATCHED};
use crate::request::{Api, PendingBody, Target};
use std::sync::Arc;

/// What the pipeline concluded about one request, with what the audit trail needs.
#[derive(Debug, Clone)]
pub struct Verdict {
    pub decision: Decision,
    /// `None` for paths outside the protected prefixes.
    pub api: Option<Api>,
    pub route: Arc<str>,
    /// Canonical path and query to forward (`None` when the request could not be read).
    pub uri: Option<String>,
    pub target: Option<Target>,
    pub principal: Option<Arc<Principal>>,
    /// Aliases of the groups the caller acts with.
    pub groups: Vec<Arc<str>>,
}

impl Verdict {
    /// A deny for a request whose route reads the body (its API and route are known).
    pub fn for_pending(pending: &PendingBody, reason: DenyReason) -> Verdict {
        Verdict {
            api: Some(pending.target.api),
            route: pending.target.route.clone(),
            uri: Some(pending.uri.clone()),
            target: Some(pending.target.clone()),
            ..Verdict::denied(reason)
        }
    }

    /// A deny before anything was classified.
    pub fn denied(reason: DenyReason) -> Verdict {
        Verdict {
            decision: Decision::Deny(reason),
            api: None,
            route: UNMATCHED.clone(),
            uri: None,
            target: None,
            principal: None,
            groups: Vec::new(),
        }
    }

    /// An allow of what the gateway does not protect: an unprotected prefix, or what no route
    /// matches under the development placeholder (`mode = "passthrough"`).
    pub fn unprotected() -> Verdict {
        let route = PASSTHROUGH.clone();
        Verdict {
            decision: allow(&route, None, Grant::Passthrough),
            route,
            ..Verdict::denied(DenyReason::NoRoute)
        }
    }
}

/// What evaluating an authenticated request concluded.
pub(super) struct Evaluation {
    pub(super) decision: Decision,
    pub(super) principal: Arc<Principal>,
    pub(super) groups: Vec<Arc<str>>,
    pub(super) explanation: Option<Evidence>,
}

/// The verdict on a classified request: the evaluation's decision, or the deny it failed with.
pub(super) fn concluded(
    target: Target,
    uri: Option<String>,
    evaluation: Result<Evaluation, DenyReason>,
) -> Verdict {
    let mut verdict = Verdict {
        api: Some(target.api),
        route: target.route.clone(),
        uri,
        ..Verdict::denied(DenyReason::NoRoute)
    };
    match evaluation {
        Ok(e) => {
            verdict.decision = e.decision;
            verdict.principal = Some(e.principal);
            verdict.groups = e.groups;
        }
        Err(reason) => verdict.decision = Decision::Deny(reason),
    }
    verdict.target = Some(target);
    verdict
}

/// A classified request refused before authorisation (authentication failed).
pub(super) fn refused(target: Target, uri: String, reason: DenyReason) -> Verdict {
    Verdict {
        api: Some(target.api),
        route: target.route.clone(),
        uri: Some(uri),
        target: Some(target),
        ..Verdict::denied(reason)
    }
}

/// The development placeholder's allow for a classified request.
pub(super) fn passthrough(target: Target, uri: String) -> Verdict {
    Verdict {
        decision: allow(&target.route, None, Grant::Passthrough),
        api: Some(target.api),
        route: target.route.clone(),
        uri: Some(uri),
        target: Some(target),
        ..Verdict::denied(DenyReason::NoRoute)
    }
}

/// An allow of `route` by one grant.
fn allow(route: &Arc<str>, principal: Option<Arc<str>>, grant: Grant) -> Decision {
    Decision::Allow(Permit {
        route: route.clone(),
        principal,
        via: vec![grant],
    })
}
