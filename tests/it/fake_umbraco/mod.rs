//! A faithful fake of the parts of Umbraco's Management API the gateway calls, on a loopback
//! port: the client-credentials token endpoint, `GET user/current` and the tree ancestors
//! endpoints. Status codes and JSON shapes follow Umbraco's `OpenApi.json` (the subsets in
//! `shared/reference/umbraco-openapi/`) and the controllers named in each module; the data and
//! its rules live in [`model`].
//!
//! Extending it (another endpoint): write `fn(&mut State, &Req) -> Reply` in the module of its
//! area (or a new one), add one line to [`ROUTES`], and use [`auth::backoffice_user`] for the
//! `BackOfficeAccess` policy plus [`auth::require_sections`] for a section policy. Tests change
//! the data with [`FakeUmbraco::with`] and read what was called with [`FakeUmbraco::calls`] /
//! [`FakeUmbraco::requests`].

#![allow(dead_code)]

pub mod auth;
mod directory;
mod document;
mod edit;
mod listing;
mod members;
pub mod model;
mod security;
#[cfg(test)]
mod tests;
mod tree;
pub mod urls;
mod users;
pub mod versions;

pub use model::State;

use bytes::Bytes;
use http_body_util::Full;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

/// One request as the fake received it.
#[derive(Debug, Clone)]
pub struct Req {
    pub method: http::Method,
    /// The path as sent (percent-encoded), without the query.
    pub path: String,
    /// Query parameters, percent-decoded, names as sent.
    pub query: Vec<(String, String)>,
    pub headers: http::HeaderMap,
    pub body: Bytes,
    /// `{name}` segments of the matched route pattern.
    pub params: BTreeMap<String, String>,
    /// The [`ROUTES`] endpoint name that answered (`"unmatched"` for none).
    pub endpoint: &'static str,
}

impl Req {
    /// The first query parameter named `name` (case-insensitive, like ASP.NET's `Request.Query`).
    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The `application/x-www-form-urlencoded` body fields (empty for other content types).
    pub fn form(&self) -> Vec<(String, String)> {
        let is_form = self
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.to_ascii_lowercase()
                    .starts_with("application/x-www-form-urlencoded")
            });
        if !is_form {
            return Vec::new();
        }
        parse_pairs(&String::from_utf8_lossy(&self.body))
    }
}

/// The fake's answer.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Option<serde_json::Value>,
}

impl Reply {
    pub fn json(status: u16, body: serde_json::Value) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: Some(body),
        }
    }
    /// A status with no body (what ASP.NET's `Forbid()`/`Unauthorized()` send).
    pub fn empty(status: u16) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: None,
        }
    }
    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Reply {
        self.headers.push((name, value.into()));
        self
    }
    /// An RFC 7807 problem-details body (`ProblemDetails` in the OpenAPI document).
    pub fn problem(status: u16, title: &str) -> Reply {
        Reply::json(
            status,
            serde_json::json!({"type": "Error", "title": title, "status": status}),
        )
    }
}

type Handler = fn(&mut State, &Req) -> Reply;

/// The endpoints the fake answers: method, path pattern (`{name}` captures one segment,
/// matched case-insensitively like ASP.NET routing), endpoint name (for call counts), handler.
pub const ROUTES: &[(&str, &str, &str, Handler)] = &[
    (
        "POST",
        "/umbraco/management/api/v1/security/back-office/token",
        "token",
        security::token,
    ),
    (
        "GET",
        "/umbraco/management/api/v1/user/current",
        "user_current",
        users::current,
    ),
    (
        "GET",
        "/umbraco/management/api/v1/tree/document/ancestors",
        "tree_document_ancestors",
        tree::document_ancestors,
    ),
    (
        "GET",
        "/umbraco/management/api/v1/tree/media/ancestors",
        "tree_media_ancestors",
        tree::media_ancestors,
    ),
    (
        "POST",
        "/umbraco/management/api/v1/document",
        "document_create",
        document::create,
    ),
    (
        "PUT",
        "/umbraco/management/api/v1/document/{id}",
        "document_update",
        document::update,
    ),
    // The mirror's reads (`listing.rs`, `directory.rs`).
    (
        "GET",
        "/umbraco/management/api/v1/tree/{tree}/root",
        "tree_root",
        listing::tree_root,
    ),
    (
        "GET",
        "/umbraco/management/api/v1/tree/{tree}/children",
        "tree_children",
        listing::tree_children,
    ),
    (
        "GET",
        "/umbraco/management/api/v1/recycle-bin/{tree}/root",
        "recycle_bin_root",
        listing::bin_root,
    ),
    (
        "GET",
        "/umbraco/management/api/v1/recycle-bin/{tree}/children",
        "recycle_bin_children",
        listing::bin_children,
    ),
    (
        "GET",
        "/umbraco/management/api/v1/item/{tree}",
        "item",
        listing::items,
    ),
    (
        "GET",
        "/umbraco/management/api/v1/document/urls",
        "document_urls",
        urls::document_urls,
    ),
    (
        "GET",
        "/umbraco/management/api/v1/user-group",
        "user_groups",
        directory::user_groups,
    ),
    (
        "GET",
        "/umbraco/management/api/v1/user-group/{id}",
        "user_group",
        directory::user_group,
    ),
    (
        "GET",
        "/umbraco/management/api/v1/user",
        "users",
        directory::users,
    ),
    (
        "GET",
        "/umbraco/management/api/v1/user/{id}",
        "user",
        directory::user,
    ),
    (
        "GET",
        "/umbraco/management/api/v1/document/{id}/public-access",
        "document_public_access",
        members::document_public_access,
    ),
    (
        "GET",
        "/umbraco/management/api/v1/member/{id}",
        "member",
        members::member,
    ),
    (
        "GET",
        "/umbraco/management/api/v1/language",
        "language",
        members::languages,
    ),
    (
        "GET",
        "/umbraco/management/api/v1/document-version/{id}",
        "document_version",
        versions::by_key,
    ),
];

/// A running fake Umbraco on 127.0.0.1; stops when dropped.
pub struct FakeUmbraco {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    log: Arc<Mutex<Vec<Req>>>,
    task: tokio::task::JoinHandle<()>,
}

impl FakeUmbraco {
    /// Starts the fake with `state` on a free port.
    pub async fn start(state: State) -> FakeUmbraco {
        let state = Arc::new(Mutex::new(state));
        let log: Arc<Mutex<Vec<Req>>> = Arc::default();
        let (s, l) = (state.clone(), log.clone());
        let (addr, task) = crate::harness::serve_loopback(move |parts, body| {
            serve(parts, body, s.clone(), l.clone())
        })
        .await;
        FakeUmbraco {
            addr,
            state,
            log,
            task,
        }
    }

    /// Reads or changes the fake's data.
    pub fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        f(&mut self.state.lock().expect("fake state"))
    }

    /// How many requests the endpoint named `endpoint` (see [`ROUTES`]) received.
    pub fn calls(&self, endpoint: &str) -> usize {
        let log = self.log.lock().expect("fake log");
        log.iter().filter(|r| r.endpoint == endpoint).count()
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<Req> {
        self.log.lock().expect("fake log").clone()
    }
}

impl Drop for FakeUmbraco {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(
    parts: http::request::Parts,
    body: Bytes,
    state: Arc<Mutex<State>>,
    log: Arc<Mutex<Vec<Req>>>,
) -> hyper::Response<Full<Bytes>> {
    let mut req = Req {
        method: parts.method,
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().map(parse_pairs).unwrap_or_default(),
        headers: parts.headers,
        body,
        params: BTreeMap::new(),
        endpoint: "unmatched",
    };
    let handler = ROUTES.iter().find_map(|(method, pattern, name, handler)| {
        let params = match_path(pattern, &req.path)?;
        (req.method.as_str() == *method).then_some((*name, params, *handler))
    });
    let delay = handler.as_ref().and_then(|(name, ..)| {
        let s = state.lock().expect("fake state");
        s.delays.get(name).copied()
    });
    if let Some(d) = delay {
        tokio::time::sleep(d).await;
    }
    let reply = match handler {
        Some((name, params, handler)) => {
            req.endpoint = name;
            req.params = params;
            let mut s = state.lock().expect("fake state");
            handler(&mut s, &req)
        }
        None => Reply::empty(404),
    };
    log.lock().expect("fake log").push(req);
    let mut resp = hyper::Response::builder().status(reply.status);
    for (name, value) in &reply.headers {
        resp = resp.header(*name, value.as_str());
    }
    let body = match &reply.body {
        Some(v) => {
            resp = resp.header("content-type", "application/json; charset=utf-8");
            Bytes::from(v.to_string())
        }
        None => Bytes::new(),
    };
    resp.body(Full::new(body)).expect("fake response")
}

/// Matches `path` against a pattern with `{name}` segments, case-insensitively.
fn match_path(pattern: &str, path: &str) -> Option<BTreeMap<String, String>> {
    let mut params = BTreeMap::new();
    let mut want = pattern.split('/');
    let mut got = path.trim_end_matches('/').split('/');
    loop {
        match (want.next(), got.next()) {
            (None, None) => return Some(params),
            (Some(w), Some(g)) if w.starts_with('{') && w.ends_with('}') => {
                params.insert(w[1..w.len() - 1].to_owned(), decode(g));
            }
            (Some(w), Some(g)) if w.eq_ignore_ascii_case(g) => {}
            _ => return None,
        }
    }
}

fn parse_pairs(s: &str) -> Vec<(String, String)> {
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(&s.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}
