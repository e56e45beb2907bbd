//! The decision: a classified request, who asks and the facts the store resolved → exactly one
//! [`Decision`]. Pure and sync; deny by default. Management API rules here (UMBRACO.md §2–§7),
//! Delivery API rules in `delivery.rs` (§8).
//!
//! Order of Management checks: credential kind → user state → section policy → every node,
//! user and user-group check (path access first, then every verb) → cultures. The first
//! failure is the deny reason.
//!
//! Documented choices where Portcullis is stricter than Umbraco:
//! - `scope = "branch"` (publish with descendants): Umbraco checks only the descendants;
//!   Portcullis checks the node itself too, then every descendant exactly as Umbraco does (the
//!   union across groups), without loading the subtree (`branch.rs`).
//! - A node marked trashed is treated as inside the recycle bin even if its path says otherwise.
//! - A node whose kind differs from the check's kind is treated as unknown.
//! - A node check with no node ids (an empty list in the request) addresses nothing and passes.
//! - User checks follow Umbraco `UserPermissionService`: an admin may act on any user; anyone
//!   else may not act on an admin user (`admin_required`). User-group checks follow
//!   `UserGroupPermissionService.AuthorizeAccessAsync`: an admin may act on any group; anyone
//!   else only on groups they are a member of (`user_group_not_member`). Unknown target users
//!   follow the unknown-node mode.

use super::branch::BranchVerb;
use super::explain::{evidence, located_evidence, NodeEvidence, Trace};
use super::lookup::{Resolved, Who};
use super::model::{
    NodeId, NodeInfo, NodeKind, NodePath, UserAccess, UserState, CONTENT_RECYCLE_BIN_ID,
    MEDIA_RECYCLE_BIN_ID, ROOT_ID,
};
use super::policy::{DecisionPolicy, UnknownNodeMode};
use super::resolve::{granting_start_node, resolve_at, GroupAt};
use super::route_path::{resolve_route_for, RouteAnswer};
use super::{Decision, DenyReason, Grant, Permit};
use crate::authn::{PrincipalKind, Subject};
use crate::request::{Api, CheckKind, CheckScope, NodeCheck, NodeRef, SectionPolicy, Target};
use std::sync::{Arc, LazyLock};

static ROOT_PATH: LazyLock<NodePath> = LazyLock::new(|| NodePath(Arc::from([ROOT_ID])));
static CONTENT_BIN_PATH: LazyLock<NodePath> =
    LazyLock::new(|| NodePath(Arc::from([ROOT_ID, CONTENT_RECYCLE_BIN_ID])));
static MEDIA_BIN_PATH: LazyLock<NodePath> =
    LazyLock::new(|| NodePath(Arc::from([ROOT_ID, MEDIA_RECYCLE_BIN_ID])));

/// Decides one request. Call after [`next_refs`](super::next_refs) returned nothing more to
/// fetch. Never panics, never does I/O.
pub fn authorize(
    target: &Target,
    who: &Who<'_>,
    resolved: &Resolved,
    policy: &DecisionPolicy,
) -> Decision {
    decide(target, who, resolved, policy, None)
}

/// The one implementation behind `authorize` and `explain`: `trace` collects evidence.
pub(crate) fn decide(
    target: &Target,
    who: &Who<'_>,
    resolved: &Resolved,
    policy: &DecisionPolicy,
    trace: Option<&mut Trace>,
) -> Decision {
    let mut cx = Ctx {
        target,
        who,
        resolved,
        policy,
        via: Vec::new(),
        trace,
    };
    let outcome = match target.api {
        Api::Management => cx.management(),
        Api::Delivery => cx.delivery(),
    };
    match outcome {
        Ok(()) => Decision::Allow(Permit {
            route: target.route.clone(),
            principal: match who.principal.kind {
                PrincipalKind::Anonymous => None,
                _ => Some(who.principal.id.clone()),
            },
            via: cx.via,
        }),
        Err(reason) => Decision::Deny(reason),
    }
}

/// A node located in the mirror (or the root / a recycle bin).
pub(crate) struct Located {
    pub id: NodeId,
    pub path: NodePath,
    pub trashed: bool,
    pub info: Option<Arc<NodeInfo>>,
}

/// The state of one decision.
pub(crate) struct Ctx<'r, 'w, 't> {
    pub target: &'r Target,
    pub who: &'r Who<'w>,
    pub resolved: &'r Resolved,
    pub policy: &'r DecisionPolicy,
    pub via: Vec<Grant>,
    pub trace: Option<&'t mut Trace>,
}

impl<'r, 'w, 't> Ctx<'r, 'w, 't> {
    /// Records what failed (explain only) and returns the reason.
    pub(crate) fn fail(&mut self, reason: DenyReason, why: impl FnOnce() -> String) -> DenyReason {
        if let Some(t) = self.trace.as_deref_mut() {
            t.failed = Some(why());
        }
        reason
    }

    /// Records node evidence (explain only).
    pub(crate) fn note(&mut self, ev: impl FnOnce() -> NodeEvidence) {
        if let Some(t) = self.trace.as_deref_mut() {
            t.nodes.push(ev());
        }
    }

    /// Handles a node the mirror does not know: deny, or defer with a grant.
    pub(crate) fn unknown(
        &mut self,
        mode: UnknownNodeMode,
        check: &str,
        kind: CheckKind,
        r: &NodeRef,
    ) -> Result<(), DenyReason> {
        let label = describe(r);
        let why = match r {
            NodeRef::Path(_) if check == "header:start-item" => {
                Some("a URL segment: Start-Item is resolved by a root's key only".into())
            }
            NodeRef::Path(p) => match self.route(p) {
                RouteAnswer::Ambiguous(n) => Some(format!("ambiguous: {n} documents answer to it")),
                RouteAnswer::Unknown(why) => Some(why),
                _ => None,
            },
            _ => None,
        };
        let mode_name = format!("{mode:?}").to_lowercase();
        let note = why.as_deref().unwrap_or("unknown to the content mirror");
        self.note(|| NodeEvidence {
            note: Some(format!("{note} ({mode_name})")),
            ..evidence(check, kind, r)
        });
        match mode {
            UnknownNodeMode::Deny => Err(self.fail(DenyReason::UnknownNode, || match &why {
                Some(why) => format!("node {label} is unknown: {why}"),
                None => format!("node {label} is unknown"),
            })),
            UnknownNodeMode::Defer => {
                self.via.push(Grant::DeferredToUpstream { node: label });
                Ok(())
            }
        }
    }

    /// Finds the node a reference points at. `Ok(None)`: unknown to the mirror;
    /// `Err(StoreUnavailable)`: never looked up.
    pub(crate) fn locate(
        &self,
        kind: CheckKind,
        r: &NodeRef,
    ) -> Result<Option<Located>, DenyReason> {
        let fixed = |path: &NodePath| {
            Ok(Some(Located {
                id: path.node(),
                path: path.clone(),
                trashed: false,
                info: None,
            }))
        };
        let info = match r {
            NodeRef::Root => return fixed(&ROOT_PATH),
            NodeRef::RecycleBin if kind == CheckKind::Media => return fixed(&MEDIA_BIN_PATH),
            NodeRef::RecycleBin => return fixed(&CONTENT_BIN_PATH),
            NodeRef::Key(k) => {
                let key = match kind {
                    CheckKind::DocumentVersion | CheckKind::ElementVersion => {
                        match self.resolved.version_owners.get(k) {
                            None => return Err(DenyReason::StoreUnavailable),
                            Some(None) => return Ok(None),
                            Some(Some(owner)) => *owner,
                        }
                    }
                    _ => *k,
                };
                self.resolved.nodes.get(&key)
            }
            NodeRef::Path(p) => match self.route(p) {
                RouteAnswer::NotLookedUp => None,
                RouteAnswer::Node(n) => return Ok(self.located(kind, &n)),
                RouteAnswer::Unknown(_) | RouteAnswer::Ambiguous(_) => return Ok(None),
            },
        };
        let info = match info {
            None => return Err(DenyReason::StoreUnavailable),
            Some(None) => return Ok(None),
            Some(Some(info)) => info,
        };
        Ok(self.located(kind, info))
    }

    /// An item path resolved under the request's root (`route_path`).
    pub(crate) fn route(&self, path: &str) -> RouteAnswer {
        let culture = self.policy.delivery_default_culture.as_deref();
        resolve_route_for(self.resolved, self.target.delivery.as_ref(), path, culture)
    }

    fn located(&self, kind: CheckKind, info: &Arc<NodeInfo>) -> Option<Located> {
        kind_matches(kind, info.kind).then(|| Located {
            id: info.id,
            path: info.path.clone(),
            trashed: info.trashed,
            info: Some(info.clone()),
        })
    }

    fn management(&mut self) -> Result<(), DenyReason> {
        if self.target.sections == SectionPolicy::Anonymous {
            self.via.push(Grant::Anonymous);
            return Ok(());
        }
        let access = self.user_access()?;
        self.active(access)?;
        self.sections(access)?;
        for check in &self.target.checks {
            match check.kind {
                CheckKind::User => self.user_check(access, check)?,
                CheckKind::UserGroup => self.group_check(access, check)?,
                _ => self.node_check(access, check)?,
            }
        }
        self.cultures(access)
    }

    /// The back-office access behind the principal, or why there is none.
    fn user_access(&mut self) -> Result<&'r UserAccess, DenyReason> {
        let access = self.who.access;
        match &self.who.principal.subject {
            Subject::Anonymous => Err(self.fail(DenyReason::Unauthenticated, || {
                "the route needs a back-office user".into()
            })),
            Subject::Member { .. } => Err(self.fail(DenyReason::ApiNotAllowed, || {
                "members may not call the management api".into()
            })),
            Subject::ApiKey(scope)
                if !scope.apis.contains(&Api::Management) || scope.acts_as.is_none() =>
            {
                Err(self.fail(DenyReason::ApiNotAllowed, || {
                    "the key may not call the management api (needs `management` and acts_as)"
                        .into()
                }))
            }
            Subject::ApiKey(_) | Subject::User { .. } | Subject::Umbraco(_) => match access {
                Some(a) => Ok(a),
                None => Err(self.fail(DenyReason::UnknownPrincipal, || {
                    "the user is not registered in the policy store".into()
                })),
            },
        }
    }

    /// Only active users act: disabled, locked-out and invited users are refused.
    pub(crate) fn active(&mut self, access: &UserAccess) -> Result<(), DenyReason> {
        if access.state == UserState::Active {
            return Ok(());
        }
        Err(self.fail(DenyReason::UserDisabled, || {
            format!("user state is {:?}", access.state).to_lowercase()
        }))
    }

    /// The user an API key acts as must be registered and active (both APIs).
    pub(crate) fn acting_user_is_active(&mut self) -> Result<(), DenyReason> {
        match self.who.access {
            Some(access) => self.active(access),
            None => Err(self.fail(DenyReason::UnknownPrincipal, || {
                "the user the key acts as is not registered in the policy store".into()
            })),
        }
    }

    fn sections(&mut self, access: &UserAccess) -> Result<(), DenyReason> {
        match &self.target.sections {
            SectionPolicy::Anonymous => self.via.push(Grant::Anonymous),
            SectionPolicy::Backoffice => self.via.push(Grant::Backoffice),
            SectionPolicy::Admin => {
                if !self.admitted_as_admin(access) {
                    return Err(self.fail(DenyReason::AdminRequired, || {
                        "the route needs membership of the `admin` group".into()
                    }));
                }
            }
            SectionPolicy::AnyOf(wanted) => {
                let found = access.groups.iter().find_map(|g| {
                    g.sections
                        .iter()
                        .find(|s| wanted.iter().any(|w| w.eq_ignore_ascii_case(s.as_str())))
                        .map(|s| (s, g))
                });
                match found {
                    Some((s, g)) => self.via.push(Grant::Section {
                        section: s.0.clone(),
                        group: g.alias.clone(),
                    }),
                    None => {
                        return Err(self.fail(DenyReason::NoSection, || {
                            format!("none of the sections {wanted:?}")
                        }))
                    }
                }
            }
        }
        Ok(())
    }

    fn node_check(&mut self, access: &UserAccess, check: &NodeCheck) -> Result<(), DenyReason> {
        let mode = self.policy.unknown_node(self.target.api);
        for r in &check.nodes {
            let Some(loc) = self.locate(check.kind, r)? else {
                self.unknown(mode, &check.source, check.kind, r)?;
                continue;
            };
            let start = if check.kind == CheckKind::Media {
                &access.media_start_nodes
            } else {
                &access.content_start_nodes
            };
            let Some(start_node) = granting_start_node(start, &loc.path, loc.trashed) else {
                self.note(|| located_evidence(check, r, &loc, None, None, &[]));
                return Err(self.fail(DenyReason::OutsideStartNodes, || {
                    format!("path {} is outside the calculated start nodes", loc.path)
                }));
            };
            self.via.push(Grant::StartNode {
                node: loc.id,
                start_node,
            });
            // Media has no verbs: path access is the whole check.
            if check.kind == CheckKind::Media || check.verbs.is_empty() {
                self.note(|| located_evidence(check, r, &loc, Some(start_node), None, &[]));
                continue;
            }
            let res = resolve_at(&access.groups, &loc.path);
            let mut missing: Option<(&str, NodeId)> = None;
            for verb in check.verbs.iter() {
                let Some(at) = res.grant_for(verb) else {
                    missing = Some((verb, loc.id));
                    break;
                };
                self.via.push(verb_grant(loc.id, verb, at));
                if check.scope == CheckScope::Branch {
                    match self.branch_verb(&access.groups, &loc, verb, mode)? {
                        BranchVerb::Holds(inside) => self
                            .via
                            .extend(inside.iter().map(|(id, at)| verb_grant(*id, verb, at))),
                        BranchVerb::MissingAt(id) => {
                            missing = Some((verb, id));
                            break;
                        }
                    }
                }
            }
            if self.trace.is_some() {
                let missing: Vec<String> = check
                    .verbs
                    .iter()
                    .map(|v| &**v)
                    .filter(|v| res.grant_for(v).is_none() || missing.is_some_and(|m| m.0 == *v))
                    .map(str::to_owned)
                    .collect();
                self.note(|| {
                    located_evidence(check, r, &loc, Some(start_node), Some(&res), &missing)
                });
            }
            if let Some((verb, at)) = missing {
                return Err(self.fail(DenyReason::MissingVerb, || {
                    if at == loc.id {
                        format!("`{verb}` is missing on node {at}")
                    } else {
                        format!(
                            "`{verb}` is missing on node {at}, a descendant of {}",
                            loc.id
                        )
                    }
                }));
            }
        }
        Ok(())
    }
}

fn verb_grant(node: NodeId, verb: &Arc<str>, at: &GroupAt<'_>) -> Grant {
    Grant::Verb {
        node,
        verb: verb.clone(),
        group: at.group.alias.clone(),
        entry_on: at.entry_on,
    }
}

fn kind_matches(check: CheckKind, node: NodeKind) -> bool {
    match check {
        CheckKind::Document | CheckKind::DocumentVersion => node == NodeKind::Document,
        CheckKind::Media => node == NodeKind::Media,
        CheckKind::Element | CheckKind::ElementFolder | CheckKind::ElementVersion => {
            node == NodeKind::Element
        }
        CheckKind::User | CheckKind::UserGroup => false,
    }
}

/// A node reference as text for grants and evidence.
pub(crate) fn describe(r: &NodeRef) -> String {
    match r {
        NodeRef::Key(k) => k.to_string(),
        NodeRef::Root => "root".into(),
        NodeRef::RecycleBin => "recycle-bin".into(),
        NodeRef::Path(p) => p.clone(),
    }
}

#[path = "decide_principals.rs"]
mod principals;

#[cfg(test)]
#[path = "decide_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "decide_checks_tests.rs"]
mod checks_tests;
