//! The Management API answers the mirror reads, as Umbraco's `OpenApi.json` shapes them
//! (`shared/reference/umbraco-openapi/`): only the fields the mirror uses; unknown fields are
//! ignored so that a newer Umbraco adding fields still syncs.

use serde::Deserialize;
use uuid::Uuid;

/// `PagedViewModel<T>` (`Umbraco.Cms.Api.Common.ViewModels.Pagination`): `{total, items}`.
#[derive(Debug, Deserialize)]
pub struct Paged<T> {
    pub total: i64,
    pub items: Vec<T>,
}

/// `ReferenceByIdModel` / `ItemReferenceByIdResponseModel`.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
pub struct Ref {
    pub id: Uuid,
}

/// One node of a tree or recycle-bin listing (`DocumentTreeItemResponseModel`,
/// `MediaTreeItemResponseModel`, `…RecycleBinItemResponseModel`) or of `item/document|media`
/// (`DocumentItemResponseModel`, `MediaItemResponseModel`). Recycle-bin items have no
/// `isTrashed`: everything listed there is trashed.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TreeItem {
    pub id: Uuid,
    #[serde(default)]
    pub parent: Option<Ref>,
    pub has_children: bool,
    #[serde(default)]
    pub is_trashed: bool,
    /// `isProtected` of document tree items: a public-access entry on the node *or an
    /// ancestor* (`DocumentTreeControllerBase`); absent on media and recycle-bin items.
    #[serde(default)]
    pub is_protected: bool,
}

/// `UserGroupResponseModel`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserGroup {
    pub id: Uuid,
    pub name: String,
    pub alias: String,
    pub sections: Vec<String>,
    pub languages: Vec<String>,
    pub has_access_to_all_languages: bool,
    #[serde(default)]
    pub document_start_node: Option<Ref>,
    pub document_root_access: bool,
    #[serde(default)]
    pub media_start_node: Option<Ref>,
    pub media_root_access: bool,
    pub fallback_permissions: Vec<String>,
    pub permissions: Vec<Permission>,
}

/// One entry of a group's `permissions`: a `oneOf` told apart by `$type`. Only document
/// entries are granular node permissions; property-value and unknown entries are skipped.
#[derive(Debug, Clone, Deserialize)]
pub struct Permission {
    #[serde(rename = "$type")]
    pub kind: String,
    #[serde(default)]
    pub document: Option<Ref>,
    #[serde(default)]
    pub verbs: Vec<String>,
}

/// `DocumentPermissionPresentationModel`'s discriminator value.
pub const DOCUMENT_PERMISSION: &str = "DocumentPermissionPresentationModel";

/// `UserResponseModel`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub id: Uuid,
    pub email: String,
    pub user_name: String,
    pub name: String,
    pub user_group_ids: Vec<Ref>,
    pub document_start_node_ids: Vec<Ref>,
    pub has_document_root_access: bool,
    pub media_start_node_ids: Vec<Ref>,
    pub has_media_root_access: bool,
    /// `UserStateModel`: `Active`, `Disabled`, `LockedOut`, `Invited`, `Inactive`.
    pub state: String,
}
