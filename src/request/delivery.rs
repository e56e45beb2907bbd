//! Delivery API request details: the headers and query parameters that change what Umbraco
//! returns (`Preview`, `Start-Item`, `Accept-Language`, `fetch=`, `expand=`) and the content path
//! of the item-by-path route, read the way Umbraco reads them (UMBRACO.md §8).
//!
//! - `Preview`: one header at most; `true`/`false` (any case, trimmed); anything else is 400.
//! - `Start-Item`: one header at most, `/` trimmed; a root's GUID (any ASP.NET form) or URL segment.
//! - `fetch=children:X` / `descendants:X` / `ancestors:X` (axis case-insensitive), X a GUID or
//!   a path; any other `fetch` value is 400. `fetch` twice is rejected by `normalize`.
//! - `expand=` with a non-empty value counts as expanding.
//! - Item by path: the catch-all segments, fully decoded; when they held an encoded `/` Umbraco
//!   URL-decodes the value (`DeliveryApiControllerBase.DecodePath`), so `+` is a space too. The
//!   decoded path may not contain dot segments, empty segments, `\` or control characters.

use super::body::parse_guid;
use super::normalize::{decode_path_component, decode_query_component};
use super::{DeliveryQuery, FetchAxis, NodeRef};
use http::HeaderMap;

/// Why Delivery API details cannot be read one way only (→ 400 `malformed_request`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    #[error("header `{0}` sent more than once")]
    RepeatedHeader(&'static str),
    #[error("header `{0}` is not valid")]
    BadHeader(&'static str),
    #[error("`fetch` value `{0}` is not children:, descendants: or ancestors: with a node")]
    BadFetch(String),
    #[error("content path `{0}` is ambiguous")]
    BadPath(String),
}

fn single<'h>(
    headers: &'h HeaderMap,
    name: &'static str,
) -> Result<Option<&'h str>, DeliveryError> {
    let mut all = headers.get_all(name).iter();
    let first = all.next();
    if all.next().is_some() {
        return Err(DeliveryError::RepeatedHeader(name));
    }
    first
        .map(|v| {
            v.to_str()
                .map(str::trim)
                .map_err(|_e| DeliveryError::BadHeader(name))
        })
        .transpose()
}

/// A GUID or a content path (a node reference as Umbraco's Delivery API accepts it).
fn node_ref(s: &str) -> NodeRef {
    match parse_guid(s) {
        Some(key) => NodeRef::Key(key),
        None => NodeRef::Path(s.to_owned()),
    }
}

/// Reads the Delivery API details of a request from its headers and canonical query.
pub fn delivery_query(
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<DeliveryQuery, DeliveryError> {
    let preview = match single(headers, "preview")? {
        None => false,
        Some(v) if v.eq_ignore_ascii_case("true") => true,
        Some(v) if v.eq_ignore_ascii_case("false") => false,
        Some(_) => return Err(DeliveryError::BadHeader("preview")),
    };
    // `RequestStartItemProvider` trims `/` first; what is left is a root's key or URL segment.
    let start_item = single(headers, "start-item")?
        .map(|v| v.trim_matches('/'))
        .filter(|v| !v.trim().is_empty())
        .map(node_ref);
    let culture = {
        let values: Vec<&str> = headers
            .get_all("accept-language")
            .iter()
            .map(|v| v.to_str().map(str::trim))
            .collect::<Result<_, _>>()
            .map_err(|_e| DeliveryError::BadHeader("accept-language"))?;
        (!values.is_empty()).then(|| values.join(", "))
    };
    let mut fetch = None;
    let mut expand = false;
    for (name, value) in query_pairs(query) {
        if name.eq_ignore_ascii_case("fetch") {
            fetch = Some(parse_fetch(&value)?);
        } else if name.eq_ignore_ascii_case("expand") {
            expand = !value.trim().is_empty();
        }
    }
    Ok(DeliveryQuery {
        preview,
        start_item,
        fetch,
        expand,
        culture,
    })
}

fn parse_fetch(value: &str) -> Result<(FetchAxis, NodeRef), DeliveryError> {
    let bad = || DeliveryError::BadFetch(value.to_owned());
    let (axis, node) = value.split_once(':').ok_or_else(bad)?;
    let axis = match axis.trim().to_ascii_lowercase().as_str() {
        "children" => FetchAxis::Children,
        "descendants" => FetchAxis::Descendants,
        "ancestors" => FetchAxis::Ancestors,
        _ => return Err(bad()),
    };
    let node = node.trim();
    if node.is_empty() {
        return Err(bad());
    }
    Ok((axis, node_ref(node)))
}

/// Decoded `(name, value)` pairs of a canonical query; pairs that do not decode are skipped
/// (`normalize` has already rejected invalid escapes).
pub fn query_pairs(query: Option<&str>) -> impl Iterator<Item = (String, String)> + '_ {
    query
        .into_iter()
        .flat_map(|q| q.split('&'))
        .filter_map(|pair| {
            let (n, v) = pair.split_once('=').unwrap_or((pair, ""));
            Some((decode_query_component(n)?, decode_query_component(v)?))
        })
}

/// The path named by catch-all segments (canonical, still encoded), decoded as Umbraco's
/// `DecodePath` does, as `/a/b` (the root is `/`). Also used to vet any catch-all holding `%2F`.
pub fn content_path(segs: &[&str]) -> Result<NodeRef, DeliveryError> {
    if segs.is_empty() {
        return Ok(NodeRef::Path("/".into()));
    }
    let raw = segs.join("/");
    let bad = || DeliveryError::BadPath(raw.clone());
    let url_decoded = raw.to_ascii_uppercase().contains("%2F");
    let mut decoded = decode_path_component(&raw).ok_or_else(bad)?;
    if url_decoded {
        decoded = decoded.replace('+', " ");
    }
    let mut path = String::with_capacity(decoded.len() + 1);
    for part in decoded.split('/') {
        let ok = !part.is_empty()
            && part != "."
            && part != ".."
            && !part.chars().any(|c| c == '\\' || c.is_control());
        if !ok {
            return Err(bad());
        }
        path.push('/');
        path.push_str(part);
    }
    Ok(NodeRef::Path(path))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests: a panic is the failure report
mod tests {
    use super::*;
    use http::HeaderValue;

    const G: &str = "3f0c1d2e-4b5a-4c6d-8e7f-9a0b1c2d3e4f";

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn preview_start_item_and_language_are_read_from_headers() {
        let h = headers(&[
            ("Preview", "TRUE"),
            ("Start-Item", G),
            ("Accept-Language", "da-DK"),
        ]);
        let q = delivery_query(&h, None).unwrap();
        assert!(q.preview);
        assert_eq!(q.start_item, Some(NodeRef::Key(G.parse().unwrap())));
        assert_eq!(q.culture.as_deref(), Some("da-DK"));
        let q = delivery_query(&headers(&[("Start-Item", "/Home/")]), None).unwrap();
        assert_eq!(q.start_item, Some(NodeRef::Path("Home".into())));
        assert!(!q.preview);
        let q = delivery_query(&headers(&[("Start-Item", &format!("/{G}/"))]), None).unwrap();
        assert_eq!(q.start_item, Some(NodeRef::Key(G.parse().unwrap())));
        let q = delivery_query(&headers(&[("Start-Item", "/")]), None).unwrap();
        assert_eq!(q.start_item, None, "Umbraco: no start item");
    }

    #[test]
    fn repeated_or_odd_preview_headers_are_rejected() {
        let h = headers(&[("Preview", "false"), ("Preview", "true")]);
        assert_eq!(
            delivery_query(&h, None),
            Err(DeliveryError::RepeatedHeader("preview"))
        );
        let h = headers(&[("Preview", "yes")]);
        assert_eq!(
            delivery_query(&h, None),
            Err(DeliveryError::BadHeader("preview"))
        );
        let h = headers(&[("Start-Item", "a"), ("Start-Item", "b")]);
        assert!(delivery_query(&h, None).is_err());
    }

    #[test]
    fn fetch_axes_take_a_guid_or_a_path() {
        let q = format!(
            "fetch=Children:{}&expand=properties%5B%24all%5D",
            G.replace('-', "")
        );
        let d = delivery_query(&HeaderMap::new(), Some(&q)).unwrap();
        assert_eq!(
            d.fetch,
            Some((FetchAxis::Children, NodeRef::Key(G.parse().unwrap())))
        );
        assert!(d.expand);
        let d = delivery_query(&HeaderMap::new(), Some("fetch=ancestors:%2Fen%2Fblog")).unwrap();
        assert_eq!(
            d.fetch,
            Some((FetchAxis::Ancestors, NodeRef::Path("/en/blog".into())))
        );
        let d = delivery_query(&HeaderMap::new(), Some("fetch=descendants:x&expand=")).unwrap();
        assert_eq!(d.fetch.map(|f| f.0), Some(FetchAxis::Descendants));
        assert!(!d.expand);
    }

    #[test]
    fn unknown_fetch_values_are_rejected() {
        for f in [
            "fetch=siblings:x",
            "fetch=children:",
            "fetch=children",
            "fetch=",
        ] {
            assert!(delivery_query(&HeaderMap::new(), Some(f)).is_err(), "{f}");
        }
    }

    #[test]
    fn content_paths_decode_encoded_slashes_like_umbraco() {
        assert_eq!(
            content_path(&["en", "blog"]),
            Ok(NodeRef::Path("/en/blog".into()))
        );
        assert_eq!(
            content_path(&["en%2Fmy+post"]),
            Ok(NodeRef::Path("/en/my post".into()))
        );
        assert_eq!(content_path(&["a+b"]), Ok(NodeRef::Path("/a+b".into())));
        assert_eq!(
            content_path(&["caf%C3%A9"]),
            Ok(NodeRef::Path("/café".into()))
        );
        assert_eq!(content_path(&[]), Ok(NodeRef::Path("/".into())));
    }

    #[test]
    fn content_paths_with_hidden_dot_segments_are_rejected() {
        assert!(content_path(&["a%2F..%2Fb"]).is_err());
        assert!(content_path(&["a%2F%2Fb"]).is_err());
        assert!(content_path(&["%2Fa"]).is_err());
    }
}
