//! The operator's knobs for decisions: the `[authz]` config section ([`DecisionPolicy`]).

use crate::request::Api;
use serde::{Deserialize, Serialize};

/// What to do with a node the content mirror does not know (not yet synced, or truly absent).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnknownNodeMode {
    /// 403 `unknown_node`: a lagging mirror can never widen access. The default.
    #[default]
    Deny,
    /// Forward to the upstream (which answers 404 or runs its own check); the permit records
    /// `Grant::DeferredToUpstream`. Never used for subtree-scoped Delivery keys, whose scope
    /// cannot be verified on an unknown node.
    Defer,
}

/// `[authz]`: how the pure decision treats cases the data cannot settle.
///
/// ```toml
/// [authz]
/// management_unknown_node = "deny"   # deny | defer
/// delivery_unknown_node = "deny"     # deny | defer
/// delivery_public = false            # mirror Umbraco's DeliveryApi:PublicAccess
/// delivery_default_culture = "en-us" # culture served without Accept-Language
/// item_scope = "umbraco"             # umbraco | start_nodes (item/document, item/media ids)
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DecisionPolicy {
    pub management_unknown_node: UnknownNodeMode,
    pub delivery_unknown_node: UnknownNodeMode,
    /// Whether the upstream Delivery API is public (`DeliveryApi:PublicAccess = true`):
    /// anonymous reads are then allowed (never preview). Default `false`: fail closed.
    pub delivery_public: bool,
    /// The culture the upstream serves when a request sends no usable `Accept-Language`. A key
    /// limited to some cultures may omit the header only when this culture is one of them.
    /// Unset: the default language the Umbraco mirror learnt (docs/AUTHZ.md), and with none
    /// mirrored such keys must always send one `Accept-Language` tag.
    pub delivery_default_culture: Option<String>,
    /// Whether `GET item/document?id=…` / `item/media?id=…` answer for any id (`umbraco`, as
    /// Umbraco does) or only for ids inside the caller's start nodes (`start_nodes`). Applied
    /// to the route table when it is built (`Classifier::with_item_scope`).
    pub item_scope: crate::request::ItemScope,
}

impl Default for DecisionPolicy {
    fn default() -> Self {
        DecisionPolicy {
            management_unknown_node: UnknownNodeMode::Deny,
            delivery_unknown_node: UnknownNodeMode::Deny,
            delivery_public: false,
            delivery_default_culture: None,
            item_scope: crate::request::ItemScope::Umbraco,
        }
    }
}

impl DecisionPolicy {
    /// The unknown-node mode for `api`.
    pub fn unknown_node(&self, api: Api) -> UnknownNodeMode {
        match api {
            Api::Management => self.management_unknown_node,
            Api::Delivery => self.delivery_unknown_node,
        }
    }

    /// Records every problem of the section in `p`.
    pub fn validate(&self, p: &mut crate::config::Problems) {
        if let Some(c) = &self.delivery_default_culture {
            let ok = !c.is_empty()
                && c.len() <= 35
                && c.split('-').all(|part| {
                    !part.is_empty() && part.chars().all(|ch| ch.is_ascii_alphanumeric())
                });
            if !ok {
                p.push(
                    "authz.delivery_default_culture",
                    format!("`{c}` is not a culture code such as `en-us`"),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Problems;

    #[test]
    fn the_default_policy_denies_unknown_nodes_and_keeps_delivery_private() {
        let p = DecisionPolicy::default();
        assert_eq!(p.unknown_node(Api::Management), UnknownNodeMode::Deny);
        assert_eq!(p.unknown_node(Api::Delivery), UnknownNodeMode::Deny);
        assert!(!p.delivery_public);
    }

    #[test]
    fn a_toml_section_parses_and_unknown_fields_are_rejected() {
        let p: DecisionPolicy = toml::from_str(
            "management_unknown_node = \"defer\"\ndelivery_public = true\ndelivery_default_culture = \"en-US\"",
        )
        .expect("parses");
        assert_eq!(p.management_unknown_node, UnknownNodeMode::Defer);
        assert_eq!(p.delivery_unknown_node, UnknownNodeMode::Deny);
        assert!(p.delivery_public);
        assert!(toml::from_str::<DecisionPolicy>("unknown_node = \"deny\"").is_err());
        assert!(toml::from_str::<DecisionPolicy>("delivery_unknown_node = \"allow\"").is_err());
    }

    #[test]
    fn a_malformed_default_culture_is_reported() {
        let mut problems = Problems::default();
        DecisionPolicy {
            delivery_default_culture: Some("en us".into()),
            ..DecisionPolicy::default()
        }
        .validate(&mut problems);
        assert_eq!(problems.0.len(), 1);
        let mut ok = Problems::default();
        DecisionPolicy {
            delivery_default_culture: Some("en-US".into()),
            ..DecisionPolicy::default()
        }
        .validate(&mut ok);
        assert!(ok.is_empty());
    }
}
