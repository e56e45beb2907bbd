//! Verb names in a policy file checked against the ones Umbraco knows (UMBRACO.md §3). An
//! unknown name is still carried — packages can add verbs — but reported with the nearest
//! known name, so a typo (`Umb.Document.Raed`) does not silently grant nothing.

use super::policy_file::PolicyFile;
use crate::authz::model::verbs::ALL_DOCUMENT;

/// One warning per unknown verb name, naming where it is and the nearest known verb.
pub fn unknown_verb_warnings(policy: &PolicyFile) -> Vec<String> {
    let groups = policy.groups.iter().enumerate().flat_map(|(i, g)| {
        g.default_verbs
            .iter()
            .map(move |v| (format!("groups[{i}].default_verbs"), v))
    });
    let entries = policy.permissions.iter().enumerate().flat_map(|(i, p)| {
        p.verbs
            .iter()
            .map(move |v| (format!("permissions[{i}].verbs"), v))
    });
    groups
        .chain(entries)
        .filter(|(_, v)| !ALL_DOCUMENT.contains(&v.as_str()))
        .map(|(at, v)| {
            format!(
                "{at}: `{v}` is not a verb Umbraco knows; did you mean `{}`?",
                nearest_verb(v)
            )
        })
        .collect()
}

/// The known verb with the smallest edit distance to `name` (ASCII case ignored).
fn nearest_verb(name: &str) -> &'static str {
    let name = name.to_ascii_lowercase();
    ALL_DOCUMENT
        .iter()
        .min_by_key(|known| edit_distance(&name, &known.to_ascii_lowercase()))
        .copied()
        .unwrap_or(crate::authz::model::verbs::READ)
}

/// Levenshtein distance over chars.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let swap = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = swap.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_misspelt_verb_is_reported_with_the_nearest_known_verb() {
        let policy = PolicyFile::parse(
            "[[permissions]]\ngroup = \"editor\"\nnode = \"00000000-0000-0000-0000-000000001062\"\n\
             verbs = [\"Umb.Document.Read\", \"Umb.Document.Raed\", \"umb.document.publsh\"]\n",
            "t.toml",
        )
        .expect("parses");
        assert_eq!(
            unknown_verb_warnings(&policy),
            vec![
                "permissions[0].verbs: `Umb.Document.Raed` is not a verb Umbraco knows; did you mean `Umb.Document.Read`?",
                "permissions[0].verbs: `umb.document.publsh` is not a verb Umbraco knows; did you mean `Umb.Document.Publish`?",
            ]
        );
    }

    #[test]
    fn the_shipped_dev_policy_names_only_known_verbs() {
        let policy = PolicyFile::parse(crate::dev::DEV_POLICY, "dev.toml").expect("parses");
        assert_eq!(unknown_verb_warnings(&policy), Vec::<String>::new());
    }

    #[test]
    fn edit_distance_counts_insertions_deletions_and_substitutions() {
        assert_eq!(edit_distance("read", "read"), 0);
        assert_eq!(edit_distance("raed", "read"), 2);
        assert_eq!(edit_distance("publsh", "publish"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
    }
}
