//! How Umbraco authenticates a Management API request, as the fake does it:
//! - OpenIddict validation takes the access token from the `Authorization` header (`Bearer `
//!   prefix, case-insensitive, the rest verbatim), else from an `access_token` form field
//!   (form-urlencoded bodies only), else from the `access_token` query parameter
//!   (`OpenIddictValidationAspNetCoreHandlers.ExtractAccessTokenFrom*`);
//! - when that token is exactly `[redacted]`, Umbraco swaps in the `umbAccessToken{SiteName}`
//!   cookie (`__Host-` prefixed under HTTPS) (`HideBackOfficeTokensHandler`);
//! - the token must be a live reference token (revocation is immediate: token entry
//!   validation), else 401 with a Bearer challenge;
//! - `BackOfficeAccess` needs an approved user, else 403 (`BackOfficeHandler`), and a section
//!   policy needs any of its sections (`AllowedApplicationHandler`).
//!
//! The fake's cookie "encryption" is reversible text, standing in for Data Protection.

use super::model::{State, User};
use super::{Reply, Req};
use uuid::Uuid;

/// The value the back-office SPA sends instead of its token.
pub const REDACTED: &str = "[redacted]";

/// What Umbraco's Data Protection would make of `token` in the fake (the cookie value).
pub fn protect(token: &str) -> String {
    format!("CfDJ8{}", hex::encode(token))
}

fn unprotect(value: &str) -> Option<String> {
    let hex_part = value.strip_prefix("CfDJ8")?;
    String::from_utf8(hex::decode(hex_part).ok()?).ok()
}

/// The access token OpenIddict validation would use for `req`, if any.
pub fn access_token(state: &State, req: &Req) -> Option<String> {
    let from_header = req
        .headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let prefix = v.get(..7)?;
            prefix
                .eq_ignore_ascii_case("bearer ")
                .then(|| v[7..].to_owned())
        })
        .filter(|t| !t.is_empty());
    let token = from_header
        .or_else(|| {
            req.form()
                .into_iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("access_token"))
                .map(|(_, v)| v)
                .filter(|t| !t.is_empty())
        })
        .or_else(|| {
            req.query_param("access_token")
                .filter(|t| !t.is_empty())
                .map(str::to_owned)
        })?;
    if token != REDACTED {
        return Some(token);
    }
    let wanted = state.access_cookie_name();
    cookies(req)
        .into_iter()
        .find(|(name, _)| *name == wanted)
        .and_then(|(_, value)| unprotect(&value))
}

fn cookies(req: &Req) -> Vec<(String, String)> {
    req.headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| {
            let (k, v) = c.trim().split_once('=')?;
            Some((k.to_owned(), v.to_owned()))
        })
        .collect()
}

/// The approved back-office user calling (`BackOfficeAccess`), or the 401/403 Umbraco sends.
pub fn backoffice_user(state: &State, req: &Req) -> Result<Uuid, Reply> {
    let Some(token) = access_token(state, req) else {
        return Err(Reply::empty(401).header("www-authenticate", "Bearer"));
    };
    let Some(user) = state.token_user(&token) else {
        return Err(Reply::empty(401).header(
            "www-authenticate",
            "Bearer error=\"invalid_token\", error_description=\"The specified token is invalid.\"",
        ));
    };
    match state.users.get(&user) {
        Some(u) if u.approved => Ok(user),
        Some(_) => Err(Reply::empty(403)),
        None => Err(Reply::empty(401).header("www-authenticate", "Bearer")),
    }
}

/// A section policy: the user holds any of `sections` through a group, else 403.
pub fn require_sections(state: &State, user: &User, sections: &[&str]) -> Result<(), Reply> {
    let held = user
        .groups
        .iter()
        .filter_map(|g| state.groups.get(g))
        .any(|g| g.sections.iter().any(|s| sections.contains(&s.as_str())));
    if held {
        Ok(())
    } else {
        Err(Reply::empty(403))
    }
}
