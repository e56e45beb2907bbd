//! `POST security/back-office/token` for the client-credentials grant
//! (`BackOfficeController.Token`; errors as OpenIddict writes them: `invalid_client` → 401,
//! other errors → 400, JSON `{"error", "error_description"}`; success
//! `{"access_token","token_type":"Bearer","expires_in"}`). Client-credentials sign-in does not
//! publish `UserLoginSuccessNotification`, so it revokes no other token.

use super::model::{State, UserKind};
use super::{Reply, Req};
use serde_json::json;

fn oauth_error(status: u16, error: &str, description: &str) -> Reply {
    Reply::json(
        status,
        json!({"error": error, "error_description": description}),
    )
}

/// The token endpoint.
pub fn token(state: &mut State, req: &Req) -> Reply {
    let form = req.form();
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    if field("grant_type") != Some("client_credentials") {
        return oauth_error(
            400,
            "unsupported_grant_type",
            "The specified 'grant_type' is not supported.",
        );
    }
    let (Some(client_id), Some(secret)) = (field("client_id"), field("client_secret")) else {
        return oauth_error(
            400,
            "invalid_request",
            "The mandatory 'client_id' parameter is missing.",
        );
    };
    let client = match state.clients.get(client_id) {
        Some(c) if c.secret == secret => c.clone(),
        _ => {
            return oauth_error(
                401,
                "invalid_client",
                "The specified client credentials are invalid.",
            )
            .header("www-authenticate", "Basic realm=\"umbraco\"")
        }
    };
    // `BackOfficeUserClientCredentialsManager.FindUserAsync`: approved API users only.
    let usable = state
        .users
        .get(&client.user)
        .is_some_and(|u| u.approved && u.kind == UserKind::Api);
    if !usable {
        return oauth_error(
            400,
            "Authorization failed",
            "The user associated with the supplied 'client_id' could not be found.",
        );
    }
    let token = state.issue_token(client.user);
    Reply::json(
        200,
        json!({
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": state.token_lifetime.as_secs(),
        }),
    )
}
