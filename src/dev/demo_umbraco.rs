//! The demo upstream's Umbraco identity: what `portcullis dev` needs to show callers holding
//! Umbraco's own tokens and the gateway's API user, shaped as Umbraco answers them.
//!
//! - `POST …/security/back-office/token` (`BackOfficeController.Token`, client-credentials
//!   grant): the dev API user's client id and secret → an opaque access token; a wrong secret →
//!   401 `invalid_client`, another grant → 400 (OpenIddict's error shapes).
//! - `GET …/user/current` (`GetCurrentUserController`): the `CurrentUserResponseModel` of the
//!   caller's token (a subset of its fields).
//! - Every other Management API path needs a known token too, else 401 with a `Bearer`
//!   challenge, as Umbraco's OpenIddict validation answers.
//!
//! A token is read as Umbraco reads it: `Authorization: Bearer <token>`, and when that token is
//! exactly `[redacted]`, the `umbAccessToken` cookie (`HideBackOfficeTokensHandler`). The demo's
//! cookie value is not encrypted (Umbraco's is, with Data Protection).

use http::{HeaderMap, StatusCode};
use serde_json::{json, Value};

/// The dev API user's client id (`[upstream.credential]` of `config/dev.toml`).
pub const DEV_CLIENT_ID: &str = "umbraco-back-office-portcullis-dev";
/// DEV-ONLY client secret of that API user; `portcullis dev` sets it in the environment.
pub const DEV_CLIENT_SECRET: &str = "portcullis-dev-umbraco-client-secret-DO-NOT-USE-IN-PROD";
/// DEV-ONLY opaque access token of the demo back-office user `uma` (an editor in Umbraco).
pub const DEV_UMBRACO_TOKEN: &str = "devUmbracoTokenUmaDoNotUseInProduction0000001";
/// DEV-ONLY value of the `umbAccessToken` cookie of the same user's back-office session.
pub const DEV_UMBRACO_COOKIE: &str = "CfDJ8devUmbracoCookieUmaDoNotUseInProduction01";
/// What the back-office SPA sends in `Authorization` when the token is in the cookie.
pub const REDACTED: &str = "[redacted]";

/// The token the demo issues to the API user (never printed).
const API_USER_TOKEN: &str = "devUmbracoTokenApiUserDoNotUseInProduction001";
const ACCESS_COOKIE: &str = "umbAccessToken";
/// Umbraco's default access-token lifetime (`GlobalSettings.TimeOut` 20 min / 4).
const TOKEN_LIFETIME_S: u64 = 300;

pub const TOKEN_PATH: &str = crate::umbraco::TOKEN_PATH;
const CURRENT_PATH: &str = crate::umbraco::current_user::CURRENT_USER_PATH;
const MANAGEMENT_PREFIX: &str = "/umbraco/management/api/";

/// The back-office users the demo knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DemoUser {
    /// `uma`: content and media, root start nodes, Read + Update everywhere (no Delete).
    Uma,
    /// The gateway's API user: what the built-in Editors group may do.
    ApiUser,
}

impl DemoUser {
    pub fn user_name(self) -> &'static str {
        match self {
            DemoUser::Uma => "uma",
            DemoUser::ApiUser => DEV_CLIENT_ID,
        }
    }

    /// The `CurrentUserResponseModel` of this user.
    fn current(self) -> Value {
        let (id, name, fallback) = match self {
            DemoUser::Uma => (
                "00000000-0000-0000-00bb-000000000001",
                "Uma Umbraco",
                vec!["Umb.Document.Read", "Umb.Document.Update"],
            ),
            DemoUser::ApiUser => (
                "00000000-0000-0000-00bb-000000000002",
                "Portcullis (dev API user)",
                vec![
                    "Umb.Document.Read",
                    "Umb.Document.Create",
                    "Umb.Document.Update",
                    "Umb.Document.Delete",
                    "Umb.Document.Publish",
                    "Umb.Document.Unpublish",
                ],
            ),
        };
        json!({
            "id": id,
            "userName": self.user_name(),
            "name": name,
            "email": format!("{}@example.test", self.user_name()),
            "languageIsoCode": "en-US",
            "userGroupIds": [{"id": "44dc260e-b4d4-4dd9-9081-eec5598f1641"}],
            "allowedSections": ["Umb.Section.Content", "Umb.Section.Media"],
            "documentStartNodeIds": [],
            "hasDocumentRootAccess": true,
            "mediaStartNodeIds": [],
            "hasMediaRootAccess": true,
            "avatarUrls": [],
            "languages": [],
            "hasAccessToAllLanguages": true,
            "hasAccessToSensitiveData": false,
            "fallbackPermissions": fallback,
            "permissions": [],
            "isAdmin": false,
        })
    }
}

/// The token OpenIddict validation would read from `headers` (header, else — for exactly
/// `[redacted]` — the access cookie).
fn access_token(headers: &HeaderMap) -> Option<String> {
    let auth = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let token = auth
        .get(..7)
        .filter(|p| p.eq_ignore_ascii_case("bearer "))
        .map(|_| auth[7..].to_owned())?;
    if token != REDACTED {
        return Some(token);
    }
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(name, _)| *name == ACCESS_COOKIE)
        .map(|(_, value)| value.to_owned())
}

/// The user a request's credential belongs to.
pub fn caller(headers: &HeaderMap) -> Option<DemoUser> {
    match access_token(headers)?.as_str() {
        DEV_UMBRACO_TOKEN | DEV_UMBRACO_COOKIE => Some(DemoUser::Uma),
        API_USER_TOKEN => Some(DemoUser::ApiUser),
        _ => None,
    }
}

/// Whether the demo answers `path` as Umbraco's Management API (credential needed).
pub fn is_management(path: &str) -> bool {
    path.to_ascii_lowercase().starts_with(MANAGEMENT_PREFIX)
}

/// Umbraco's 401 for a missing or unknown token.
pub fn unauthorized() -> (StatusCode, Value) {
    (StatusCode::UNAUTHORIZED, Value::Null)
}

/// `GET user/current` for `user`.
pub fn current_user(path: &str, user: DemoUser) -> Option<(StatusCode, Value)> {
    path.eq_ignore_ascii_case(CURRENT_PATH)
        .then(|| (StatusCode::OK, user.current()))
}

/// `POST security/back-office/token` with a form-urlencoded `body`.
pub fn token(body: &[u8]) -> (StatusCode, Value) {
    let form: Vec<(String, String)> = url_pairs(body);
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let error = |status, error: &str, description: &str| {
        (
            status,
            json!({"error": error, "error_description": description}),
        )
    };
    if field("grant_type") != Some("client_credentials") {
        return error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "The specified 'grant_type' is not supported.",
        );
    }
    if field("client_id") != Some(DEV_CLIENT_ID)
        || field("client_secret") != Some(DEV_CLIENT_SECRET)
    {
        return error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "The specified client credentials are invalid.",
        );
    }
    (
        StatusCode::OK,
        json!({"access_token": API_USER_TOKEN, "token_type": "Bearer", "expires_in": TOKEN_LIFETIME_S}),
    )
}

fn url_pairs(body: &[u8]) -> Vec<(String, String)> {
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(&s.replace('+', " "))
            .decode_utf8_lossy()
            .into_owned()
    };
    String::from_utf8_lossy(body)
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                http::HeaderName::from_bytes(k.as_bytes()).expect("name"),
                v.parse().expect("value"),
            );
        }
        h
    }

    #[test]
    fn the_demo_reads_tokens_as_umbraco_does() {
        let bearer = format!("Bearer {DEV_UMBRACO_TOKEN}");
        assert_eq!(
            caller(&headers(&[("authorization", &bearer)])),
            Some(DemoUser::Uma)
        );
        let cookie = format!("theme=dark; {ACCESS_COOKIE}={DEV_UMBRACO_COOKIE}");
        let redacted = format!("Bearer {REDACTED}");
        let form = [("authorization", redacted.as_str()), ("cookie", &cookie)];
        assert_eq!(caller(&headers(&form)), Some(DemoUser::Uma));
        // The cookie counts only for exactly `Bearer [redacted]`.
        let other = [("authorization", "Bearer x"), ("cookie", cookie.as_str())];
        assert_eq!(caller(&headers(&other)), None);
        assert_eq!(caller(&headers(&[("cookie", &cookie)])), None);
    }

    #[test]
    fn the_token_endpoint_issues_the_api_user_token_for_its_secret_only() {
        let ok = format!(
            "grant_type=client_credentials&client_id={DEV_CLIENT_ID}&client_secret={DEV_CLIENT_SECRET}"
        );
        let (status, body) = token(ok.as_bytes());
        assert_eq!(status, StatusCode::OK);
        let issued = format!("Bearer {}", body["access_token"].as_str().expect("token"));
        assert_eq!(
            caller(&headers(&[("authorization", &issued)])),
            Some(DemoUser::ApiUser)
        );
        let wrong =
            format!("grant_type=client_credentials&client_id={DEV_CLIENT_ID}&client_secret=x");
        assert_eq!(token(wrong.as_bytes()).0, StatusCode::UNAUTHORIZED);
        assert_eq!(token(b"grant_type=password").0, StatusCode::BAD_REQUEST);
    }
}
