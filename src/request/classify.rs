//! The classifier: the one entry point the proxy calls. Canonicalises the target, finds the API
//! and route, reads node ids from the path and query, and — for routes whose nodes or cultures
//! are in the body — asks for the body and finishes in [`Classifier::complete`].
//!
//! Method-override headers (`X-HTTP-Method-Override`, `X-HTTP-Method`, `X-Method-Override`)
//! are never trusted: their presence alone is `malformed_request`, on every path. HEAD is matched
//! as GET. Methods other than GET/HEAD/POST/PUT/PATCH/DELETE match no route.

use super::body::{self, BodyError};
use super::delivery::{content_path, delivery_query, query_pairs};
use super::normalize::{canonicalize, Canonical};
use super::route::{
    ItemScope, Method, Route, RouteError, RouteTable, RoutesConfig, Source, Unmatched,
};
use super::{Api, NodeCheck, NodeRef, SectionPolicy, Target};
use crate::authz::DenyReason;
use http::{HeaderMap, HeaderName};
use smallvec::SmallVec;
use std::path::Path;

/// Headers that ask a framework to treat the request as another method.
// Pre-parsed names: a `&str` key would be parsed and validated on every lookup.
const METHOD_OVERRIDE_HEADERS: [HeaderName; 3] = [
    HeaderName::from_static("x-http-method-override"),
    HeaderName::from_static("x-http-method"),
    HeaderName::from_static("x-method-override"),
];

/// What the proxy should do with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Classified {
    /// Outside every protected prefix: forward `uri` (canonical path and query) unchecked.
    Passthrough { uri: String },
    /// Refuse with this reason.
    Reject(DenyReason),
    /// Classified: authenticate and authorise `target`, then forward `uri`.
    Ready { target: Target, uri: String },
    /// Read the body (up to [`Classifier::body_limit`]), then call [`Classifier::complete`].
    NeedsBody(PendingBody),
}

/// A classified request still missing what its body says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingBody {
    route: usize,
    /// The target with path/query nodes filled; body-sourced checks have no nodes yet.
    pub target: Target,
    /// Canonical path and query to forward.
    pub uri: String,
}

/// Compiled routes plus the `[routes]` policies; cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct Classifier {
    table: RouteTable,
    cfg: RoutesConfig,
    item_scope: ItemScope,
}

impl Classifier {
    /// Loads and compiles the route files named by `cfg` (relative to `base_dir`, the config
    /// file's directory). Every problem in the files is reported in one [`RouteError::Invalid`].
    pub fn from_config(cfg: &RoutesConfig, base_dir: &Path) -> Result<Classifier, RouteError> {
        let table = RouteTable::load(cfg, base_dir)?;
        Ok(Classifier::from_table(table, cfg))
    }

    /// Wraps an already-built table.
    pub fn from_table(table: RouteTable, cfg: &RoutesConfig) -> Classifier {
        Classifier {
            table,
            cfg: cfg.clone(),
            item_scope: ItemScope::default(),
        }
    }

    /// Applies `[authz] item_scope`: with `start_nodes`, the profile checks marked
    /// `when = "item_scope=start_nodes"` apply; by default (`umbraco`) they do not.
    pub fn with_item_scope(mut self, item_scope: ItemScope) -> Classifier {
        self.item_scope = item_scope;
        self
    }

    /// The route's checks that apply under this config, in profile order.
    fn checks<'r>(&self, route: &'r Route) -> impl Iterator<Item = &'r super::route::CheckSpec> {
        let scope = self.item_scope;
        route.checks.iter().filter(move |c| c.applies(scope))
    }

    /// The compiled table (for `routes list` and metrics labels).
    pub fn table(&self) -> &RouteTable {
        &self.table
    }

    /// The most body bytes [`Classifier::complete`] accepts.
    pub fn body_limit(&self) -> usize {
        self.cfg.body_limit
    }

    /// Classifies a request head. Never does I/O. Note that `http::Uri` has already dropped any
    /// `#fragment`; the proxy should use [`Classifier::classify_raw`] with the raw target.
    pub fn classify(&self, parts: &http::request::Parts) -> Classified {
        let Some(pq) = parts.uri.path_and_query() else {
            return reject(DenyReason::Malformed, "no path");
        };
        self.classify_target(parts.method.as_str(), pq.as_str(), &parts.headers)
    }

    /// Classifies the request target exactly as received (pingora's `RequestHeader::raw_path()`):
    /// unlike `http::Uri`, which silently drops a `#fragment`, this sees every byte, so
    /// fragments and non-UTF-8 targets are rejected. Prefer it over [`Classifier::classify`].
    pub fn classify_raw(&self, method: &str, raw_target: &[u8], headers: &HeaderMap) -> Classified {
        match std::str::from_utf8(raw_target) {
            Ok(t) => self.classify_target(method, t, headers),
            Err(e) => reject(DenyReason::Malformed, &e.to_string()),
        }
    }

    /// Classifies a method, a raw request target and headers (what `classify` and the
    /// `routes match` command share).
    pub fn classify_target(&self, method: &str, target: &str, headers: &HeaderMap) -> Classified {
        if METHOD_OVERRIDE_HEADERS
            .iter()
            .any(|h| headers.contains_key(h))
        {
            return reject(DenyReason::Malformed, "method override header");
        }
        let canon = match canonicalize(target, &self.table.prefix_segs) {
            Ok(c) => c,
            Err(e) => return reject(DenyReason::Malformed, &e.to_string()),
        };
        self.classify_canonical(method, &canon, headers)
    }

    fn classify_canonical(
        &self,
        method: &str,
        canon: &Canonical,
        headers: &HeaderMap,
    ) -> Classified {
        let segs: SmallVec<[&str; 16]> = canon.segments().collect();
        let Some(p) = self.table.prefix_segs.find(segs.iter().copied()) else {
            if !canon.encoded_slash.is_empty() {
                return reject(DenyReason::Malformed, "encoded slash");
            }
            return if self.cfg.passthrough_outside_prefixes {
                Classified::Passthrough { uri: canon.uri() }
            } else {
                reject(DenyReason::NoRoute, "outside protected prefixes")
            };
        };
        let api = self.table.prefixes[p].0;
        let found = Method::parse(method).and_then(|m| {
            let i = self.table.find_index(m, &segs)?;
            Some((i, &self.table.routes[i]))
        });
        let Some((ri, route)) = found else {
            return self.unmatched(api, canon, headers);
        };
        if !canon.encoded_slash.is_empty() && !encoded_slashes_ok(route, &segs, canon) {
            return reject(
                DenyReason::Malformed,
                "encoded slash outside a decoded path parameter",
            );
        }
        let mut checks = Vec::with_capacity(route.checks.len());
        for c in self.checks(route) {
            let nodes = match resolve_head(&c.source, &segs, canon.query.as_deref()) {
                Ok(n) => n,
                Err(why) => return reject(DenyReason::Malformed, why),
            };
            checks.push(NodeCheck {
                kind: c.kind,
                scope: c.scope,
                source: c.source_text.clone(),
                nodes,
                verbs: c.verbs.clone(),
            });
        }
        let delivery = match api {
            Api::Delivery => match delivery_query(headers, canon.query.as_deref()) {
                Ok(d) => Some(d),
                Err(e) => return reject(DenyReason::Malformed, &e.to_string()),
            },
            Api::Management => None,
        };
        let target = Target {
            api,
            route: route.id.clone(),
            sections: route.sections.clone(),
            checks,
            cultures: Vec::new(),
            delivery,
        };
        let uri = canon.uri();
        if route.needs_body() {
            Classified::NeedsBody(PendingBody {
                route: ri,
                target,
                uri,
            })
        } else {
            Classified::Ready { target, uri }
        }
    }

    fn unmatched(&self, api: Api, canon: &Canonical, headers: &HeaderMap) -> Classified {
        let policy = match api {
            Api::Management => self.cfg.unmatched.management,
            Api::Delivery => self.cfg.unmatched.delivery,
        };
        if !canon.encoded_slash.is_empty() {
            return reject(DenyReason::Malformed, "encoded slash");
        }
        if policy == Unmatched::Deny {
            return reject(DenyReason::NoRoute, "no route");
        }
        let delivery = match api {
            Api::Delivery => match delivery_query(headers, canon.query.as_deref()) {
                Ok(d) => Some(d),
                Err(e) => return reject(DenyReason::Malformed, &e.to_string()),
            },
            Api::Management => None,
        };
        Classified::Ready {
            target: Target {
                api,
                route: super::route::UNMATCHED.clone(),
                sections: SectionPolicy::Backoffice,
                checks: Vec::new(),
                cultures: Vec::new(),
                delivery,
            },
            uri: canon.uri(),
        }
    }

    /// Finishes a [`Classified::NeedsBody`] with the body bytes (forward exactly these bytes).
    /// Returns the complete target and the uri, or `BodyTooLarge` / `Malformed`.
    pub fn complete(
        &self,
        pending: &PendingBody,
        body: &[u8],
    ) -> Result<(Target, String), DenyReason> {
        let route: &Route = self
            .table
            .routes
            .get(pending.route)
            .ok_or(DenyReason::Malformed)?;
        let json = body::parse(body, self.cfg.body_limit).map_err(body_deny)?;
        let mut target = pending.target.clone();
        for (check, spec) in target.checks.iter_mut().zip(self.checks(route)) {
            if let Source::Body { path, null_root } = &spec.source {
                check.nodes = body::node_refs(&json, path, *null_root).map_err(body_deny)?;
            }
        }
        if let Some(path) = &route.cultures {
            target.cultures = body::cultures(&json, path).map_err(body_deny)?;
        }
        Ok((target, pending.uri.clone()))
    }
}

fn body_deny(e: BodyError) -> DenyReason {
    let reason = match e {
        BodyError::TooLarge { .. } => DenyReason::BodyTooLarge,
        BodyError::Json(_) | BodyError::Shape { .. } | BodyError::AmbiguousName { .. } => {
            DenyReason::Malformed
        }
    };
    tracing::debug!(deny.reason = reason.as_str(), error = %e, "request body rejected");
    reason
}

fn reject(reason: DenyReason, why: &str) -> Classified {
    tracing::debug!(deny.reason = reason.as_str(), why, "request not classified");
    Classified::Reject(reason)
}

/// Whether every `%2F` sits in a segment Umbraco URL-decodes itself: a `decode_path` parameter
/// (`DecodePath` in the file-system and Delivery by-path controllers). Kestrel leaves `%2F`
/// undecoded (aspnetcore `src/Shared/UrlDecoder/UrlDecoder.cs`, `SkipUnescape`), so routing sees
/// one segment, exactly as the matcher did. The decoded value may not hide a dot, dot-dot or
/// empty segment (no traversal once Umbraco decodes it).
fn encoded_slashes_ok(route: &Route, segs: &[&str], canon: &Canonical) -> bool {
    canon.encoded_slash.iter().all(|&i| {
        let i = usize::from(i);
        route.decode.iter().any(|&d| {
            let catch_all = matches!(route.segs.get(d), Some(super::route::Seg::CatchAll(_)));
            let value = match (catch_all, d <= i, d == i) {
                (true, true, _) => segs.get(d..),
                (false, _, true) => segs.get(d..=d),
                _ => None,
            };
            value.is_some_and(|v| content_path(v).is_ok())
        })
    })
}

/// Nodes a check names from the path or query (body sources are filled later).
fn resolve_head(
    source: &Source,
    segs: &[&str],
    query: Option<&str>,
) -> Result<Vec<NodeRef>, &'static str> {
    Ok(match source {
        Source::Root => vec![NodeRef::Root],
        Source::RecycleBin => vec![NodeRef::RecycleBin],
        Source::Body { .. } => Vec::new(),
        Source::Path {
            index,
            catch_all: true,
        } => vec![content_path(segs.get(*index..).unwrap_or_default())
            .map_err(|_e| "bad content path")?],
        Source::Path { index, .. } => {
            let seg = segs.get(*index).ok_or("missing path parameter")?;
            let key = super::route::segment_guid(seg).ok_or("path parameter is not a guid")?;
            vec![NodeRef::Key(key)]
        }
        Source::Query(name) => {
            // ASP.NET also binds collections from `id[0]=…`, `id[]=…` and, with no `id` key,
            // from an empty prefix (`[0]=…`): ids Portcullis would not see. Refuse those forms.
            let indexed = query_pairs(query).any(|(n, _)| {
                n.starts_with('[')
                    || (n.len() > name.len()
                        && n.is_char_boundary(name.len())
                        && n[..name.len()].eq_ignore_ascii_case(name)
                        && n[name.len()..].starts_with(['[', '.']))
            });
            if indexed {
                return Err("indexed query parameter");
            }
            query_pairs(query)
                .filter(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| body::parse_guid(&v).map(NodeRef::Key))
                .collect::<Option<Vec<_>>>()
                .ok_or("query parameter is not a guid")?
        }
    })
}

#[cfg(test)]
#[path = "classify_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "classify_path_tests.rs"]
mod path_tests;
