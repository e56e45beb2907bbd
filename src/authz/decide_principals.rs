//! The decision's checks on principals rather than nodes (moved unchanged from `decide.rs`):
//! user checks (Umbraco `UserPermissionService`), user-group checks
//! (`UserGroupPermissionService.AuthorizeAccessAsync`) and the request's cultures.

use super::Ctx;
use crate::authz::model::{LanguageAccess, UserAccess};
use crate::authz::{DenyReason, Grant};
use crate::request::{NodeCheck, NodeRef};

impl Ctx<'_, '_, '_> {
    /// Whether the user is in the `admin` group; if so, records the grant that admitted it.
    pub(super) fn admitted_as_admin(&mut self, access: &UserAccess) -> bool {
        let Some(g) = access.admin_group() else {
            return false;
        };
        self.via.push(Grant::Admin {
            group: g.alias.clone(),
        });
        true
    }

    pub(super) fn user_check(
        &mut self,
        access: &UserAccess,
        check: &NodeCheck,
    ) -> Result<(), DenyReason> {
        if self.admitted_as_admin(access) {
            return Ok(());
        }
        let mode = self.policy.unknown_node(self.target.api);
        for r in &check.nodes {
            let NodeRef::Key(k) = r else {
                return Err(self.fail(DenyReason::Malformed, || "a user id is not a key".into()));
            };
            match self.resolved.users.get(k) {
                None => return Err(DenyReason::StoreUnavailable),
                Some(None) => self.unknown(mode, &check.source, check.kind, r)?,
                Some(Some(u)) if u.is_admin => {
                    return Err(self.fail(DenyReason::AdminRequired, || {
                        format!("user {k} is an administrator; only administrators may act on it")
                    }))
                }
                Some(Some(_)) => self.via.push(Grant::UserTarget {
                    user: k.to_string(),
                }),
            }
        }
        Ok(())
    }

    pub(super) fn group_check(
        &mut self,
        access: &UserAccess,
        check: &NodeCheck,
    ) -> Result<(), DenyReason> {
        if self.admitted_as_admin(access) {
            return Ok(());
        }
        for r in &check.nodes {
            let NodeRef::Key(k) = r else {
                return Err(self.fail(DenyReason::Malformed, || "a group id is not a key".into()));
            };
            match access.groups.iter().find(|g| g.key == *k) {
                Some(g) => self.via.push(Grant::GroupMember {
                    group: g.alias.clone(),
                }),
                None => {
                    return Err(self.fail(DenyReason::UserGroupNotMember, || {
                        format!("the user is not a member of group {k}")
                    }))
                }
            }
        }
        Ok(())
    }

    pub(super) fn cultures(&mut self, access: &UserAccess) -> Result<(), DenyReason> {
        if self.target.cultures.is_empty()
            || access
                .groups
                .iter()
                .any(|g| g.languages == LanguageAccess::All)
        {
            return Ok(());
        }
        for c in &self.target.cultures {
            let allowed = access.groups.iter().any(|g| match &g.languages {
                LanguageAccess::All => true,
                LanguageAccess::Only(set) => set.iter().any(|l| l.eq_ignore_ascii_case(c)),
            });
            if !allowed {
                return Err(self.fail(DenyReason::CultureNotAllowed, || {
                    format!("culture `{c}` is not allowed")
                }));
            }
        }
        Ok(())
    }
}
