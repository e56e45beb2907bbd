//! The compiled matcher: a segment trie. Each node has children keyed by lower-case literal, one
//! `{x:guid}` child, one `{x}` child, and per-method terminal and catch-all slots. Matching walks
//! children in ASP.NET precedence order (literal > `{x:guid}` > `{x}` > `{*x}`) and backtracks
//! when a branch has no route for the method, which yields the same winner as ASP.NET's
//! per-segment precedence. No regular expressions, no scan over the route list.

use super::{Method, Route, Seg};
use crate::request::body::parse_guid;
use crate::request::normalize::decode_path_component;
use std::collections::HashMap;

/// Longest literal segment a template may hold (longer request segments skip the literal map).
pub const MAX_LITERAL: usize = 64;

#[derive(Debug, Default)]
struct Node {
    lit: HashMap<Box<str>, usize>,
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
                    Seg::Literal(l) => match t.nodes[n].lit.get(l.as_str()) {
                        Some(&c) => c,
                        None => {
                            let c = t.push();
                            t.nodes[n].lit.insert(l.clone().into_boxed_str(), c);
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
            let mut buf = [0u8; MAX_LITERAL];
            let lower = &mut buf[..s.len()];
            lower.copy_from_slice(s.as_bytes());
            lower.make_ascii_lowercase();
            if let Ok(key) = std::str::from_utf8(lower) {
                if let Some(r) = node.lit.get(key).and_then(|&c| self.walk(c, rest, m)) {
                    return Some(r);
                }
            }
        }
        if let Some(c) = node.guid {
            if segment_is_guid(s) {
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

/// Whether a canonical path segment is a GUID once decoded (as the `guid` route constraint).
pub fn segment_is_guid(s: &str) -> bool {
    if s.contains('%') {
        decode_path_component(s).is_some_and(|d| parse_guid(&d).is_some())
    } else {
        parse_guid(s).is_some()
    }
}
