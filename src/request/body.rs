//! Body inspection: node ids and culture codes read out of JSON request bodies exactly as
//! ASP.NET Core's System.Text.Json binding reads them.
//!
//! - Property names bind as System.Text.Json binds them (`super::member_names`, which cites the
//!   .NET source): ASCII case-insensitively, so `Parent` is `parent` but `ſorting` is not
//!   `sorting` and `ıd` is not `id`. Where that model could be in doubt the body is refused: an
//!   inspected object with two member names equal under any case folding (exact duplicates
//!   included), or with a member that folds to the looked-up name without binding to it, is
//!   [`BodyError::AmbiguousName`] (→ 400).
//! - GUIDs parse in every form `Guid.TryParse` accepts that Umbraco clients send: `D`
//!   (`xxxxxxxx-xxxx-…`), `N` (32 hex digits), `B` (`{D}`), `P` (`(D)`), with surrounding
//!   whitespace; they are canonicalised to lower-case `D`.
//! - Anything that does not parse is [`BodyError`] (→ 400), never "no node, skip the check". A
//!   null or absent *container* (`parent: null`) is the root when the check says `null = "root"`.
//! - Over the configured limit is [`BodyError::TooLarge`] (→ 413).

use super::member_names::{binds, colliding, fold};
use super::NodeRef;
use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use std::fmt;
use uuid::Uuid;

/// Why a body cannot be read one way only.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("body is over the limit of {limit} bytes")]
    TooLarge { limit: usize },
    #[error("body is not valid json")]
    Json(#[source] serde_json::Error),
    #[error("body field `{at}`: {what}")]
    Shape { at: String, what: &'static str },
    #[error("body object has member names `{first}` and `{second}` that cannot be told apart")]
    AmbiguousName { first: String, second: String },
}

/// A JSON value that keeps object members in document order (needed for "last duplicate wins"
/// across keys that differ only by case).
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    Number,
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl Json {
    /// The value of property `name` (ASCII) as System.Text.Json binds it, or `None` when no
    /// member binds. Refuses objects whose member names could be read more than one way.
    pub fn get(&self, name: &str) -> Result<Option<&Json>, BodyError> {
        let Json::Object(members) = self else {
            return Ok(None);
        };
        if let Some((a, b)) = colliding(members.iter().map(|(k, _)| k.as_str())) {
            return Err(ambiguous(a, b));
        }
        let want = fold(name);
        let mut found = None;
        for (k, v) in members {
            if binds(k, name) {
                found = Some(v);
            } else if fold(k) == want {
                return Err(ambiguous(k, name));
            }
        }
        Ok(found)
    }
}

fn ambiguous(first: &str, second: &str) -> BodyError {
    BodyError::AmbiguousName {
        first: first.to_owned(),
        second: second.to_owned(),
    }
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(JsonVisitor)
    }
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a json value")
    }
    fn visit_unit<E>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }
    fn visit_none<E>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Json, E> {
        Ok(Json::Bool(v))
    }
    fn visit_i64<E>(self, _: i64) -> Result<Json, E> {
        Ok(Json::Number)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Json, E> {
        Ok(Json::Number)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Json, E> {
        Ok(Json::Number)
    }
    fn visit_str<E>(self, v: &str) -> Result<Json, E> {
        Ok(Json::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Json, E> {
        Ok(Json::String(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        let mut items = Vec::new();
        while let Some(v) = seq.next_element()? {
            items.push(v);
        }
        Ok(Json::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
        let mut members = Vec::new();
        while let Some((k, v)) = map.next_entry::<String, Json>()? {
            members.push((k, v));
        }
        Ok(Json::Object(members))
    }
}

/// A field path inside a body: `parent.id`, `sorting[].id`, `translations[].isoCode`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyPath {
    text: String,
    steps: Vec<Step>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Step {
    name: String,
    array: bool,
}

impl BodyPath {
    /// Parses `a.b[].c`; `None` when a step is empty or malformed.
    pub fn parse(text: &str) -> Option<BodyPath> {
        let mut steps = Vec::new();
        for part in text.split('.') {
            let (name, array) = match part.strip_suffix("[]") {
                Some(n) => (n, true),
                None => (part, false),
            };
            let ok = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$');
            if !ok {
                return None;
            }
            steps.push(Step {
                name: name.to_owned(),
                array,
            });
        }
        Some(BodyPath {
            text: text.to_owned(),
            steps,
        })
    }

    /// The path as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

/// Parses a body of at most `limit` bytes. The top level must be a JSON object.
pub fn parse(body: &[u8], limit: usize) -> Result<Json, BodyError> {
    if body.len() > limit {
        return Err(BodyError::TooLarge { limit });
    }
    let json: Json = serde_json::from_slice(body).map_err(BodyError::Json)?;
    match json {
        Json::Object(_) => Ok(json),
        _ => Err(BodyError::Shape {
            at: "$".into(),
            what: "top level is not an object",
        }),
    }
}

fn shape(path: &BodyPath, what: &'static str) -> BodyError {
    BodyError::Shape {
        at: path.text.clone(),
        what,
    }
}

/// The nodes a body field names. `null_root`: a null or absent container (or a null/absent
/// single-step field) is the root; otherwise it is an error. The last field of a multi-step
/// path must be a GUID string whenever its container is present.
pub fn node_refs(json: &Json, path: &BodyPath, null_root: bool) -> Result<Vec<NodeRef>, BodyError> {
    let mut out = Vec::new();
    walk_nodes(json, path, &path.steps, null_root, &mut out)?;
    Ok(out)
}

fn walk_nodes(
    v: &Json,
    path: &BodyPath,
    steps: &[Step],
    null_root: bool,
    out: &mut Vec<NodeRef>,
) -> Result<(), BodyError> {
    let Some((step, rest)) = steps.split_first() else {
        return match v {
            Json::String(s) => {
                let key = parse_guid(s).ok_or_else(|| shape(path, "not a guid"))?;
                out.push(NodeRef::Key(key));
                Ok(())
            }
            Json::Null if null_root => {
                out.push(NodeRef::Root);
                Ok(())
            }
            Json::Null => Err(shape(path, "null or absent")),
            _ => Err(shape(path, "not a guid string")),
        };
    };
    let child = match v {
        Json::Object(_) => v.get(&step.name)?.unwrap_or(&Json::Null),
        _ => return Err(shape(path, "not an object")),
    };
    if step.array {
        let Json::Array(items) = child else {
            return Err(shape(path, "not an array"));
        };
        for item in items {
            walk_nodes(item, path, rest, false, out)?;
        }
        return Ok(());
    }
    match child {
        // A null container (`parent: null`) stands for the root when allowed; a null leaf only
        // when the path is a single field.
        Json::Null if null_root && (!rest.is_empty() || steps.len() == path.steps.len()) => {
            out.push(NodeRef::Root);
            Ok(())
        }
        _ => walk_nodes(child, path, rest, null_root && !rest.is_empty(), out),
    }
}

/// Culture codes a body names, lower-cased. Null or absent fields contribute none (an
/// invariant publish); a value that is neither a string nor null is an error.
pub fn cultures(json: &Json, path: &BodyPath) -> Result<Vec<String>, BodyError> {
    let mut out = Vec::new();
    walk_cultures(json, path, &path.steps, &mut out)?;
    out.sort();
    out.dedup();
    Ok(out)
}

fn walk_cultures(
    v: &Json,
    path: &BodyPath,
    steps: &[Step],
    out: &mut Vec<String>,
) -> Result<(), BodyError> {
    let Some((step, rest)) = steps.split_first() else {
        return match v {
            Json::Null => Ok(()),
            Json::String(s) => {
                out.push(s.trim().to_lowercase());
                Ok(())
            }
            Json::Array(items) => {
                for item in items {
                    match item {
                        Json::Null => {}
                        Json::String(s) => out.push(s.trim().to_lowercase()),
                        _ => return Err(shape(path, "culture is not a string")),
                    }
                }
                Ok(())
            }
            _ => Err(shape(path, "culture is not a string")),
        };
    };
    let child = match v {
        Json::Null => return Ok(()),
        Json::Object(_) => v.get(&step.name)?.unwrap_or(&Json::Null),
        _ => return Err(shape(path, "not an object")),
    };
    if step.array {
        match child {
            Json::Null => Ok(()),
            Json::Array(items) => items
                .iter()
                .try_for_each(|item| walk_cultures(item, path, rest, out)),
            _ => Err(shape(path, "not an array")),
        }
    } else {
        walk_cultures(child, path, rest, out)
    }
}

/// Parses a GUID as ASP.NET's `Guid.TryParse` does for the `D`, `N`, `B` and `P` formats, with
/// surrounding whitespace. `None` for anything else (including the `X` format).
pub fn parse_guid(s: &str) -> Option<Uuid> {
    let t = s.trim().as_bytes();
    // `uuid` parses 32 hex digits or the hyphenated 36 strictly (hyphens at 8, 13, 18 and 23,
    // hex digits elsewhere): no scan of our own before it.
    let inner = match t {
        [b'{', inner @ .., b'}'] | [b'(', inner @ .., b')'] if t.len() == 38 => inner,
        _ if t.len() == 32 || t.len() == 36 => t,
        _ => return None,
    };
    Uuid::try_parse_ascii(inner).ok()
}

#[cfg(test)]
#[path = "body_tests.rs"]
mod tests;
