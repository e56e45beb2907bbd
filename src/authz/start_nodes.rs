//! Calculated start nodes (Umbraco `UserExtensions.CombineStartNodes`), for content or media.
//!
//! Called by the store's cache when it builds a user's access; pure.

use super::model::{NodePath, StartNodes, ROOT_ID};

/// Combines the group start nodes and the user's own start nodes (UMBRACO.md §6).
///
/// `group_starts` holds the start node of each group that has one, `user_starts` the user's
/// own (the root is `-1`, Umbraco's `hasDocumentRootAccess`). Start nodes inside a recycle bin
/// are ignored on both sides, as Umbraco's `CombineStartNodes` skips "bin" paths. The result is
/// empty when the user has no access.
pub fn calculate_start_nodes(group_starts: &[NodePath], user_starts: &[NodePath]) -> StartNodes {
    let outside_bin = |p: &&NodePath| !p.in_recycle_bin();
    let group_starts: Vec<&NodePath> = group_starts.iter().filter(outside_bin).collect();
    let user_starts: Vec<&NodePath> = user_starts.iter().filter(outside_bin).collect();
    // 1. groups: root wins; otherwise collapse upward (drop those below another group start).
    let mut result: Vec<NodePath> = if group_starts.iter().any(|p| p.node() == ROOT_ID) {
        StartNodes::root().0
    } else {
        let mut kept: Vec<NodePath> = Vec::new();
        for &p in &group_starts {
            let below_other = group_starts
                .iter()
                .any(|o| o.node() != p.node() && p.contains(o.node()));
            if !below_other && !kept.iter().any(|k| k.node() == p.node()) {
                kept.push(p.clone());
            }
        }
        kept
    };
    // 2. user: collapse downward (keep the deepest of a chain).
    let mut users: Vec<&NodePath> = Vec::new();
    for &p in &user_starts {
        let above_other = user_starts
            .iter()
            .any(|o| o.node() != p.node() && o.contains(p.node()));
        if !above_other && !users.iter().any(|k| k.node() == p.node()) {
            users.push(p);
        }
    }
    // 3. each user start replaces the group starts on its branch (ancestors and descendants).
    for u in users {
        result.retain(|g| !u.contains(g.node()) && !g.contains(u.node()));
        result.push(u.clone());
    }
    StartNodes(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> NodePath {
        NodePath::parse(s).expect("valid path")
    }
    fn ids(s: &StartNodes) -> Vec<i64> {
        s.0.iter().map(NodePath::node).collect()
    }

    #[test]
    fn group_root_and_user_node_narrows_to_the_user_node() {
        let s = calculate_start_nodes(&[p("-1")], &[p("-1,1051")]);
        assert_eq!(ids(&s), vec![1051]);
    }

    #[test]
    fn user_node_above_group_node_widens_to_the_user_node() {
        let s = calculate_start_nodes(&[p("-1,1051,1062")], &[p("-1,1051")]);
        assert_eq!(ids(&s), vec![1051]);
    }

    #[test]
    fn group_starts_collapse_upward_and_unrelated_branches_stay() {
        let s = calculate_start_nodes(&[p("-1,1051"), p("-1,1051,1062"), p("-1,2000")], &[]);
        assert_eq!(ids(&s), vec![1051, 2000]);
    }

    #[test]
    fn user_starts_collapse_to_the_deepest() {
        let s = calculate_start_nodes(&[], &[p("-1,1051"), p("-1,1051,1062")]);
        assert_eq!(ids(&s), vec![1062]);
    }

    #[test]
    fn user_start_keeps_unrelated_group_branches() {
        let s = calculate_start_nodes(&[p("-1,1051"), p("-1,2000")], &[p("-1,1051,1062")]);
        assert_eq!(ids(&s), vec![2000, 1062]);
    }

    /// Umbraco's own table for `UserExtensions.CombineStartNodes` (umbraco/Umbraco-CMS
    /// `tests/Umbraco.Tests.UnitTests/Umbraco.Core/Models/UserExtensionsTests.cs`), on its tree:
    /// 1 > 3 > 5, 2 > 4, and the bin holding 6 and 7 > 8.
    #[test]
    fn umbracos_combine_start_nodes_table_holds() {
        let path = |id: &str| -> NodePath {
            p(match id {
                "-1" => "-1",
                "1" => "-1,1",
                "2" => "-1,2",
                "3" => "-1,1,3",
                "4" => "-1,2,4",
                "5" => "-1,1,3,5",
                "6" => "-1,-20,6",
                "7" => "-1,-20,7",
                "8" => "-1,-20,7,8",
                other => panic!("no node {other} in the table's tree"),
            })
        };
        let list = |s: &str| -> Vec<NodePath> {
            s.split(',').filter(|x| !x.is_empty()).map(path).collect()
        };
        for (group, user, expected) in [
            ("", "1", "1"),
            ("", "4", "4"),
            ("", "2,3", "2,3"),
            ("", "2,3,4", "3,4"),
            ("1", "", "1"),
            ("4", "", "4"),
            ("2,3", "", "2,3"),
            ("2,3,4", "", "2,3"),
            ("3", "2", "2,3"),
            ("3", "2,5", "2,5"),
            ("3", "2,1", "1,2"),
            ("3,8", "2,6", "2,3"), // exclude bin
            ("", "6", ""),         // exclude bin
            ("1,-1", "1", "1"),
            ("-1,1", "1", "1"),
            ("-1", "", "-1"),
            ("", "-1", "-1"),
        ] {
            let mut got = ids(&calculate_start_nodes(&list(group), &list(user)));
            got.sort_unstable();
            let want: Vec<i64> = expected
                .split(',')
                .filter(|x| !x.is_empty())
                .map(|x| x.parse().expect("id"))
                .collect();
            assert_eq!(got, want, "groups {group:?}, user {user:?}");
        }
    }

    #[test]
    fn a_trashed_own_start_node_leaves_the_group_root_in_place() {
        // Before the fix a bin path among the user's start nodes removed the group's root.
        let s = calculate_start_nodes(&[p("-1")], &[p("-1,-20,1070")]);
        assert!(s.has_root());
        let s = calculate_start_nodes(&[p("-1")], &[p("-1,-21,2070")]);
        assert!(s.has_root());
    }

    #[test]
    fn an_own_root_start_node_widens_a_narrow_group_to_the_root() {
        let s = calculate_start_nodes(&[p("-1,1051,1062")], &[NodePath::root()]);
        assert!(s.has_root());
        assert_eq!(ids(&s), vec![-1]);
    }

    #[test]
    fn no_start_nodes_anywhere_means_no_access() {
        assert!(calculate_start_nodes(&[], &[]).0.is_empty());
    }

    #[test]
    fn a_similar_id_prefix_is_not_an_ancestor() {
        // `-1,10` is not an ancestor of `-1,1051`: whole segments only.
        let s = calculate_start_nodes(&[p("-1,10"), p("-1,1051")], &[]);
        assert_eq!(ids(&s), vec![10, 1051]);
    }
}
