//! The API user's token on proxied requests (`[upstream.credential] kind = "umbraco_api_user"`):
//! put it in the upstream `Authorization`, and when Umbraco answers 401 to it (revoked:
//! `RevokeUserAuthenticationTokensNotificationHandler`), replace it and replay the request once
//! when the request can be sent again byte for byte.
//!
//! A replay goes through pingora's retry loop: `upstream_response_filter` turns the 401 into an
//! error marked for retry ([`TOKEN_REJECTED`]) before anything reaches the client, and
//! `upstream_request_filter` of the second attempt asks [`ApiUser::replace`] for the new token
//! (one fetch shared by every request that saw the same rejected token).

use super::{Gateway, RequestCtx, UpstreamFailure};
use crate::authn::{Principal, PrincipalKind};
use crate::request::Api;
use crate::umbraco::{ApiUser, CredentialKind};
use pingora::http::RequestHeader;
use pingora::prelude::Session;
use pingora::{Error, ErrorType, Result};

/// The error that makes pingora send the request again after Umbraco refused the API user's
/// token. Never seen by a client: the replay answers, or its own failure does.
pub const TOKEN_REJECTED: ErrorType = ErrorType::Custom("umbraco_api_user_token_rejected");

/// Whether `e` is the replay marker [`TOKEN_REJECTED`].
pub fn is_token_rejected(e: &Error) -> bool {
    e.etype() == &TOKEN_REJECTED
}

/// Whether the request can be sent upstream again exactly as the first time: it had no body,
/// or its whole body was read for inspection and is held in pingora's retry buffer. A streamed
/// body was consumed while it was forwarded and cannot be.
fn replayable(session: &mut Session, ctx: &RequestCtx) -> bool {
    if ctx.body_inspected {
        return !session.as_downstream().retry_buffer_truncated();
    }
    ctx.body_bytes == 0 && session.as_downstream_mut().is_body_empty()
}

impl Gateway {
    /// Umbraco answered 401 to the request (in `upstream_response_filter`). When the request
    /// carried the API user's token, was not replayed yet and can be replayed, returns the
    /// error that makes pingora replay it (with a new token, see [`Gateway::use_api_user`]);
    /// otherwise the 401 goes to the client and the token is replaced in the background, so the
    /// next request does not carry it again.
    pub(super) fn on_upstream_401(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        let Some(token) = ctx.upstream_token.clone() else {
            return Ok(());
        };
        if ctx.replayed || !replayable(session, ctx) {
            self.replace_in_background(token);
            return Ok(());
        }
        ctx.replayed = true;
        ctx.rejected_token = Some(token);
        // The retry buffer (an inspected body) passes `request_body_filter` again.
        ctx.body_bytes = 0;
        tracing::info!(request.id = %ctx.request_id, "umbraco refused the api user token; replaying the request with a new one");
        let mut e = Error::explain(TOKEN_REJECTED, "umbraco answered 401 to the api user token");
        e.set_retry(true);
        Err(e)
    }

    /// Fetches a replacement for `rejected` without holding up the request (shared with
    /// concurrent callers by [`ApiUser::replace`]).
    fn replace_in_background(&self, rejected: std::sync::Arc<crate::umbraco::UpstreamToken>) {
        let Some(api_user) = self.shared.services.api_user.clone() else {
            return;
        };
        tokio::spawn(async move {
            if let Err(e) = api_user.replace(&rejected).await {
                tracing::warn!(umbraco.client_id = %api_user.client_id(), error = %crate::config::error_chain(&e), "replacing the api user token Umbraco refused failed");
            }
        });
    }

    /// Puts the API user's token in the upstream `Authorization` (replacing the caller's): the
    /// current one, or on a replay the replacement of the token Umbraco refused. When no token
    /// can be had, the request fails with 503 `upstream_credential_unavailable`.
    pub(super) async fn use_api_user(
        &self,
        upstream: &mut RequestHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        let Some(api_user) = &self.shared.services.api_user else {
            // Configured after start (reload): the credential source needs a restart.
            ctx.upstream_failure = Some(UpstreamFailure::Credential);
            return Err(Error::explain(
                ErrorType::InternalError,
                "upstream.credential changed; restart to use the api user",
            ));
        };
        let token = match ctx.rejected_token.take() {
            Some(rejected) => api_user.replace(&rejected).await,
            None => api_user.token().await,
        };
        match token {
            Ok(token) => {
                upstream
                    .insert_header(http::header::AUTHORIZATION, token.authorization().clone())?;
                ctx.upstream_token = Some(token);
                Ok(())
            }
            Err(e) => {
                tracing::warn!(umbraco.client_id = %api_user.client_id(), error = %crate::config::error_chain(&e), "no api user token for the upstream request");
                ctx.upstream_failure = Some(UpstreamFailure::Credential);
                Err(Error::explain(
                    ErrorType::InternalError,
                    "api user token unavailable",
                ))
            }
        }
    }

    /// The identity a request reached Umbraco as when the API user's token replaced the
    /// caller's credential (its client id), for the audit event and the access log.
    pub(super) fn upstream_identity<'a>(&'a self, ctx: &RequestCtx) -> Option<&'a str> {
        ctx.upstream_token
            .as_ref()
            .and(self.shared.services.api_user.as_deref())
            .map(ApiUser::client_id)
    }
}

/// The credential an allowed request carries to Umbraco.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamCredential {
    /// The request's own `Authorization` (Portcullis API keys are removed regardless).
    AsSent,
    /// The configured API user's token replaces `Authorization`.
    ApiUser,
}

/// Which credential Umbraco receives: with `[upstream.credential] kind = "umbraco_api_user"`,
/// Management API requests of callers whose credential Umbraco cannot read (an external IdP's
/// JWT, a Portcullis API key) carry the API user's token; everything else goes as sent.
pub fn upstream_credential(
    api: Option<Api>,
    principal: Option<&Principal>,
    kind: CredentialKind,
) -> UpstreamCredential {
    let foreign = principal.is_some_and(|p| {
        matches!(
            p.kind,
            PrincipalKind::Jwt { .. } | PrincipalKind::ApiKey { .. }
        )
    });
    if kind == CredentialKind::UmbracoApiUser && api == Some(Api::Management) && foreign {
        UpstreamCredential::ApiUser
    } else {
        UpstreamCredential::AsSent
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_management_requests_of_jwt_and_key_callers_get_the_api_user_token() {
        use crate::authn::Subject;
        let p = |kind| Principal {
            id: "x".into(),
            kind,
            subject: Subject::Anonymous,
        };
        let jwt = p(PrincipalKind::Jwt {
            issuer: std::sync::Arc::from("idp"),
        });
        let key = p(PrincipalKind::ApiKey { key_id: "k".into() });
        let anon = p(PrincipalKind::Anonymous);
        let api_user = CredentialKind::UmbracoApiUser;
        let m = Some(Api::Management);
        use UpstreamCredential::*;
        assert_eq!(upstream_credential(m, Some(&jwt), api_user), ApiUser);
        assert_eq!(upstream_credential(m, Some(&key), api_user), ApiUser);
        assert_eq!(upstream_credential(m, Some(&anon), api_user), AsSent);
        assert_eq!(upstream_credential(m, None, api_user), AsSent);
        assert_eq!(
            upstream_credential(Some(Api::Delivery), Some(&key), api_user),
            AsSent
        );
        assert_eq!(
            upstream_credential(m, Some(&jwt), CredentialKind::Passthrough),
            AsSent
        );
    }
}
