//! Delivery API rules (UMBRACO.md §8): API keys, key scope, preview, expand, cultures and
//! member protection. Part of the one decision path in `decide.rs`.
//!
//! Documented choices:
//! - Callers without a Portcullis key (anonymous, members, back-office users) may read only
//!   when `delivery_public` says the upstream API is public, and never with `Preview: true`
//!   (`unauthenticated`: preview needs a key). A member token alone does not unlock a private
//!   API, as in Umbraco.
//! - A key that acts as a user (`acts_as`) speaks for that user on the Delivery API too: it is
//!   refused when the user is not registered (`unknown_principal`) or not active — disabled,
//!   locked out or invited (`user_disabled`) — as its Management requests are.
//! - A key whose `apis` lacks `delivery` → `api_not_allowed`. Preview needs `key.preview` and
//!   is refused to subtree-scoped keys (`preview_not_allowed`); `expand` is refused to them
//!   (`expand_not_allowed`): linked nodes may lie anywhere.
//! - Subtree-scoped keys: every addressed node (item id, item path, `items?id=`, the `fetch=`
//!   target, `Start-Item`) must have one of the key's subtree roots as a whole segment of its
//!   path (`outside_key_scope`). `fetch=ancestors:` is refused (ancestors of a subtree root lie
//!   outside it). A query that names no node (no `fetch=`, no root `Start-Item`, no item) is
//!   refused: the upstream would search the whole tree. Umbraco's `RequestStartItemProvider`
//!   only accepts a *root* node as start item and ignores any other (the query then searches
//!   everything), so only a `Start-Item` naming a root limits a query. Unknown nodes and unknown
//!   subtree roots never defer for these keys.
//! - Culture-limited keys: Umbraco's `RequestCultureService.GetRequestedCulture` takes
//!   `Accept-Language` only when the whole value is one tag (`^[\w-]*$`); a list, q-values or
//!   a `*` are ignored, and then — as without the header — the variation context keeps the
//!   default language (`LocalizeFromAcceptLanguageHeaderAttribute` sets nothing,
//!   `DefaultCultureAccessor`). So a single tag must be one of the key's cultures, and
//!   anything else is judged as the default culture: `delivery_default_culture` when
//!   configured, else the mirrored default language (`Lookup::DefaultCulture`), allowed only
//!   when it is one of the key's cultures (`culture_not_allowed`; unknown: refused).
//! - Member protection: the nearest node on an item's path (itself first, then ancestors) with
//!   a public-access entry decides: no member → `member_required` (401); a member whose
//!   username or one of whose groups the entry names (case-insensitive, as Umbraco's
//!   `InvariantEquals`) passes; otherwise `member_not_allowed`. Query results are filtered by
//!   the upstream itself. The ancestors with an entry are found in the store's list of
//!   protected nodes (`Lookup::ProtectedNodes`), and only they are read: an item under no
//!   protected ancestor costs no ancestor lookup.

use super::decide::{describe, Ctx};
use super::explain::evidence;
use super::explain::NodeEvidence;
use super::lookup::ancestors;
use super::model::{NodeId, NodeInfo, PublicAccess};
use super::policy::UnknownNodeMode;
use super::route_path::{is_live_root, RouteAnswer};
use super::{DenyReason, Grant};
use crate::authn::{ApiKeyScope, Subject};
use crate::request::{Api, CheckKind, DeliveryQuery, FetchAxis, NodeRef};
use smallvec::SmallVec;
use std::sync::Arc;

const START_ITEM: &str = "header:start-item";

static NO_QUERY: DeliveryQuery = DeliveryQuery {
    preview: false,
    start_item: None,
    fetch: None,
    expand: false,
    culture: None,
};

impl Ctx<'_, '_, '_> {
    pub(crate) fn delivery(&mut self) -> Result<(), DenyReason> {
        let q = self.target.delivery.as_ref().unwrap_or(&NO_QUERY);
        let key: Option<&ApiKeyScope> = match &self.who.principal.subject {
            Subject::ApiKey(scope) => Some(scope),
            _ => None,
        };
        let Some(key) = key else {
            return self.keyless(q);
        };
        if !key.apis.contains(&Api::Delivery) {
            return Err(self.fail(DenyReason::ApiNotAllowed, || {
                "the key may not call the delivery api".into()
            }));
        }
        if key.acts_as.is_some() {
            self.acting_user_is_active()?;
        }
        let scoped = !key.subtree_roots.is_empty();
        if q.preview && (scoped || !key.preview) {
            return Err(self.fail(DenyReason::PreviewNotAllowed, || {
                "the key may not preview (no preview permission, or subtree-scoped)".into()
            }));
        }
        if q.expand && scoped {
            return Err(self.fail(DenyReason::ExpandNotAllowed, || {
                "expand is refused to subtree-scoped keys".into()
            }));
        }
        self.key_cultures(key, q)?;
        let roots = if scoped {
            self.scope_roots(key)?
        } else {
            SmallVec::new()
        };
        if scoped {
            if matches!(q.fetch, Some((FetchAxis::Ancestors, _))) {
                return Err(self.fail(DenyReason::OutsideKeyScope, || {
                    "fetch=ancestors: leaves the key's subtree".into()
                }));
            }
            let names_a_node = q.fetch.is_some()
                || q.start_item
                    .as_ref()
                    .is_some_and(|r| self.is_root_start_item(r))
                || self.target.checks.iter().any(|c| !c.nodes.is_empty());
            if !names_a_node {
                return Err(self.fail(DenyReason::OutsideKeyScope, || {
                    "a query without fetch= or Start-Item would search the whole tree".into()
                }));
            }
        }
        let scope = scoped.then_some(&roots[..]);
        self.addressed(scope)?;
        self.via.push(Grant::KeyScope {
            key_id: key.key_id.clone(),
        });
        Ok(())
    }

    /// Anonymous, member and user callers: only a public API, never preview.
    fn keyless(&mut self, q: &DeliveryQuery) -> Result<(), DenyReason> {
        if q.preview {
            return Err(self.fail(DenyReason::Unauthenticated, || {
                "preview needs an api key".into()
            }));
        }
        if !self.policy.delivery_public {
            return Err(self.fail(DenyReason::Unauthenticated, || {
                "the delivery api is not public: an api key is needed".into()
            }));
        }
        self.addressed(None)?;
        self.via.push(Grant::Anonymous);
        Ok(())
    }

    fn key_cultures(&mut self, key: &ApiKeyScope, q: &DeliveryQuery) -> Result<(), DenyReason> {
        if key.cultures.is_empty() {
            return Ok(());
        }
        let allowed = |c: &str| key.cultures.iter().any(|k| k.eq_ignore_ascii_case(c));
        let tag = requested_culture(Some(q));
        let ok = match tag {
            Some(t) => allowed(t),
            None => match (
                &self.policy.delivery_default_culture,
                &self.resolved.default_culture,
            ) {
                (Some(configured), _) => allowed(configured),
                (None, Some(mirrored)) => mirrored.as_deref().is_some_and(allowed),
                (None, None) => return Err(DenyReason::StoreUnavailable),
            },
        };
        if ok {
            Ok(())
        } else {
            Err(self.fail(DenyReason::CultureNotAllowed, || match tag {
                Some(t) => format!("Accept-Language `{t}` is outside the key's cultures"),
                None => "Umbraco serves its default culture here, and it is not the key's".into(),
            }))
        }
    }

    /// Whether a `Start-Item` names a root node, the only kind Umbraco's
    /// `RequestStartItemProvider.GetStartItem` accepts (it ignores any other).
    fn is_root_start_item(&self, r: &NodeRef) -> bool {
        match r {
            NodeRef::Key(k) => self
                .resolved
                .nodes
                .get(k)
                .and_then(Option::as_ref)
                .is_some_and(|n| is_live_root(n)),
            // A URL segment: the mirror holds none, so it cannot be shown to name a root.
            NodeRef::Path(_) | NodeRef::Root | NodeRef::RecycleBin => false,
        }
    }

    /// Ids of the key's subtree roots that the mirror knows (unknown roots grant nothing).
    fn scope_roots(&mut self, key: &ApiKeyScope) -> Result<SmallVec<[NodeId; 4]>, DenyReason> {
        let mut ids = SmallVec::new();
        for k in &key.subtree_roots {
            match self.resolved.nodes.get(k) {
                None => return Err(DenyReason::StoreUnavailable),
                Some(None) => {}
                Some(Some(n)) => ids.push(n.id),
            }
        }
        Ok(ids)
    }

    /// Every node the request addresses: scope (when `roots` is `Some`) and member protection.
    fn addressed(&mut self, roots: Option<&[NodeId]>) -> Result<(), DenyReason> {
        let target = self.target;
        let q = target.delivery.as_ref().unwrap_or(&NO_QUERY);
        for check in &target.checks {
            for r in &check.nodes {
                self.address(check.kind, &check.source, r, roots, true)?;
            }
        }
        if let Some(r) = &q.start_item {
            self.address(CheckKind::Document, START_ITEM, r, roots, false)?;
        }
        if let Some((_, r)) = &q.fetch {
            self.address(CheckKind::Document, "query:fetch", r, roots, false)?;
        }
        Ok(())
    }

    fn address(
        &mut self,
        kind: CheckKind,
        source: &str,
        r: &NodeRef,
        roots: Option<&[NodeId]>,
        item: bool,
    ) -> Result<(), DenyReason> {
        let mode = match roots {
            Some(_) => UnknownNodeMode::Deny,
            None => self.policy.unknown_node(Api::Delivery),
        };
        // A Start-Item or fetch target may be any content node; items must match their kind.
        let located = match (item, r) {
            (false, NodeRef::Key(k)) => self.resolved.nodes.get(k).map(|n| n.clone().map(pos)),
            (false, NodeRef::Path(_)) if source == START_ITEM => Some(None),
            (false, NodeRef::Path(p)) => match self.route(p) {
                RouteAnswer::NotLookedUp => None,
                RouteAnswer::Node(n) => Some(Some(pos(n))),
                RouteAnswer::Unknown(_) | RouteAnswer::Ambiguous(_) => Some(None),
            },
            _ => self
                .locate(kind, r)
                .map(|l| l.map(|l| (l.id, l.path, l.info)))
                .map(Some)?,
        };
        let (id, path, info) = match located {
            None => return Err(DenyReason::StoreUnavailable),
            Some(None) => return self.unknown(mode, source, kind, r),
            Some(Some(found)) => found,
        };
        if let Some(roots) = roots {
            if !roots.iter().any(|root| path.contains(*root)) {
                self.note(|| NodeEvidence {
                    id: Some(id),
                    path: Some(path.to_string()),
                    note: Some(format!("outside the key's subtree roots {roots:?}")),
                    ..evidence(source, kind, r)
                });
                return Err(self.fail(DenyReason::OutsideKeyScope, || {
                    format!("node {} is outside the key's subtree", describe(r))
                }));
            }
        }
        if item && kind != CheckKind::Media {
            if let Some(info) = info {
                self.member_protection(source, kind, r, &info)?;
            }
        }
        self.note(|| NodeEvidence {
            id: Some(id),
            path: Some(path.to_string()),
            ..evidence(source, kind, r)
        });
        Ok(())
    }

    fn member_protection(
        &mut self,
        source: &str,
        kind: CheckKind,
        r: &NodeRef,
        node: &NodeInfo,
    ) -> Result<(), DenyReason> {
        let mut entry: Option<(NodeId, Arc<PublicAccess>)> =
            node.public_access.clone().map(|pa| (node.id, pa));
        if entry.is_none() {
            let Some(protected) = self.resolved.protected.as_deref() else {
                return Err(DenyReason::StoreUnavailable);
            };
            let ids: SmallVec<[NodeId; 16]> = ancestors(node)
                .filter(|id| protected.contains(*id))
                .collect();
            for id in ids.iter().rev() {
                match self.resolved.nodes_by_id.get(id) {
                    None => return Err(DenyReason::StoreUnavailable),
                    Some(None) => {
                        // A protected ancestor the mirror lost since: its protection cannot
                        // be known.
                        let mode = self.policy.unknown_node(Api::Delivery);
                        return self.unknown(mode, source, kind, r);
                    }
                    Some(Some(a)) => {
                        if let Some(pa) = &a.public_access {
                            entry = Some((a.id, pa.clone()));
                            break;
                        }
                    }
                }
            }
        }
        let Some((on, pa)) = entry else {
            return Ok(());
        };
        let Some(member) = self.who.member() else {
            return Err(self.fail(DenyReason::MemberRequired, || {
                format!("node {} is member-protected (entry on {on})", node.id)
            }));
        };
        let by_name = pa
            .member_usernames
            .iter()
            .any(|u| u.eq_ignore_ascii_case(member.username));
        let by_group = pa
            .member_groups
            .iter()
            .any(|g| member.groups.iter().any(|m| m.eq_ignore_ascii_case(g)));
        if by_name || by_group {
            self.via.push(Grant::Member {
                member: member.username.to_string(),
            });
            Ok(())
        } else {
            Err(self.fail(DenyReason::MemberNotAllowed, || {
                format!(
                    "the entry on {on} does not name member `{}`",
                    member.username
                )
            }))
        }
    }
}

/// The culture a Delivery request names as Umbraco reads it (`RequestCultureService`): the
/// `Accept-Language` value when it is one non-empty tag of letters, digits, `_` and `-`
/// (`^[\w-]*$`); `None` — Umbraco serves its default culture — for no header, a blank one, a
/// list, q-values or `*`.
pub(crate) fn requested_culture(q: Option<&DeliveryQuery>) -> Option<&str> {
    let value = q?.culture.as_deref()?.trim();
    let one_tag = !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '-');
    one_tag.then_some(value)
}

fn pos(n: Arc<NodeInfo>) -> (NodeId, super::model::NodePath, Option<Arc<NodeInfo>>) {
    (n.id, n.path.clone(), Some(n))
}

#[cfg(test)]
#[path = "delivery_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "delivery_access_tests.rs"]
mod access_tests;
