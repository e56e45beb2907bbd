//! Editing the watched policy file in place: read it, replace some of its top-level arrays
//! (comments and every other section kept) and write it back atomically, so every gateway
//! watching it reloads the old or the new file, never half of one. Used by the API-key writer
//! and the Umbraco mirror's file target.

use super::policy_file::PolicyFile;
use super::StoreError;
use serde::Serialize;
use std::path::Path;
use uuid::Uuid;

/// The file's text and its parse.
pub fn read(path: &Path) -> Result<(String, PolicyFile), StoreError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| StoreError::ReadFile {
        path: shown.clone(),
        source,
    })?;
    let file = PolicyFile::parse(&text, &shown)?;
    Ok((text, file))
}

/// `text` with the top-level items `names` replaced by those of `fresh` (an item `fresh` does
/// not serialise is removed); everything else is kept, comments included — of a replaced list
/// of tables, the comment above its first table.
pub fn replace_items(
    path: &Path,
    text: &str,
    fresh: &impl Serialize,
    names: &[&str],
) -> Result<String, StoreError> {
    let edit_err = |message: String| StoreError::EditFile {
        path: path.display().to_string(),
        message,
    };
    let mut doc: toml_edit::DocumentMut = text.parse().map_err(|e| edit_err(format!("{e}")))?;
    let fresh = toml::to_string(fresh).map_err(|e| edit_err(format!("{e}")))?;
    let fresh: toml_edit::DocumentMut = fresh.parse().map_err(|e| edit_err(format!("{e}")))?;
    for name in names {
        match fresh.get(name) {
            Some(item) => {
                let mut item = item.clone();
                keep_leading_comment(doc.get(name), &mut item);
                doc.insert(name, item);
            }
            None => {
                doc.remove(name);
            }
        }
    }
    Ok(doc.to_string())
}

/// Moves the decor above the first table of `old` (a list of tables) onto `new`'s first table.
fn keep_leading_comment(old: Option<&toml_edit::Item>, new: &mut toml_edit::Item) {
    let prefix = old
        .and_then(toml_edit::Item::as_array_of_tables)
        .and_then(|a| a.get(0))
        .and_then(|t| t.decor().prefix().cloned());
    let first = new.as_array_of_tables_mut().and_then(|a| a.get_mut(0));
    if let (Some(prefix), Some(first)) = (prefix, first) {
        first.decor_mut().set_prefix(prefix);
    }
}

/// Maps an I/O error on `path` to the store's write error.
pub fn write_err(path: &Path) -> impl Fn(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::WriteFile {
        path: path.display().to_string(),
        source,
    }
}

/// Writes `bytes` to a new file beside `path`, syncs it and renames it over `path`: a reader
/// (the watch of every gateway on this file) sees the old or the new file, never half of one.
pub fn replace_atomically(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    use std::io::Write;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
    let tmp = path.with_file_name(format!(
        ".{}.{}.tmp",
        name.unwrap_or_default(),
        Uuid::new_v4().simple()
    ));
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        f.write_all(bytes)?;
        if let Ok(meta) = std::fs::metadata(path) {
            f.set_permissions(meta.permissions())?;
        }
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(write_err(path))
}
