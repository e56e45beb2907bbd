//! The compiled matcher: a segment trie. Each node has children keyed by lower-case literal, one
//! `{x:guid}` child, one `{x}` child, and per-method terminal and catch-all slots. Matching walks
//! children in ASP.NET precedence order (literal > `{x:guid}` > `{x}` > `{*x}`) and backtracks
//! when a branch has no route for the method, which yields the same winner as ASP.NET's
//! per-segment precedence. No regular expressions, no scan over the route list.

use super::{Method, Route, Seg};
use crate::request::body::parse_guid;
use crate::request::normalize::decode_path_component;

/// Longest literal segment a template may hold (longer request segments skip the literal map).
pub const MAX_LITERAL: usize = 64;

#[derive(Debug, Default)]
struct Node {
    // Lower-case literal children sorted by `lit_order`: a binary search with an ASCII
    // case-insensitive compare needs neither a hash nor a lower-cased copy of the request segment.
    lit: Vec<(Box<str>, usize)>,
    guid: Option<usize>,
    param: Option<usize>,
    catch_all: [Option<usize>; 5],
    end: [Option<usize>; 5],
}

#[derive(Debug)]
pub struct Trie {
    nodes: Vec<Node>,
}

impl Trie {
    /// Inserts every route; two routes with the same method and the same template shape (equal
    /// precedence everywhere) are recorded as problems.
    pub fn build(routes: &[Route], problems: &mut Vec<String>) -> Trie {
        let mut t = Trie {
            nodes: vec![Node::default()],
        };
        for (ri, r) in routes.iter().enumerate() {
            let mut n = 0;
            let mut slot_catch_all = false;
            for seg in &r.segs {
                n = match seg {
                    Seg::Literal(l) => match t.nodes[n].lit.iter().find(|(k, _)| **k == **l) {
                        Some(&(_, c)) => c,
                        None => {
                            let c = t.push();
                            t.nodes[n].lit.push((l.clone().into_boxed_str(), c));
                            c
                        }
                    },
                    Seg::Guid(_) => match t.nodes[n].guid {
                        Some(c) => c,
                        None => {
                            let c = t.push();
                            t.nodes[n].guid = Some(c);
                            c
                        }
                    },
                    Seg::Param(_) => match t.nodes[n].param {
                        Some(c) => c,
                        None => {
                            let c = t.push();
                            t.nodes[n].param = Some(c);
                            c
                        }
                    },
                    Seg::CatchAll(_) => {
                        slot_catch_all = true;
                        break;
                    }
                };
            }
            let m = r.method.index();
            let node = &mut t.nodes[n];
            let slot = if slot_catch_all {
                &mut node.catch_all[m]
            } else {
                &mut node.end[m]
            };
            match slot {
                Some(other) => problems.push(format!(
                    "routes `{}` and `{}` are ambiguous: same method `{}` and template precedence (`{}`)",
                    routes[*other].id,
                    r.id,
                    r.method.as_str(),
                    r.template
                )),
                None => *slot = Some(ri),
            }
        }
        for node in &mut t.nodes {
            node.lit.sort_by(|(a, _), (b, _)| lit_order(a, b));
        }
        t
    }

    fn push(&mut self) -> usize {
        self.nodes.push(Node::default());
        self.nodes.len() - 1
    }

    /// The index of the best route for `method` and the canonical segments.
    pub fn find(&self, method: Method, segs: &[&str]) -> Option<usize> {
        self.walk(0, segs, method.index())
    }

    fn walk(&self, n: usize, segs: &[&str], m: usize) -> Option<usize> {
        let node = &self.nodes[n];
        let Some((s, rest)) = segs.split_first() else {
            return node.end[m].or(node.catch_all[m]);
        };
        if s.len() <= MAX_LITERAL && !node.lit.is_empty() {
            // Literals are stored lower-case; routing is ASCII case-insensitive (normalize rule 13).
            // A segment without upper case compares as plain bytes, in the same order.
            let hit = if s.bytes().any(|b| b.is_ascii_uppercase()) {
                node.lit.binary_search_by(|(k, _)| lit_order(k, s))
            } else {
                node.lit.binary_search_by(|(k, _)| {
                    k.len()
                        .cmp(&s.len())
                        .then_with(|| k.as_bytes().cmp(s.as_bytes()))
                })
            }
            .ok();
            if let Some(r) = hit.and_then(|i| self.walk(node.lit[i].1, rest, m)) {
                return Some(r);
            }
        }
        if let Some(c) = node.guid {
            if segment_guid(s).is_some() {
                if let Some(r) = self.walk(c, rest, m) {
                    return Some(r);
                }
            }
        }
        if let Some(r) = node.param.and_then(|c| self.walk(c, rest, m)) {
            return Some(r);
        }
        node.catch_all[m]
    }
}

/// Orders a stored lower-case literal against a segment: by length, then by ASCII-lower-cased
/// bytes, so equal means equal ignoring ASCII case.
fn lit_order(key: &str, seg: &str) -> std::cmp::Ordering {
    key.len().cmp(&seg.len()).then_with(|| {
        key.bytes()
            .map(|b| b.to_ascii_lowercase())
            .cmp(seg.bytes().map(|b| b.to_ascii_lowercase()))
    })
}

/// The GUID a canonical path segment holds once decoded (the `guid` route constraint, and the
/// node id a path check names). Only an escaped segment needs a
/// decoded (allocated) copy; `%` is found with `memchr` (`str::contains` walks it a char at a
/// time).
pub fn segment_guid(s: &str) -> Option<uuid::Uuid> {
    if memchr::memchr(b'%', s.as_bytes()).is_some() {
        decode_path_component(s).and_then(|d| parse_guid(&d))
    } else {
        parse_guid(s)
    }
}
