//! The gateway as a *client* of Umbraco's Management API: the [`ManagementClient`] every call
//! goes through (plain HTTP to `upstream.management`, the configured `Host`, no redirects,
//! bounded time and answer size), the API user's access token ([`api_user`], client-credentials
//! grant) and the `[upstream.credential]` section ([`config`]).
//!
//! Umbraco's wire shapes are taken from its `OpenApi.json` and controllers; the file that uses a
//! shape names the controller it mirrors.

pub mod api_user;
pub mod config;
pub mod current_user;
mod metrics;
pub mod session;
pub mod tree;
pub mod version;

pub use api_user::{ApiUser, UpstreamToken};
pub use config::{CredentialConfig, CredentialKind};
pub use metrics::UmbracoMetrics;
pub use session::{CredentialParts, SessionOutcome, Sessions};
pub use tree::NodeResolver;
pub use version::VersionResolver;

use bytes::{Bytes, BytesMut};
use std::net::SocketAddr;
use std::time::Duration;

/// `POST` here with the client-credentials grant (`BackOfficeController.Token`).
pub const TOKEN_PATH: &str = "/umbraco/management/api/v1/security/back-office/token";

/// Why a call to Umbraco failed. Logged for operators; clients only ever see a deny reason.
#[derive(Debug, thiserror::Error)]
pub enum UmbracoError {
    #[error("environment variable `{name}` is not set")]
    MissingEnv {
        name: String,
        #[source]
        source: std::env::VarError,
    },
    #[error("building the http client failed")]
    Client(#[source] reqwest::Error),
    #[error("calling umbraco `{path}` failed")]
    Unreachable {
        path: &'static str,
        #[source]
        source: reqwest::Error,
    },
    #[error("umbraco `{path}` answered with status {status}")]
    Status { path: &'static str, status: u16 },
    #[error("umbraco `{path}` sent more than {limit} bytes")]
    TooLarge { path: &'static str, limit: usize },
    #[error("umbraco `{path}` did not send the expected json")]
    Json {
        path: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("umbraco `{path}` sent an unusable answer: {why}")]
    Unusable {
        path: &'static str,
        why: &'static str,
    },
    #[error(
        "umbraco refused the client credentials of `{client_id}` (status {status}, `{error}`)"
    )]
    Rejected {
        client_id: String,
        status: u16,
        error: String,
    },
    #[error("registering umbraco client metrics failed")]
    Metrics(#[source] prometheus::Error),
}

/// An answer from Umbraco: status, headers and the (size-bounded) body.
#[derive(Debug)]
pub struct Answer {
    pub status: http::StatusCode,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

/// HTTP access to one Umbraco instance. Cheap to clone (shares the connection pool).
#[derive(Clone, Debug)]
pub struct ManagementClient {
    base: String,
    host: Option<String>,
    http: reqwest::Client,
}

impl ManagementClient {
    /// A client for the Umbraco at `addr`, sending `host` as the `Host` header when given
    /// (`upstream.host`). No I/O.
    pub fn new(addr: SocketAddr, host: Option<&str>) -> Result<Self, UmbracoError> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .pool_idle_timeout(Duration::from_secs(30))
            .build()
            .map_err(UmbracoError::Client)?;
        Ok(ManagementClient {
            base: format!("http://{addr}"),
            host: host.map(str::to_owned),
            http,
        })
    }

    /// A request for `path_and_query` (starting with `/`) with the configured `Host`.
    pub fn request(
        &self,
        method: reqwest::Method,
        path_and_query: &str,
        timeout: Duration,
    ) -> reqwest::RequestBuilder {
        let mut req = self
            .http
            .request(method, format!("{}{path_and_query}", self.base))
            .timeout(timeout);
        if let Some(host) = &self.host {
            req = req.header(http::header::HOST, host.as_str());
        }
        req
    }

    /// Sends `req` and reads at most `limit` body bytes. `path` names the endpoint in errors
    /// (never the query, which may carry ids).
    pub async fn send(
        &self,
        path: &'static str,
        req: reqwest::RequestBuilder,
        limit: usize,
    ) -> Result<Answer, UmbracoError> {
        let unreachable = |source| UmbracoError::Unreachable { path, source };
        let mut resp = req.send().await.map_err(unreachable)?;
        let status = resp.status();
        let headers = std::mem::take(resp.headers_mut());
        let mut body = BytesMut::new();
        while let Some(chunk) = resp.chunk().await.map_err(unreachable)? {
            if body.len() + chunk.len() > limit {
                return Err(UmbracoError::TooLarge { path, limit });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Answer {
            status,
            headers,
            body: body.freeze(),
        })
    }
}

/// Parses a JSON answer body, naming the endpoint in the error.
pub fn parse_json<T: serde::de::DeserializeOwned>(
    path: &'static str,
    body: &[u8],
) -> Result<T, UmbracoError> {
    serde_json::from_slice(body).map_err(|source| UmbracoError::Json { path, source })
}
