//! The request bodies of `/v1/overrides/…` and the checks of their fields: a 400 when the
//! JSON does not fit (serde, naming the field), a 422 naming the field when a value is not
//! acceptable (an unknown node, group or issuer, a malformed alias or culture).

use super::http::AdminError;
use super::key_fields::{check_label, culture_ok};
use crate::authn::config::{IssuerConfig, SubjectKind};
use crate::authz::{NodeKind, UserState};
use crate::store::overrides::{Grant, GroupView, MappingView, UserView};
use crate::store::policy_file::{Origin, StartRef};
use crate::store::PolicyStore;
use serde::Deserialize;
use uuid::Uuid;

/// What the checks look things up in: the policy store and the configured issuers.
pub struct Context<'a> {
    pub store: &'a dyn PolicyStore,
    pub issuers: &'a [IssuerConfig],
}

/// `POST /v1/overrides/groups` and `PUT /v1/overrides/groups/{alias}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupBody {
    pub alias: String,
    pub name: String,
    #[serde(default)]
    pub sections: Vec<String>,
    #[serde(default)]
    pub default_verbs: Vec<String>,
    #[serde(default)]
    pub content_start: Option<StartRef>,
    #[serde(default)]
    pub media_start: Option<StartRef>,
    #[serde(default)]
    pub all_languages: bool,
    #[serde(default)]
    pub languages: Vec<String>,
    #[serde(default)]
    pub permissions: Vec<Grant>,
}

/// `POST /v1/overrides/group-mappings` and `PUT …/{issuer}/{idp_group}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MappingBody {
    pub issuer: String,
    pub idp_group: String,
    pub groups: Vec<String>,
}

/// `POST /v1/overrides/users` and `PUT /v1/overrides/users/{external_id}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserBody {
    pub external_id: String,
    pub name: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default = "active")]
    pub state: UserState,
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default)]
    pub content_start: Vec<StartRef>,
    #[serde(default)]
    pub media_start: Vec<StartRef>,
}

fn active() -> UserState {
    UserState::Active
}

/// A group alias: 1-100 ASCII letters, digits, `_`, `-` or `.`.
fn check_alias(field: &str, a: &str) -> Result<(), AdminError> {
    let ok = (1..=100).contains(&a.len())
        && a.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b));
    if !ok {
        return Err(AdminError::invalid(
            field,
            "must be 1-100 ASCII letters, digits, `_`, `-` or `.`",
        ));
    }
    Ok(())
}

/// A section or verb name: 1-200 visible characters without spaces.
fn check_token(field: &str, t: &str) -> Result<(), AdminError> {
    if t.is_empty() || t.chars().count() > 200 || t.chars().any(|c| c.is_control() || c == ' ') {
        return Err(AdminError::invalid(
            field,
            "must be 1-200 characters without spaces or control characters",
        ));
    }
    Ok(())
}

fn check_tokens(field: &str, v: &[String]) -> Result<(), AdminError> {
    for (i, t) in v.iter().enumerate() {
        check_token(&format!("{field}[{i}]"), t)?;
    }
    Ok(())
}

/// A start node: the root, or a live node of the tree's kind.
async fn check_start(
    ctx: &Context<'_>,
    field: &str,
    s: &StartRef,
    kind: NodeKind,
) -> Result<(), AdminError> {
    match s {
        StartRef::Root => Ok(()),
        StartRef::Node(k) => check_node(ctx, field, *k, kind).await,
    }
}

async fn check_node(
    ctx: &Context<'_>,
    field: &str,
    key: Uuid,
    kind: NodeKind,
) -> Result<(), AdminError> {
    match ctx.store.node(key).await? {
        Some(n) if n.kind == kind && !n.trashed => Ok(()),
        Some(_) => Err(AdminError::invalid(
            field,
            format!(
                "`{key}` is not a {} outside the recycle bin",
                kind_name(kind)
            ),
        )),
        None => Err(AdminError::invalid(field, format!("no node `{key}`"))),
    }
}

fn kind_name(k: NodeKind) -> &'static str {
    match k {
        NodeKind::Document => "document",
        NodeKind::Media => "media item",
        NodeKind::Element => "element",
    }
}

/// Every alias names an existing group.
async fn check_groups(
    ctx: &Context<'_>,
    field: &str,
    aliases: &[String],
) -> Result<(), AdminError> {
    for (i, a) in aliases.iter().enumerate() {
        if ctx.store.group_key_by_alias(a).await?.is_none() {
            return Err(AdminError::invalid(
                &format!("{field}[{i}]"),
                format!("no group `{a}`"),
            ));
        }
    }
    Ok(())
}

fn check_cultures(field: &str, v: &[String]) -> Result<(), AdminError> {
    for (i, c) in v.iter().enumerate() {
        if !culture_ok(c) {
            return Err(AdminError::invalid(
                &format!("{field}[{i}]"),
                format!("`{c}` is not a culture code such as `en-us`"),
            ));
        }
    }
    Ok(())
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v.dedup();
    v
}

impl GroupBody {
    pub async fn check(&self, ctx: &Context<'_>) -> Result<(), AdminError> {
        check_alias("alias", &self.alias)?;
        check_label("name", &self.name)?;
        check_tokens("sections", &self.sections)?;
        check_tokens("default_verbs", &self.default_verbs)?;
        if let Some(s) = &self.content_start {
            check_start(ctx, "content_start", s, NodeKind::Document).await?;
        }
        if let Some(s) = &self.media_start {
            check_start(ctx, "media_start", s, NodeKind::Media).await?;
        }
        check_cultures("languages", &self.languages)?;
        for (i, p) in self.permissions.iter().enumerate() {
            let field = format!("permissions[{i}]");
            if self.permissions[..i].iter().any(|q| q.node == p.node) {
                return Err(AdminError::invalid(
                    &format!("{field}.node"),
                    format!("`{}` is repeated", p.node),
                ));
            }
            check_node(ctx, &format!("{field}.node"), p.node, NodeKind::Document).await?;
            check_tokens(&format!("{field}.verbs"), &p.verbs)?;
        }
        Ok(())
    }

    /// The group this body makes (keeping `before`'s key on a replace).
    pub fn into_view(self, before: Option<&GroupView>) -> GroupView {
        GroupView {
            key: before.map_or_else(Uuid::new_v4, |b| b.key),
            alias: self.alias,
            name: self.name,
            sections: self.sections,
            default_verbs: self.default_verbs,
            content_start: self.content_start,
            media_start: self.media_start,
            all_languages: self.all_languages,
            languages: self
                .languages
                .into_iter()
                .map(|l| l.to_ascii_lowercase())
                .collect(),
            permissions: self.permissions,
            origin: Origin::Local,
        }
    }
}

impl MappingBody {
    pub async fn check(&self, ctx: &Context<'_>) -> Result<(), AdminError> {
        let Some(issuer) = ctx.issuers.iter().find(|i| i.name == self.issuer) else {
            return Err(AdminError::invalid(
                "issuer",
                format!("no issuer named `{}` in [[authn.issuers]]", self.issuer),
            ));
        };
        if issuer.subject != SubjectKind::User || issuer.groups_claim.is_none() {
            return Err(AdminError::invalid(
                "issuer",
                "the issuer must have `subject = \"user\"` and a `groups_claim`",
            ));
        }
        check_label("idp_group", &self.idp_group)?;
        if self.groups.is_empty() {
            return Err(AdminError::invalid(
                "groups",
                "must name at least one group",
            ));
        }
        check_groups(ctx, "groups", &self.groups).await
    }

    pub fn into_view(self) -> MappingView {
        MappingView {
            issuer: self.issuer,
            idp_group: self.idp_group,
            groups: sorted(self.groups),
        }
    }
}

impl UserBody {
    pub async fn check(&self, ctx: &Context<'_>) -> Result<(), AdminError> {
        check_label("external_id", &self.external_id)?;
        check_label("name", &self.name)?;
        if let Some(e) = &self.email {
            check_label("email", e)?;
        }
        check_groups(ctx, "groups", &self.groups).await?;
        for (i, s) in self.content_start.iter().enumerate() {
            check_start(ctx, &format!("content_start[{i}]"), s, NodeKind::Document).await?;
        }
        for (i, s) in self.media_start.iter().enumerate() {
            check_start(ctx, &format!("media_start[{i}]"), s, NodeKind::Media).await?;
        }
        Ok(())
    }

    /// The user this body makes (keeping `before`'s key on a replace).
    pub fn into_view(self, before: Option<&UserView>) -> UserView {
        UserView {
            key: before.map_or_else(Uuid::new_v4, |b| b.key),
            external_id: self.external_id,
            name: self.name,
            email: self.email,
            state: self.state,
            groups: sorted(self.groups),
            content_start: self.content_start,
            media_start: self.media_start,
            origin: Origin::Local,
        }
    }
}
