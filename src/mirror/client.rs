//! Authenticated reads of the Management API as the gateway's API user: `GET` with the
//! client-credentials token, one retry with a replaced token when Umbraco answers 401 (a
//! revoked token), bounded time and answer size, counted per endpoint in the Umbraco client
//! metrics. [`each_bounded`] runs many reads with at most `sync.concurrency` in flight.

use crate::umbraco::{parse_json, ApiUser, ManagementClient, UmbracoError, UmbracoMetrics};
use futures::stream::{self, StreamExt, TryStreamExt};
use serde::de::DeserializeOwned;
use std::future::Future;
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

/// Calls `call` on each of `items` with at most `concurrency` calls in flight (at least one) and
/// extends `into` with what each call returns, in the order the calls finish. The first error
/// ends the loop (the calls still in flight are dropped) and is returned.
pub async fn each_bounded<I, F, Fut, R, C, E>(
    items: I,
    concurrency: usize,
    call: F,
    into: C,
) -> Result<C, E>
where
    I: IntoIterator,
    F: FnMut(I::Item) -> Fut,
    Fut: Future<Output = Result<R, E>>,
    R: IntoIterator,
    C: Extend<R::Item>,
{
    stream::iter(items)
        .map(call)
        .buffer_unordered(concurrency.max(1))
        .try_fold(into, |mut all, part| async move {
            all.extend(part);
            Ok(all)
        })
        .await
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

    /// Runs 20 calls of which the odd ones return nothing; returns what was kept and the most
    /// calls that were in flight at once.
    async fn run(concurrency: usize, fail_at: Option<u32>) -> (Result<Vec<u32>, u32>, usize) {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let (now, most) = (AtomicUsize::new(0), AtomicUsize::new(0));
        let call = |i: u32| {
            let (now, most) = (&now, &most);
            async move {
                most.fetch_max(now.fetch_add(1, Ordering::SeqCst) + 1, Ordering::SeqCst);
                for _ in 0..3 {
                    tokio::task::yield_now().await;
                }
                now.fetch_sub(1, Ordering::SeqCst);
                match fail_at {
                    Some(f) if f == i => Err(i),
                    _ => Ok((i % 2 == 0).then_some(i)),
                }
            }
        };
        let got = super::each_bounded(0..20, concurrency, call, Vec::new()).await;
        (got, most.load(Ordering::SeqCst))
    }

    #[tokio::test(flavor = "current_thread")]
    async fn each_bounded_keeps_every_answer_with_at_most_concurrency_calls_in_flight() {
        let (got, most) = run(3, None).await;
        let mut got = got.unwrap();
        got.sort_unstable();
        assert_eq!(got, (0..20).step_by(2).collect::<Vec<_>>());
        assert_eq!(most, 3);
        // No concurrency is one call at a time, not none.
        let (got, most) = run(0, None).await;
        assert_eq!((got.map(|g| g.len()), most), (Ok(10), 1));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn each_bounded_ends_with_the_first_error() {
        assert_eq!(run(3, Some(7)).await.0, Err(7));
    }
}
