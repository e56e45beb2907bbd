//! Walks a whole document or media tree through the Management API: the live tree from
//! `tree/{kind}/root` down through `tree/{kind}/children?parentId=`, the recycle bin from
//! `recycle-bin/{kind}/root` down through `recycle-bin/{kind}/children` (Umbraco's
//! `RootDocumentTreeController`, `ChildrenDocumentTreeController`,
//! `RootDocumentRecycleBinController`, `ChildrenDocumentRecycleBinController` and their media
//! twins; `skip`/`take` paging with `total`). Only nodes that report `hasChildren` are asked
//! for children. At most `sync.concurrency` calls are in flight, one page per call; what is
//! kept per node is its key, parent and trashed flag, and a tree larger than `sync.max_nodes`
//! fails the walk.

use super::client::Reader;
use super::wire::{Paged, TreeItem};
use super::{SyncConfig, SyncError};
use crate::authz::NodeKind;
use crate::store::postgres::mirror::MirrorNode;
use futures::stream::{FuturesUnordered, StreamExt};
use std::collections::{HashSet, VecDeque};
use uuid::Uuid;

/// One page to fetch: which listing, under which parent, from which offset.
#[derive(Debug, Clone, Copy)]
struct Page {
    bin: bool,
    parent: Option<Uuid>,
    skip: u64,
}

fn segment(kind: NodeKind) -> &'static str {
    match kind {
        NodeKind::Media => "media",
        NodeKind::Document | NodeKind::Element => "document",
    }
}

/// The endpoint name (metrics, errors) and path of a page.
fn endpoint(kind: NodeKind, page: Page) -> (&'static str, String) {
    let seg = segment(kind);
    match (page.bin, page.parent.is_some()) {
        (false, false) => ("tree_root", format!("/tree/{seg}/root")),
        (false, true) => ("tree_children", format!("/tree/{seg}/children")),
        (true, false) => ("recycle_bin_root", format!("/recycle-bin/{seg}/root")),
        (true, true) => (
            "recycle_bin_children",
            format!("/recycle-bin/{seg}/children"),
        ),
    }
}

async fn fetch(
    reader: &Reader,
    kind: NodeKind,
    page: Page,
    take: u32,
) -> Result<(Page, Paged<TreeItem>), SyncError> {
    let (name, path) = endpoint(kind, page);
    let mut query = vec![("skip", page.skip.to_string()), ("take", take.to_string())];
    if let Some(p) = page.parent {
        query.insert(0, ("parentId", p.to_string()));
    }
    let answer = reader.get_found(name, &path, &query).await?;
    Ok((page, answer))
}

/// Every node of the `kind` tree, recycle bin included, parents before their children.
pub async fn walk(
    reader: &Reader,
    kind: NodeKind,
    cfg: &SyncConfig,
) -> Result<Vec<MirrorNode>, SyncError> {
    Ok(walk_marked(reader, kind, cfg).await?.0)
}

/// [`walk`], with the keys of the live nodes the listing marks `isProtected` (a public-access
/// entry on the node or on an ancestor).
pub async fn walk_marked(
    reader: &Reader,
    kind: NodeKind,
    cfg: &SyncConfig,
) -> Result<(Vec<MirrorNode>, Vec<Uuid>), SyncError> {
    let mut protected = Vec::new();
    let mut todo: VecDeque<Page> = VecDeque::from([
        Page {
            bin: false,
            parent: None,
            skip: 0,
        },
        Page {
            bin: true,
            parent: None,
            skip: 0,
        },
    ]);
    let mut nodes = Vec::new();
    let mut seen = HashSet::new();
    let mut running = FuturesUnordered::new();
    loop {
        while running.len() < cfg.concurrency {
            let Some(page) = todo.pop_front() else { break };
            running.push(fetch(reader, kind, page, cfg.page_size));
        }
        let Some(done) = running.next().await else {
            return Ok((nodes, protected));
        };
        let (page, answer) = done?;
        let got = answer.items.len() as u64;
        for item in answer.items {
            if !seen.insert(item.id) {
                // Listed twice: the tree changed under the walk. Nothing is applied; the
                // next sync (or the webhooks) catches up.
                return Err(SyncError::TreeChanged {
                    kind: kind.as_str(),
                });
            }
            if nodes.len() >= cfg.max_nodes {
                return Err(SyncError::TooManyNodes {
                    kind: kind.as_str(),
                    max: cfg.max_nodes,
                });
            }
            if item.is_protected && !page.bin {
                protected.push(item.id);
            }
            nodes.push(MirrorNode {
                key: item.id,
                parent: page.parent,
                trashed: page.bin || item.is_trashed,
            });
            if item.has_children {
                todo.push_back(Page {
                    bin: page.bin,
                    parent: Some(item.id),
                    skip: 0,
                });
            }
        }
        let next = page.skip + got;
        if got > 0 && next < u64::try_from(answer.total).unwrap_or(0) {
            todo.push_back(Page { skip: next, ..page });
        }
    }
}
