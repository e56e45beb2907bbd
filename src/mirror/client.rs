//! Authenticated reads of the Management API as the gateway's API user: `GET` with the
//! client-credentials token, one retry with a replaced token when Umbraco answers 401 (a
//! revoked token), bounded time and answer size, counted per endpoint in the Umbraco client
//! metrics.

use crate::umbraco::{parse_json, ApiUser, ManagementClient, UmbracoError, UmbracoMetrics};
use serde::de::DeserializeOwned;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The Management API's base path.
pub const API: &str = "/umbraco/management/api/v1";

/// Largest answer read (a page of `sync.page_size` items stays far below this).
const ANSWER_LIMIT: usize = 16 * 1024 * 1024;

/// A Management API reader (the mirror, document-version owners). Cheap to clone.
#[derive(Clone)]
pub struct Reader {
    client: ManagementClient,
    api_user: Arc<ApiUser>,
    metrics: UmbracoMetrics,
    timeout: Duration,
}

/// What a `GET` found: the parsed answer, or "not there" (404).
pub enum Found<T> {
    Yes(T),
    NotFound,
}

impl Reader {
    pub fn new(
        client: ManagementClient,
        api_user: Arc<ApiUser>,
        metrics: UmbracoMetrics,
        timeout: Duration,
    ) -> Self {
        Reader {
            client,
            api_user,
            metrics,
            timeout,
        }
    }

    /// `GET {API}{path}?{query}`; `endpoint` names it in errors and metrics (never the query).
    /// A 404 is [`Found::NotFound`]; any other non-2xx is an error.
    pub async fn get<T: DeserializeOwned>(
        &self,
        endpoint: &'static str,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<Found<T>, UmbracoError> {
        let started = Instant::now();
        let outcome = self.get_once(endpoint, path, query).await;
        self.metrics.observe(endpoint, started.elapsed(), &outcome);
        outcome
    }

    /// Like [`get`](Reader::get), where a 404 is an error too.
    pub async fn get_found<T: DeserializeOwned>(
        &self,
        endpoint: &'static str,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<T, UmbracoError> {
        match self.get(endpoint, path, query).await? {
            Found::Yes(v) => Ok(v),
            Found::NotFound => Err(UmbracoError::Status {
                path: endpoint,
                status: 404,
            }),
        }
    }

    async fn get_once<T: DeserializeOwned>(
        &self,
        endpoint: &'static str,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<Found<T>, UmbracoError> {
        let target = target(path, query);
        let mut token = self.api_user.token().await?;
        let mut answer = self.send(endpoint, &target, token.authorization()).await?;
        if answer.status == http::StatusCode::UNAUTHORIZED {
            token = self.api_user.replace(&token).await?;
            answer = self.send(endpoint, &target, token.authorization()).await?;
        }
        if answer.status == http::StatusCode::NOT_FOUND {
            return Ok(Found::NotFound);
        }
        if !answer.status.is_success() {
            return Err(UmbracoError::Status {
                path: endpoint,
                status: answer.status.as_u16(),
            });
        }
        parse_json(endpoint, &answer.body).map(Found::Yes)
    }

    async fn send(
        &self,
        endpoint: &'static str,
        target: &str,
        authorization: &http::HeaderValue,
    ) -> Result<crate::umbraco::Answer, UmbracoError> {
        let req = self
            .client
            .request(reqwest::Method::GET, target, self.timeout)
            .header(http::header::AUTHORIZATION, authorization.clone())
            .header(http::header::ACCEPT, "application/json");
        self.client.send(endpoint, req, ANSWER_LIMIT).await
    }
}

/// `{API}{path}` with the query percent-encoded.
fn target(path: &str, query: &[(&str, String)]) -> String {
    let mut s = format!("{API}{path}");
    if !query.is_empty() {
        let mut q = form_urlencoded::Serializer::new(String::new());
        for (k, v) in query {
            q.append_pair(k, v);
        }
        s.push('?');
        s.push_str(&q.finish());
    }
    s
}

#[cfg(test)]
mod tests {
    #[test]
    fn queries_are_percent_encoded_and_repeatable() {
        let t = super::target(
            "/item/document",
            &[("id", "a b".into()), ("id", "c&d".into())],
        );
        assert_eq!(
            t,
            "/umbraco/management/api/v1/item/document?id=a+b&id=c%26d"
        );
        assert_eq!(
            super::target("/user", &[]),
            "/umbraco/management/api/v1/user"
        );
    }
}
