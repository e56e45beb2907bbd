//! `/v1/keys…`: the API key lifecycle. Create (the secret is in that answer and nowhere else),
//! list and get (never a secret or hash), update the scope, owner and expiry, revoke, rotate
//! (a new secret; the old one keeps working for `overlap_seconds`). The gateway makes the key
//! (`pcl_<env>_<id>_<secret>`, peppered hash); every write is recorded by the store as a change
//! by the admin token's name. `If-Match` guards PATCH, revoke and rotate (412 when stale).

use super::http::{check_if_match, etag_of, json, parse_body, set_etag, AdminError, AdminRequest};
use super::key_fields::{CreateKey, RotateKey, UpdateKey};
use super::Reply;
use crate::app::Shared;
use crate::authn::api_key;
use crate::store::policy_file::ApiKeyEntry;
use crate::store::KeyView;
use chrono::Utc;
use http::StatusCode;
use serde_json::Value;

/// A key's JSON: its view plus `status` (`active`, `expired`, `revoked`) now.
pub fn key_json(k: &ApiKeyEntry) -> Value {
    let mut v = serde_json::to_value(KeyView::from(k)).unwrap_or_default();
    let status = if k.revoked {
        "revoked"
    } else if k.expires_at.is_some_and(|at| at <= Utc::now()) {
        "expired"
    } else {
        "active"
    };
    v["status"] = status.into();
    v
}

fn not_found(key_id: &str) -> AdminError {
    AdminError::NotFound {
        what: format!("api key `{key_id}`"),
    }
}

/// The writer, or 501 when this gateway has none.
fn writer(shared: &Shared) -> Result<&crate::store::KeyWriter, AdminError> {
    shared.keys.as_ref().ok_or(AdminError::NotConfigured {
        what: "an api key store",
    })
}

pub(super) fn actor(req: &AdminRequest) -> String {
    req.actor
        .as_ref()
        .map_or_else(|| "admin:unknown".to_owned(), |a| a.id())
}

/// `GET /v1/keys[?owner=…][&status=active|expired|revoked]`: `{"items": [key…]}` by id.
pub async fn list(shared: &Shared, req: &AdminRequest) -> Result<Reply, AdminError> {
    req.only_query(&["owner", "status"])?;
    let owner = req.query("owner")?;
    let status = req.query("status")?;
    if let Some(s) = status {
        if !["active", "expired", "revoked"].contains(&s) {
            return Err(AdminError::bad(
                "status",
                "must be active, expired or revoked",
            ));
        }
    }
    let items: Vec<Value> = writer(shared)?
        .list()
        .await?
        .iter()
        .filter(|k| owner.is_none_or(|o| k.owner == o))
        .map(key_json)
        .filter(|v| status.is_none_or(|s| v["status"] == s))
        .collect();
    Ok(json(StatusCode::OK, &serde_json::json!({ "items": items })))
}

/// `GET /v1/keys/{id}`: the key with its `ETag`.
pub async fn get(shared: &Shared, key_id: &str) -> Result<Reply, AdminError> {
    let k = writer(shared)?
        .get(key_id)
        .await?
        .ok_or_else(|| not_found(key_id))?;
    Ok(with_etag(StatusCode::OK, key_json(&k)))
}

fn with_etag(status: StatusCode, v: Value) -> Reply {
    let mut r = json(status, &v);
    set_etag(&mut r, &etag_of(&v));
    r
}

/// The answer carrying a secret: `{"key": …, "secret": "pcl_…"}`.
pub fn secret_json(k: &ApiKeyEntry, secret: &str) -> Value {
    serde_json::json!({"key": key_json(k), "secret": secret})
}

/// The reply carrying a secret, never cached.
fn with_secret(status: StatusCode, k: &ApiKeyEntry, secret: &str) -> Reply {
    let etag = etag_of(&key_json(k));
    let mut r = json(status, &secret_json(k, secret));
    set_etag(&mut r, &etag);
    let h = r.headers_mut();
    h.insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-store"),
    );
    if let Ok(v) = http::HeaderValue::from_str(&format!("/v1/keys/{}", k.key_id)) {
        h.insert(http::header::LOCATION, v);
    }
    r
}

/// `POST /v1/keys`: 201 with the key and its secret (shown once).
pub async fn create(shared: &Shared, req: &AdminRequest) -> Result<Reply, AdminError> {
    let generated = shared
        .services
        .authn
        .generate_api_key()
        .ok_or(AdminError::NotConfigured {
            what: "a valid authn.key_env",
        })?;
    let store = shared.services.cache.store().as_ref();
    let written = create_key(store, writer(shared)?, &generated, &req.body, &actor(req)).await?;
    Ok(with_secret(StatusCode::CREATED, &written, &generated.full))
}

/// Checks the `POST /v1/keys` `body` against `store` and writes the key `generated` with it
/// (the admin API, and `portcullis keys create` offline).
pub async fn create_key(
    store: &dyn crate::store::PolicyStore,
    writer: &crate::store::KeyWriter,
    generated: &api_key::GeneratedKey,
    body: &[u8],
    actor: &str,
) -> Result<ApiKeyEntry, AdminError> {
    let body: CreateKey = parse_body(body)?;
    body.check(store).await?;
    let entry = body.into_entry(generated.key_id.clone(), generated.hash);
    writer
        .write(&generated.key_id, actor, "create", |before| match before {
            // 16 random base62 characters: only a broken random source repeats one.
            Some(_) => Err(AdminError::conflict("key_id", "exists already")),
            None => Ok(entry),
        })
        .await
}

/// Reads `key_id` for an edit: 404 when absent, 412 when `If-Match` names another version,
/// 409 when it is revoked (a revoked key is final).
fn editable(
    req: &AdminRequest,
    key_id: &str,
    before: Option<ApiKeyEntry>,
) -> Result<ApiKeyEntry, AdminError> {
    let k = before.ok_or_else(|| not_found(key_id))?;
    check_if_match(&req.headers, &etag_of(&key_json(&k)))?;
    if k.revoked {
        return Err(AdminError::conflict("revoked", "the key is revoked"));
    }
    Ok(k)
}

/// `PATCH /v1/keys/{id}`: changes the given fields; 200 with the key.
pub async fn update(
    shared: &Shared,
    req: &AdminRequest,
    key_id: &str,
) -> Result<Reply, AdminError> {
    let body: UpdateKey = parse_body(&req.body)?;
    body.check(shared.services.cache.store().as_ref()).await?;
    let written = writer(shared)?
        .write::<AdminError>(key_id, &actor(req), "update", |before| {
            let mut k = editable(req, key_id, before)?;
            body.apply(&mut k);
            Ok(k)
        })
        .await?;
    Ok(with_etag(StatusCode::OK, key_json(&written)))
}

/// `POST /v1/keys/{id}/revoke`: the key (and a rotated-out secret) stop working at once on
/// every gateway. Revoking a revoked key answers 200 and records nothing.
pub async fn revoke(
    shared: &Shared,
    req: &AdminRequest,
    key_id: &str,
) -> Result<Reply, AdminError> {
    empty_body(req)?;
    let w = writer(shared)?;
    let current = w.get(key_id).await?.ok_or_else(|| not_found(key_id))?;
    if current.revoked {
        return Ok(with_etag(StatusCode::OK, key_json(&current)));
    }
    let written = w
        .write::<AdminError>(key_id, &actor(req), "revoke", |before| {
            let mut k = editable(req, key_id, before)?;
            k.revoked = true;
            Ok(k)
        })
        .await?;
    Ok(with_etag(StatusCode::OK, key_json(&written)))
}

/// `POST /v1/keys/{id}/rotate`: a new secret for the same id; the current one is accepted for
/// `overlap_seconds` more (default 3600, 0 = not at all). A secret rotated out earlier stops at
/// once. 200 with the key and the new secret (shown once).
pub async fn rotate(
    shared: &Shared,
    req: &AdminRequest,
    key_id: &str,
) -> Result<Reply, AdminError> {
    let body: RotateKey = if req.body.iter().all(u8::is_ascii_whitespace) {
        parse_body(b"{}")?
    } else {
        parse_body(&req.body)?
    };
    body.check()?;
    let generated = shared
        .services
        .authn
        .rotate_api_key(key_id)
        .ok_or_else(|| not_found(key_id))?;
    let overlap = chrono::Duration::seconds(i64::try_from(body.overlap_seconds).unwrap_or(0));
    let written = writer(shared)?
        .write::<AdminError>(key_id, &actor(req), "rotate", |before| {
            let mut k = editable(req, key_id, before)?;
            if body.overlap_seconds > 0 {
                k.previous_hash = Some(k.hash.clone());
                k.previous_expires_at = Some(Utc::now() + overlap);
            } else {
                k.previous_hash = None;
                k.previous_expires_at = None;
            }
            k.hash = hex::encode(generated.hash);
            Ok(k)
        })
        .await?;
    Ok(with_secret(StatusCode::OK, &written, &generated.full))
}

/// Refuses a body on an action that takes none (`{}` and whitespace are accepted).
fn empty_body(req: &AdminRequest) -> Result<(), AdminError> {
    if req.body.iter().all(u8::is_ascii_whitespace) {
        return Ok(());
    }
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Nothing {}
    parse_body::<Nothing>(&req.body).map(|_| ())
}

/// Whether `key_id` can name a key at all (otherwise 404 without a store lookup).
pub fn plausible_id(key_id: &str) -> bool {
    key_id.len() == api_key::ID_LEN && key_id.bytes().all(|b| b.is_ascii_alphanumeric())
}
