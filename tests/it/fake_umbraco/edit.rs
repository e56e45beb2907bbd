//! Content operations on the fake's data as Umbraco performs them (`ContentService.Move`,
//! `MoveToRecycleBin`, restore = a move out of the bin, `Delete`): a move or trash carries
//! the whole subtree, trashing marks every descendant trashed, deleting removes descendants.
//! Plus bulk builders for large trees and user directories (tests and the mirror bench).

use super::model::{Group, Node, Start, State, Tree, User, UserKind};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use uuid::Uuid;

/// Children by (tree, parent, trashed) in listing order, and the nodes that have children.
#[derive(Debug, Default)]
pub struct TreeIndex {
    pub children: HashMap<(Tree, Option<Uuid>, bool), Vec<Uuid>>,
    pub parents: HashSet<Uuid>,
}

/// Ids of bulk-built nodes start here, far above `add_node`'s.
const BULK_IDS: i64 = 10_000_000;

impl State {
    /// The keys of `key` and all its descendants.
    pub fn subtree(&self, key: Uuid) -> Vec<Uuid> {
        let mut out = vec![key];
        let mut i = 0;
        while i < out.len() {
            let cur = out[i];
            out.extend(
                self.nodes
                    .values()
                    .filter(|n| n.parent == Some(cur))
                    .map(|n| n.key),
            );
            i += 1;
        }
        out
    }

    /// Builds the children index the tree listings use until the nodes change (a listing
    /// otherwise scans every node per call: fine for tests, too slow for the mirror bench).
    pub fn index_tree(&mut self) {
        let mut index = TreeIndex::default();
        for n in self.nodes.values() {
            index
                .children
                .entry((n.tree, n.parent, n.trashed))
                .or_default()
                .push(n.key);
            if let Some(p) = n.parent {
                index.parents.insert(p);
            }
        }
        for list in index.children.values_mut() {
            list.sort_by_key(|k| self.nodes.get(k).map(|n| (n.sort_order, n.id)));
        }
        self.tree_index = Some(index);
    }

    fn set_trashed(&mut self, key: Uuid, trashed: bool) {
        self.tree_index = None;
        for k in self.subtree(key) {
            if let Some(n) = self.nodes.get_mut(&k) {
                n.trashed = trashed;
            }
        }
    }

    /// Moves `key` (with its subtree) under `parent` (`None`: the top); moving out of the
    /// recycle bin restores the subtree.
    pub fn move_node(&mut self, key: Uuid, parent: Option<Uuid>) {
        let trashed = parent
            .and_then(|p| self.nodes.get(&p))
            .is_some_and(|p| p.trashed);
        if let Some(n) = self.nodes.get_mut(&key) {
            n.parent = parent;
        }
        self.set_trashed(key, trashed);
    }

    /// Moves `key` (with its subtree) to the top of its tree's recycle bin.
    pub fn trash(&mut self, key: Uuid) {
        if let Some(n) = self.nodes.get_mut(&key) {
            n.parent = None;
        }
        self.set_trashed(key, true);
    }

    /// Deletes `key` and its descendants for good.
    pub fn delete_node(&mut self, key: Uuid) {
        self.tree_index = None;
        for k in self.subtree(key) {
            self.nodes.remove(&k);
        }
    }

    /// Adds `count` live nodes to `tree`, breadth first under `parent`, at most `fanout`
    /// children per node; returns their keys in creation order (parents first).
    pub fn add_bulk_tree(
        &mut self,
        tree: Tree,
        parent: Option<Uuid>,
        count: usize,
        fanout: usize,
    ) -> Vec<Uuid> {
        self.tree_index = None;
        let mut keys: Vec<Uuid> = Vec::with_capacity(count);
        let base = BULK_IDS + self.nodes.len() as i64;
        for i in 0..count {
            let (parent, sort_order) = match i.checked_sub(fanout) {
                None => (parent, i),
                Some(j) => (Some(keys[j / fanout]), j % fanout),
            };
            let key = Uuid::new_v4();
            self.nodes.insert(
                key,
                Node {
                    key,
                    id: base + i as i64,
                    tree,
                    parent,
                    name: format!("node-{i}"),
                    trashed: false,
                    content_type: Uuid::from_u128(0xC0FFEE),
                    sort_order: sort_order as i32,
                },
            );
            keys.push(key);
        }
        keys
    }

    /// Adds `groups` groups (content section, read verbs, a granular entry on one of `nodes`
    /// each) and `users` users spread over them; returns the group keys.
    pub fn add_bulk_directory(&mut self, groups: usize, users: usize, nodes: &[Uuid]) -> Vec<Uuid> {
        let mut keys = Vec::new();
        for i in 0..groups {
            let key = Uuid::new_v4();
            let node = nodes.get(i * 7 % nodes.len().max(1)).copied();
            let granular: BTreeMap<Uuid, BTreeSet<String>> = node
                .map(|n| (n, BTreeSet::from(["Umb.Document.Read".to_owned()])))
                .into_iter()
                .collect();
            self.groups.insert(
                key,
                Group {
                    key,
                    alias: format!("bulk{i}"),
                    name: format!("Bulk {i}"),
                    sections: vec!["content".into()],
                    fallback: BTreeSet::from(["Umb.Document.Read".to_owned()]),
                    granular,
                    property_values: Vec::new(),
                    document_start: Some(Start::Root),
                    media_start: None,
                    languages: Vec::new(),
                    all_languages: true,
                },
            );
            keys.push(key);
        }
        for i in 0..users {
            let key = Uuid::new_v4();
            let group = keys.get(i % keys.len().max(1)).copied();
            self.users.insert(
                key,
                User {
                    key,
                    id: BULK_IDS + i as i64,
                    user_name: format!("bulk-user-{i}@example.invalid"),
                    name: format!("Bulk user {i}"),
                    email: format!("bulk-user-{i}@example.invalid"),
                    kind: UserKind::Default,
                    groups: group.into_iter().collect(),
                    document_starts: Vec::new(),
                    media_starts: Vec::new(),
                    document_root: false,
                    media_root: false,
                    approved: true,
                    locked: false,
                },
            );
        }
        keys
    }
}
