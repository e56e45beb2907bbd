//! The five user groups of a fresh Umbraco install (UMBRACO.md §4) as data: the same rows the
//! store seeds in SQL, used by tests, benches and the embedded file store's defaults.

use super::model::{verbs, GroupPolicy, LanguageAccess, NodePath, Section, VerbSet};
use std::collections::{BTreeSet, HashMap};
use uuid::{uuid, Uuid};

/// Key of the built-in `admin` group.
pub const ADMIN_GROUP_KEY: Uuid = uuid!("e5e7f6c8-7f9c-4b5b-8d5d-9e1e5a4f7e4d");
/// Key of the built-in `editor` group.
pub const EDITOR_GROUP_KEY: Uuid = uuid!("44dc260e-b4d4-4dd9-9081-eec5598f1641");
/// Key of the built-in `writer` group.
pub const WRITER_GROUP_KEY: Uuid = uuid!("9fc2a16f-528c-46d6-a014-75bf4ec2480c");
/// Key of the built-in `translator` group.
pub const TRANSLATOR_GROUP_KEY: Uuid = uuid!("f2012e4c-d232-4bd1-8eae-4384032d97d8");
/// Key of the built-in `sensitiveData` group.
pub const SENSITIVE_DATA_GROUP_KEY: Uuid = uuid!("8c6ad70f-d307-4e4a-af58-72c2e4e9439d");

/// The alias that makes a user an administrator (Umbraco `Constants.Security.AdminGroupAlias`).
pub const ADMIN_ALIAS: &str = "admin";

/// One built-in group as plain rows, verbs in Umbraco's order: the single definition that both
/// [`builtin_groups`] and the store's policy-file defaults are built from.
#[derive(Debug, Clone)]
pub struct BuiltinGroup {
    pub key: Uuid,
    pub alias: &'static str,
    pub name: &'static str,
    pub sections: &'static [&'static str],
    pub verbs: Vec<&'static str>,
    /// Root content/media start nodes and access to all languages.
    pub root_and_all_languages: bool,
}

/// The built-in groups in the order admin, editor, writer, translator, sensitiveData.
/// Sections include `library` (v18); it is inert on v14–v17.
pub fn builtin_group_rows() -> Vec<BuiltinGroup> {
    use verbs::*;
    let row = |key, alias, name, sections, verbs, root_and_all_languages| BuiltinGroup {
        key,
        alias,
        name,
        sections,
        verbs,
        root_and_all_languages,
    };
    let editor_verbs: Vec<&str> = ALL_DOCUMENT
        .iter()
        .copied()
        .filter(|v| *v != CULTURE_AND_HOSTNAMES && *v != PERMISSIONS)
        .collect();
    vec![
        row(
            ADMIN_GROUP_KEY,
            ADMIN_ALIAS,
            "Administrators",
            &[
                "content",
                "packages",
                "media",
                "member",
                "settings",
                "users",
                "forms",
                "translation",
                "library",
            ],
            ALL_DOCUMENT.to_vec(),
            true,
        ),
        row(
            EDITOR_GROUP_KEY,
            "editor",
            "Editors",
            &["content", "media", "forms", "library"],
            editor_verbs,
            true,
        ),
        row(
            WRITER_GROUP_KEY,
            "writer",
            "Writers",
            &["content", "library"],
            vec![
                CREATE,
                UPDATE,
                READ,
                NOTIFICATIONS,
                PROPERTY_VALUE_READ,
                PROPERTY_VALUE_WRITE,
            ],
            true,
        ),
        row(
            TRANSLATOR_GROUP_KEY,
            "translator",
            "Translators",
            &["translation"],
            vec![UPDATE, READ, PROPERTY_VALUE_READ, PROPERTY_VALUE_WRITE],
            true,
        ),
        row(
            SENSITIVE_DATA_GROUP_KEY,
            "sensitiveData",
            "Sensitive data",
            &[],
            vec![],
            false,
        ),
    ]
}

/// The built-in groups as decision data, with no granular entries.
pub fn builtin_groups() -> Vec<GroupPolicy> {
    builtin_group_rows().iter().map(group).collect()
}

fn group(g: &BuiltinGroup) -> GroupPolicy {
    let root = g
        .root_and_all_languages
        .then(|| NodePath(std::sync::Arc::from([-1])));
    GroupPolicy {
        key: g.key,
        alias: g.alias.into(),
        name: g.name.to_string(),
        sections: g.sections.iter().map(|s| Section::new(s)).collect(),
        default_verbs: g.verbs.iter().collect::<VerbSet>(),
        content_start: root.clone(),
        media_start: root,
        languages: if g.root_and_all_languages {
            LanguageAccess::All
        } else {
            LanguageAccess::Only(BTreeSet::new())
        },
        granular: HashMap::new(),
    }
}
