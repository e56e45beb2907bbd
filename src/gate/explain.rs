//! The gate's explanations: the decision with its evidence, for `portcullis explain` and
//! `POST /v1/explain`, classified and authenticated exactly as a request is.

use super::{Evaluation, Gate};
use crate::authn::{Principal, PrincipalKind, Subject};
use crate::authz::{DenyReason, Evidence};
use crate::request::{Classified, Target};
use std::sync::Arc;
use tokio::time::Instant;

impl Gate {
    /// The decision with its evidence, for `portcullis explain` and `POST /v1/explain`.
    pub async fn explain(
        &self,
        parts: &http::request::Parts,
        target: &Target,
    ) -> Result<Evidence, DenyReason> {
        self.evaluate(parts, target, true)
            .await?
            .explanation
            .ok_or(DenyReason::StoreUnavailable)
    }

    /// The decision with its evidence for the registered user `external_id`, skipping
    /// authentication (`portcullis explain --principal`). The principal is
    /// `explain:{external_id}`, a user from the pseudo-issuer `explain` with no mapped groups:
    /// only what the store grants that user counts.
    pub async fn explain_as(
        &self,
        external_id: &str,
        target: &Target,
    ) -> Result<Evidence, DenyReason> {
        let principal = explain_principal(external_id);
        self.evaluate_as(principal, target, true)
            .await?
            .explanation
            .ok_or(DenyReason::StoreUnavailable)
    }

    /// Classifies `method raw_target` with this config's route table exactly as a request is
    /// (completing with `body` when the route reads it), then explains the decision for the
    /// credential in `parts` or, when `as_user` is given, for that user.
    pub async fn explain_request(
        &self,
        parts: &http::request::Parts,
        raw_target: &[u8],
        body: Option<&[u8]>,
        as_user: Option<&str>,
    ) -> Explanation {
        let classified =
            self.classifier
                .classify_raw(parts.method.as_str(), raw_target, &parts.headers);
        let target = match classified {
            Classified::Passthrough { uri } => return Explanation::Passthrough { uri },
            Classified::Reject(reason) => return Explanation::Rejected(reason),
            Classified::Ready { target, .. } => target,
            Classified::NeedsBody(pending) => {
                let body = body.unwrap_or_default();
                if body.len() > self.classifier.body_limit() {
                    return Explanation::Rejected(DenyReason::BodyTooLarge);
                }
                match self.classifier.complete(&pending, body) {
                    Ok((target, _)) => target,
                    Err(reason) => return Explanation::Rejected(reason),
                }
            }
        };
        let result = match as_user {
            Some(user) => self.explain_as(user, &target).await,
            None => self.explain(parts, &target).await,
        };
        match result {
            Ok(e) => Explanation::Decided(Box::new(e)),
            Err(reason) => Explanation::Rejected(reason),
        }
    }

    async fn evaluate(
        &self,
        parts: &http::request::Parts,
        target: &Target,
        with_evidence: bool,
    ) -> Result<Evaluation, DenyReason> {
        let deadline = Instant::now() + self.deadline;
        let principal = self.authenticate(parts, target.api, deadline).await?;
        self.evaluate_in(principal, target, with_evidence, deadline)
            .await
    }

    async fn evaluate_as(
        &self,
        principal: Principal,
        target: &Target,
        with_evidence: bool,
    ) -> Result<Evaluation, DenyReason> {
        let deadline = Instant::now() + self.deadline;
        self.evaluate_in(Arc::new(principal), target, with_evidence, deadline)
            .await
    }
}

/// What [`Gate::explain_request`] found: the request never reached a decision (forwarded
/// unchecked, or refused before authorisation), or the decision with its evidence.
#[derive(Debug, Clone)]
pub enum Explanation {
    Passthrough { uri: String },
    Rejected(DenyReason),
    Decided(Box<Evidence>),
}

impl Explanation {
    /// The documented JSON: the explanation, `{"rejected": id}` or
    /// `{"passthrough": true, "uri": …}`.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Explanation::Passthrough { uri } => {
                serde_json::json!({"passthrough": true, "uri": uri})
            }
            Explanation::Rejected(r) => serde_json::json!({"rejected": r.as_str()}),
            Explanation::Decided(e) => serde_json::to_value(e)
                .unwrap_or_else(|e| serde_json::json!({"error": e.to_string()})),
        }
    }
}

/// The principal `explain --principal` acts as (see [`Gate::explain_as`]).
pub fn explain_principal(external_id: &str) -> Principal {
    Principal {
        id: format!("explain:{external_id}").into(),
        kind: PrincipalKind::Jwt {
            issuer: Arc::from("explain"),
        },
        subject: Subject::User {
            external_id: external_id.to_owned(),
            mapped_groups: Vec::new(),
            idp_groups: Vec::new(),
        },
    }
}
