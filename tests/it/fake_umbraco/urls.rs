//! `GET document/urls?id=…&id=…` (`DocumentUrlController` → `DocumentUrlFactory.CreateUrlSetsAsync`
//! → `PublishedUrlInfoProvider.GetAllAsync`), as Umbraco answers it without domains: an array of
//! `DocumentUrlInfoResponseModel` (`{id, urlInfos: [{culture, url, message, provider,
//! isExternal}]}`) for the ids that are documents (others are left out). Invariant content is
//! asked in the default culture only; variant content in every culture, where
//! `NewDefaultUrlProvider.GetUrlFromRoute` gives no URL to a non-default culture without a
//! domain (its message entry has no `url` and `CreateDocumentUrlInfos` drops it). The URL is
//! `DocumentUrlService.GetLegacyRouteFormat` + `GetFullUrl`: the published URL segments of the
//! ancestors-or-self, the root's left out under `hideTopLevelNodeFromPath` unless the node is a
//! root other than the first published one; a trailing `/` (`AddTrailingSlash`). A URL that
//! `GetDocumentKeyByRoute` routes to another document is a collision (a message, no `url`).
//! Trashed and unpublished documents have none.

use super::model::{Node, State, Tree};
use super::{Reply, Req};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashSet};
use uuid::Uuid;

/// What decides URLs beyond the tree and the languages (`members.rs`; the default language,
/// `en-US` when none is set up): `hideTopLevelNodeFromPath`, unpublished documents and the
/// per-culture URL segments of variant documents (a culture listed is published with that
/// segment; invariant documents use their name's segment).
#[derive(Debug, Clone)]
pub struct UrlModel {
    pub hide_top_level: bool,
    pub unpublished: HashSet<Uuid>,
    pub variants: BTreeMap<Uuid, BTreeMap<String, String>>,
}

impl Default for UrlModel {
    fn default() -> Self {
        UrlModel {
            hide_top_level: true,
            unpublished: HashSet::new(),
            variants: BTreeMap::new(),
        }
    }
}

/// `DefaultShortStringHelper`'s URL segment, roughly: lower case, runs of anything but ASCII
/// letters and digits become one `-`.
pub fn url_segment(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    out.trim_end_matches('-').to_owned()
}

impl State {
    /// The default language's ISO code (`en-US`, an install's default, when none is set up).
    pub fn default_culture(&self) -> String {
        let langs = &self.protection.languages;
        langs
            .iter()
            .find(|l| l.is_default)
            .map_or_else(|| "en-US".to_owned(), |l| l.iso_code.clone())
    }

    /// The published URL segment of `key` in `culture` (`None`: not published there).
    fn segment_in(&self, key: Uuid, culture: &str) -> Option<String> {
        let n = self.nodes.get(&key)?;
        if n.trashed || n.tree != Tree::Document || self.urls.unpublished.contains(&key) {
            return None;
        }
        match self.urls.variants.get(&key) {
            Some(v) => v
                .iter()
                .find(|(c, _)| c.eq_ignore_ascii_case(culture))
                .map(|(_, s)| s.clone()),
            None => Some(url_segment(&n.name)),
        }
    }

    /// Live documents under `parent` (`None`: the roots) in sort order.
    fn doc_children(&mut self, parent: Option<Uuid>) -> Vec<Uuid> {
        if self.tree_index.is_none() {
            self.index_tree();
        }
        self.tree_index
            .as_ref()
            .and_then(|i| i.children.get(&(Tree::Document, parent, false)).cloned())
            .unwrap_or_default()
    }

    fn first_with(&self, keys: &[Uuid], segment: &str, culture: &str) -> Option<Uuid> {
        keys.iter()
            .copied()
            .find(|k| self.segment_in(*k, culture).as_deref() == Some(segment))
    }

    /// `DocumentUrlService.GetDocumentKeyByRoute` without a start node, published content.
    pub fn key_by_route(&mut self, route: &str, culture: &str) -> Option<Uuid> {
        let segments: Vec<&str> = route.split('/').filter(|s| !s.is_empty()).collect();
        let roots = self.doc_children(None);
        let published_roots: Vec<Uuid> = roots
            .iter()
            .copied()
            .filter(|r| self.segment_in(*r, culture).is_some())
            .collect();
        let hide = self.urls.hide_top_level;
        if segments.is_empty() {
            return published_roots.first().copied();
        }
        if segments.len() == 1 && hide {
            if let Some(k) = self.first_with(&roots, segments[0], culture) {
                return Some(k);
            }
        }
        let mut runner: Option<Uuid> = None;
        for (i, seg) in segments.iter().enumerate() {
            let candidates = match (i, runner) {
                (0, _) if hide => {
                    let mut c: Vec<Uuid> = roots.first().copied().into_iter().collect();
                    for r in &published_roots {
                        c.extend(self.doc_children(Some(*r)));
                    }
                    c
                }
                (0, _) => roots.clone(),
                (_, Some(r)) => self.doc_children(Some(r)),
                (_, None) => break,
            };
            runner = self.first_with(&candidates, seg, culture);
        }
        runner.filter(|k| self.segment_in(*k, culture).is_some())
    }

    /// The URL of `key` in `culture` without domains (`None`: not routable there).
    fn url_in(&mut self, key: Uuid, culture: &str) -> Option<String> {
        let mut chain = Vec::new();
        let mut cur = self.nodes.get(&key).map(|n| n.key);
        while let Some(k) = cur {
            chain.push(self.segment_in(k, culture)?);
            cur = self.nodes.get(&k).and_then(|n| n.parent);
        }
        chain.reverse();
        let root = self.ancestors_or_self(key).last().copied();
        let first_published_root = self
            .doc_children(None)
            .into_iter()
            .find(|r| self.segment_in(*r, culture).is_some());
        let is_first = root.is_some() && root == first_published_root;
        // `HideTopLevel`: a root other than the first keeps its one segment.
        let hide = self.urls.hide_top_level && (is_first || chain.len() != 1);
        let kept: Vec<String> = chain.into_iter().skip(usize::from(hide)).collect();
        Some(if kept.is_empty() {
            "/".into()
        } else {
            format!("/{}/", kept.join("/"))
        })
    }

    fn ancestors_or_self(&self, key: Uuid) -> Vec<Uuid> {
        let mut out = Vec::new();
        let mut cur = Some(key);
        while let Some(k) = cur {
            out.push(k);
            cur = self.nodes.get(&k).and_then(|n| n.parent);
        }
        out
    }

    /// The `urlInfos` of one document.
    fn url_infos(&mut self, n: &Node) -> Vec<Value> {
        let default = self.default_culture();
        let cultures: Vec<String> = match self.urls.variants.get(&n.key) {
            None => vec![default.clone()],
            Some(v) => {
                let mut all: Vec<String> = v.keys().cloned().collect();
                if !all.iter().any(|c| c.eq_ignore_ascii_case(&default)) {
                    all.push(default.clone());
                }
                all
            }
        };
        let mut out = Vec::new();
        for culture in cultures.iter().filter(|c| c.eq_ignore_ascii_case(&default)) {
            let Some(url) = self.url_in(n.key, culture) else {
                continue;
            };
            if self.key_by_route(&url, culture) != Some(n.key) {
                continue; // a collision: a message, no url
            }
            out.push(json!({"culture": culture, "url": url, "message": null,
                            "provider": "umbDocumentUrlProvider", "isExternal": false}));
        }
        out
    }
}

pub fn document_urls(state: &mut State, req: &Req) -> Reply {
    if let Err(r) = super::auth::backoffice_user(state, req) {
        return r;
    }
    if let Some(r) = super::listing::fault(state, req.endpoint) {
        return r;
    }
    let mut wanted = Vec::new();
    for (_, v) in req
        .query
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("id"))
    {
        match Uuid::parse_str(v.trim()) {
            Ok(k) => wanted.push(k),
            Err(_) => return Reply::problem(400, "The value is not valid for id."),
        }
    }
    let docs: Vec<Node> = wanted
        .iter()
        .filter_map(|k| state.nodes.get(k))
        .filter(|n| n.tree == Tree::Document)
        .cloned()
        .collect();
    let out: Vec<Value> = docs
        .iter()
        .map(|n| json!({"id": n.key, "urlInfos": state.url_infos(n)}))
        .collect();
    Reply::json(200, Value::Array(out))
}
