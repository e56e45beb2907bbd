//! `/v1/overrides/…`: local overrides the Umbraco mirror does not own (Postgres store) —
//! groups (`/groups/{alias}`, with their granular node grants), group mappings for external
//! IdP principals (`/group-mappings/{issuer}/{idp_group}`) and users that exist only for
//! external principals (`/users/{external_id}`). Each has list, get, create (POST), replace
//! (PUT) and delete. Lists and gets show rows of both owners with their `origin`; rows with
//! `origin = "umbraco"` are read-only here (409 naming `origin`). PUT and DELETE need
//! `If-Match` with the current ETag (428 without, 412 when stale). Every write is recorded by
//! the store as a change by the admin token's name (`admin_changes`).

use super::http::{
    etag_of, json, parse_body, require_if_match, set_etag, AdminError, AdminRequest, Reply,
};
use super::keys::actor;
use super::override_fields::{Context, GroupBody, MappingBody, UserBody};
use crate::app::Shared;
use crate::store::overrides::{GroupView, MappingView, UserView};
use crate::store::policy_file::Origin;
use crate::store::postgres::overrides::PgOverride;
use crate::store::OverrideWriter;
use async_trait::async_trait;
use http::StatusCode;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// The override resources.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    Groups,
    GroupMappings,
    Users,
}

/// What a request does to one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    List,
    Create,
    Get,
    Replace,
    Delete,
}

/// An override kind as the admin API serves it.
#[async_trait]
trait Served: PgOverride + serde::Serialize {
    type Body: DeserializeOwned + Send + Sync;
    /// Its collection path.
    const BASE: &'static str;
    /// Its name in messages.
    const WHAT: &'static str;
    /// The body field that names it (a PUT may not change it).
    const ID_FIELD: &'static str;
    /// How many path segments its id takes (a mapping's `issuer/idp_group`: two).
    const SEGMENTS: usize = 1;
    fn body_id(body: &Self::Body) -> String;
    async fn check(body: &Self::Body, ctx: &Context<'_>) -> Result<(), AdminError>;
    fn build(body: Self::Body, before: Option<&Self>) -> Self;
}

#[async_trait]
impl Served for GroupView {
    type Body = GroupBody;
    const BASE: &'static str = "/v1/overrides/groups";
    const WHAT: &'static str = "group";
    const ID_FIELD: &'static str = "alias";
    fn body_id(b: &GroupBody) -> String {
        b.alias.clone()
    }
    async fn check(b: &GroupBody, ctx: &Context<'_>) -> Result<(), AdminError> {
        b.check(ctx).await
    }
    fn build(b: GroupBody, before: Option<&Self>) -> Self {
        b.into_view(before)
    }
}

#[async_trait]
impl Served for MappingView {
    type Body = MappingBody;
    const BASE: &'static str = "/v1/overrides/group-mappings";
    const WHAT: &'static str = "group mapping";
    const ID_FIELD: &'static str = "idp_group";
    const SEGMENTS: usize = 2;
    fn body_id(b: &MappingBody) -> String {
        MappingView::id_of(&b.issuer, &b.idp_group)
    }
    async fn check(b: &MappingBody, ctx: &Context<'_>) -> Result<(), AdminError> {
        b.check(ctx).await
    }
    fn build(b: MappingBody, _: Option<&Self>) -> Self {
        b.into_view()
    }
}

#[async_trait]
impl Served for UserView {
    type Body = UserBody;
    const BASE: &'static str = "/v1/overrides/users";
    const WHAT: &'static str = "user";
    const ID_FIELD: &'static str = "external_id";
    fn body_id(b: &UserBody) -> String {
        b.external_id.clone()
    }
    async fn check(b: &UserBody, ctx: &Context<'_>) -> Result<(), AdminError> {
        b.check(ctx).await
    }
    fn build(b: UserBody, before: Option<&Self>) -> Self {
        b.into_view(before)
    }
}

/// Serves one override request; `params` are the path captures (the resource id's parts).
pub async fn serve(
    shared: &Shared,
    req: &AdminRequest,
    resource: Resource,
    op: Op,
    params: &[String],
) -> Result<Reply, AdminError> {
    let id = params.join("/");
    match resource {
        Resource::Groups => serve_kind::<GroupView>(shared, req, op, &id).await,
        Resource::GroupMappings => serve_kind::<MappingView>(shared, req, op, &id).await,
        Resource::Users => serve_kind::<UserView>(shared, req, op, &id).await,
    }
}

async fn serve_kind<R: Served>(
    shared: &Shared,
    req: &AdminRequest,
    op: Op,
    id: &str,
) -> Result<Reply, AdminError> {
    let w = shared.overrides.as_ref().ok_or(AdminError::NotConfigured {
        what: "a postgres policy store (overrides need one)",
    })?;
    match op {
        Op::List => list::<R>(w, req).await,
        Op::Get => {
            let r = w.get::<R>(id).await?.ok_or_else(|| not_found::<R>(id))?;
            Ok(with_etag(StatusCode::OK, &r))
        }
        Op::Create => create::<R>(shared, w, req).await,
        Op::Replace => replace::<R>(shared, w, req, id).await,
        Op::Delete => delete::<R>(w, req, id).await,
    }
}

fn not_found<R: Served>(id: &str) -> AdminError {
    AdminError::NotFound {
        what: format!("{} `{id}`", R::WHAT),
    }
}

/// The ETag of a resource: of its JSON value, as sent.
fn etag(v: &impl serde::Serialize) -> String {
    etag_of(&serde_json::to_value(v).unwrap_or_default())
}

fn with_etag(status: StatusCode, v: &impl serde::Serialize) -> Reply {
    let value = serde_json::to_value(v).unwrap_or_default();
    let mut r = json(status, &value);
    set_etag(&mut r, &etag_of(&value));
    r
}

/// `GET …[?origin=local|umbraco]`: `{"items": […]}` by id.
async fn list<R: Served>(w: &OverrideWriter, req: &AdminRequest) -> Result<Reply, AdminError> {
    req.only_query(&["origin"])?;
    let origin = match req.query("origin")? {
        None => None,
        Some(o) => Some(
            Origin::parse(o)
                .ok_or_else(|| AdminError::bad("origin", "must be local or umbraco"))?,
        ),
    };
    let items: Vec<Value> = w
        .list::<R>()
        .await?
        .iter()
        .filter(|r| origin.is_none_or(|o| r.origin() == o))
        .filter_map(|r| serde_json::to_value(r).ok())
        .collect();
    Ok(json(StatusCode::OK, &serde_json::json!({ "items": items })))
}

/// Parses and checks a body against the store and the running config's issuers.
async fn checked<R: Served>(shared: &Shared, req: &AdminRequest) -> Result<R::Body, AdminError> {
    let body: R::Body = parse_body(&req.body)?;
    let runtime = shared.runtime.load();
    let ctx = Context {
        store: shared.services.cache.store().as_ref(),
        issuers: &runtime.config.file.authn.issuers,
    };
    R::check(&body, &ctx).await?;
    Ok(body)
}

/// A row the mirror owns cannot be changed here.
fn local_only<R: Served>(r: &R) -> Result<(), AdminError> {
    if r.origin() == Origin::Umbraco {
        return Err(AdminError::conflict(
            "origin",
            format!(
                "{} `{}` is owned by the Umbraco mirror (origin umbraco) and read-only here; \
                 change it in Umbraco",
                R::WHAT,
                r.id()
            ),
        ));
    }
    Ok(())
}

/// `POST`: 201 with the resource, its `ETag` and `Location`; 409 when the id is taken.
async fn create<R: Served>(
    shared: &Shared,
    w: &OverrideWriter,
    req: &AdminRequest,
) -> Result<Reply, AdminError> {
    let body = checked::<R>(shared, req).await?;
    let id = R::body_id(&body);
    let written = w
        .write::<R, AdminError>(&id, &actor(req), "create", |before| match before {
            Some(b) => Err(AdminError::conflict(
                R::ID_FIELD,
                format!(
                    "{} `{id}` exists already (origin {})",
                    R::WHAT,
                    b.origin().as_str()
                ),
            )),
            None => Ok(Some(R::build(body, None))),
        })
        .await?
        .ok_or_else(|| not_found::<R>(&id))?;
    let mut r = with_etag(StatusCode::CREATED, &written);
    let location = format!("{}/{}", R::BASE, location_id(&id, R::SEGMENTS));
    if let Ok(v) = http::HeaderValue::from_str(&location) {
        r.headers_mut().insert(http::header::LOCATION, v);
    }
    Ok(r)
}

/// The path of an id of `segments` parts, each percent-encoded (a mapping's
/// `issuer/idp_group` is two; issuer names have no `/`, an IdP group may).
fn location_id(id: &str, segments: usize) -> String {
    id.splitn(segments, '/')
        .map(|p| {
            percent_encoding::utf8_percent_encode(p, percent_encoding::NON_ALPHANUMERIC).to_string()
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Reads `id` for an edit: 404 when absent, 409 when the mirror owns it, 428 without
/// `If-Match`, 412 when it names another version.
fn editable<R: Served>(req: &AdminRequest, id: &str, before: Option<R>) -> Result<R, AdminError> {
    let r = before.ok_or_else(|| not_found::<R>(id))?;
    local_only(&r)?;
    require_if_match(&req.headers, &etag(&r))?;
    Ok(r)
}

/// `PUT`: replaces the resource with the body (its id field must name it); 200.
async fn replace<R: Served>(
    shared: &Shared,
    w: &OverrideWriter,
    req: &AdminRequest,
    id: &str,
) -> Result<Reply, AdminError> {
    let body = checked::<R>(shared, req).await?;
    if R::body_id(&body) != id {
        return Err(AdminError::invalid(
            R::ID_FIELD,
            "must name the resource of the path (it cannot be renamed; create a new one)",
        ));
    }
    let written = w
        .write::<R, AdminError>(id, &actor(req), "update", |before| {
            let b = editable(req, id, before)?;
            Ok(Some(R::build(body, Some(&b))))
        })
        .await?
        .ok_or_else(|| not_found::<R>(id))?;
    Ok(with_etag(StatusCode::OK, &written))
}

/// `DELETE`: 204. A group's deletion also removes its grants, its members' memberships in it
/// and the mappings to it; a user's its memberships.
async fn delete<R: Served>(
    w: &OverrideWriter,
    req: &AdminRequest,
    id: &str,
) -> Result<Reply, AdminError> {
    if !req.body.iter().all(u8::is_ascii_whitespace) {
        return Err(AdminError::bad("body", "DELETE takes no body"));
    }
    w.write::<R, AdminError>(id, &actor(req), "delete", |before| {
        editable(req, id, before).map(|_| None)
    })
    .await?;
    Ok(http::Response::builder()
        .status(StatusCode::NO_CONTENT)
        .body(Vec::new())
        .unwrap_or_default())
}
