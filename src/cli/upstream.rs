//! `portcullis check-upstream --config FILE`: verifies that the `[upstream.credential]` API
//! user can obtain a token and that Umbraco accepts it, and lists what that user may do
//! (`GET user/current` as the API user). Its permissions must be at least as wide as what the
//! gateway allows (docs/UPSTREAM.md).

use super::{print_json, CliError};
use crate::config::{env_overrides, Config};
use crate::umbraco::current_user::{CurrentUser, CURRENT_USER_PATH};
use crate::umbraco::{parse_json, ApiUser, CredentialKind, ManagementClient, UmbracoError};
use std::path::Path;

/// Runs `check-upstream`: prints the API user and its sections as JSON, or fails.
pub fn run(config: &Path) -> Result<(), CliError> {
    let config = Config::load(config, &env_overrides()).map_err(CliError::Config)?;
    let cred = &config.file.upstream.credential;
    if cred.kind != CredentialKind::UmbracoApiUser {
        return Err(CliError::NoApiUser);
    }
    super::block_on(async {
        let client = ManagementClient::new(
            config.management_upstream,
            config.file.upstream.host.as_deref(),
        )
        .map_err(CliError::Umbraco)?;
        let metrics = crate::umbraco::UmbracoMetrics::unregistered().map_err(CliError::Umbraco)?;
        let api_user = ApiUser::new(cred, client.clone(), metrics).map_err(CliError::Umbraco)?;
        let token = api_user.token().await.map_err(CliError::Umbraco)?;
        let req = client
            .request(reqwest::Method::GET, CURRENT_USER_PATH, cred.timeout)
            .header(http::header::AUTHORIZATION, token.authorization().clone());
        let answer = client
            .send(CURRENT_USER_PATH, req, 4 * 1024 * 1024)
            .await
            .map_err(CliError::Umbraco)?;
        if !answer.status.is_success() {
            return Err(CliError::Umbraco(UmbracoError::Status {
                path: CURRENT_USER_PATH,
                status: answer.status.as_u16(),
            }));
        }
        let user: CurrentUser =
            parse_json(CURRENT_USER_PATH, &answer.body).map_err(CliError::Umbraco)?;
        print_json(&serde_json::json!({
            "client_id": api_user.client_id(),
            "token": "ok",
            "user": {"id": user.id, "user_name": user.user_name},
            "sections": user.sections(),
            "document_root_access": user.has_document_root_access(),
            "media_root_access": user.has_media_root_access(),
        }))
    })
}
