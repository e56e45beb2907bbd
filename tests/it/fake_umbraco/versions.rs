//! `GET document-version/{id}` (`ByKeyDocumentVersionController`; `DocumentVersionControllerBase`
//! carries the `TreeAccessDocuments` policy, the content section): the version as a
//! `DocumentVersionResponseModel` with the owning document in `document`
//! (`Mapping/Document/DocumentVersionMapDefinition.cs`). Versions have int ids in Umbraco; the API
//! shows them as "magic" GUIDs, the int's little-endian bytes followed by zeros
//! (`IntExtensions.ToGuid`), and `IContentVersionService.GetAsync` reads them back only from that
//! form (`IntExtensions.TryParseFromGuid`). An unknown version is 404 with a ProblemDetails titled
//! "The requested version could not be found" (`MapFailure`); a non-GUID id matches no route.

use super::auth;
use super::model::State;
use super::{Reply, Req};
use serde_json::json;
use uuid::Uuid;

/// The API's id of version `id` (`IntExtensions.ToGuid`: `new Guid(bytes)` reads the first
/// four bytes as a little-endian int).
pub fn version_key(id: i32) -> Uuid {
    let mut bytes = [0u8; 16];
    bytes[..4].copy_from_slice(&id.to_le_bytes());
    Uuid::from_bytes_le(bytes)
}

/// The int id in a version key, when it has the `ToGuid` form.
fn version_id(key: Uuid) -> Option<i32> {
    let bytes = key.to_bytes_le();
    bytes[4..]
        .iter()
        .all(|b| *b == 0)
        .then(|| i32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
}

impl State {
    /// Saves a new version of `document` (identity ids from 1) and returns its API key.
    pub fn add_version(&mut self, document: Uuid) -> Uuid {
        let id = self.versions.keys().next_back().map_or(1, |last| last + 1);
        self.versions.insert(id, document);
        version_key(id)
    }
}

pub fn by_key(state: &mut State, req: &Req) -> Reply {
    let Some(key) = req
        .params
        .get("id")
        .and_then(|v| Uuid::parse_str(v.trim()).ok())
    else {
        return Reply::empty(404);
    };
    let user = match auth::backoffice_user(state, req) {
        Ok(u) => u,
        Err(r) => return r,
    };
    if let Some(u) = state.users.get(&user) {
        if let Err(r) = auth::require_sections(state, u, &["content"]) {
            return r;
        }
    }
    let found = version_id(key).and_then(|id| {
        let doc = state.versions.get(&id)?;
        Some((id, state.nodes.get(doc)?))
    });
    let Some((id, doc)) = found else {
        return Reply::problem(404, "The requested version could not be found");
    };
    Reply::json(
        200,
        json!({
            "values": [],
            "variants": [{
                "culture": null, "segment": null, "name": doc.name,
                "createDate": "2026-01-01T00:00:00Z", "updateDate": "2026-01-01T00:00:00Z",
                "state": if doc.trashed { "Trashed" } else { "Draft" },
                "publishDate": null, "id": doc.key, "flags": [],
            }],
            "id": version_key(id),
            "flags": [],
            "documentType": {"id": doc.content_type, "icon": "icon-document", "collection": null},
            "document": {"id": doc.key},
        }),
    )
}
