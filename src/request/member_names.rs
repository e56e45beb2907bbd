//! How ASP.NET Core binds a JSON member name to a model property, and when two member names are
//! too close to call. Modelled on the upstream's source, not on belief:
//!
//! - Umbraco's Management API formats bodies with MVC's `JsonOptions`, whose
//!   `JsonSerializerOptions` start from `JsonSerializerDefaults.Web` (aspnetcore
//!   `src/Mvc/Mvc.Core/src/JsonOptions.cs`): `PropertyNameCaseInsensitive = true`. Umbraco's
//!   `ConfigureUmbracoBackofficeJsonOptions` (umbraco/Umbraco-CMS
//!   `src/Umbraco.Cms.Api.Management/Serialization/ConfigureUmbracoBackofficeJsonOptions.cs`) adds
//!   the camel-case naming policy and converters and leaves case-insensitivity on.
//! - System.Text.Json then looks a name up in a dictionary keyed by
//!   `StringComparer.OrdinalIgnoreCase` (dotnet/runtime `System.Text.Json/.../Metadata/
//!   JsonTypeInfo.cs` `CreatePropertyCache`, `JsonPropertyDictionary`). `AllowDuplicateProperties`
//!   defaults to true, so a later duplicate overwrites an earlier one: the last one wins.
//! - `OrdinalIgnoreCase` upper-cases each UTF-16 unit through the ordinal casing table, which
//!   maps U+0131 `ı` and U+017F `ſ` **to themselves** (dotnet/runtime
//!   `src/native/libs/System.Globalization.Native/pal_common.c` `InitOrdinalCasingPage`;
//!   `System/Globalization/OrdinalCasing.Icu.cs`); the invariant-globalization table leaves
//!   U+0130, U+0131 and U+017F unmapped as well (`Tools/GenUnicodeProp/CategoryCasingInfo.cs`).
//!   No other non-ASCII character has a simple upper-case mapping into ASCII, so a name made of
//!   ASCII characters (every body path Portcullis reads) binds exactly the member names that are
//!   equal to it under ASCII case-insensitivity: `ıd`, `ſorting` and `K` (U+212A) bind nothing.
//!
//! Where doubt remains (another globalization mode, a future table) Portcullis refuses instead of
//! guessing: an object whose member names collide under case folding, or a member name that
//! folds to the looked-up name without binding to it, makes the body malformed.

use icu_casemap::CaseMapper;
use std::collections::HashMap;

/// Whether ASP.NET Core binds the JSON member `member` to the property named `name`.
/// `name` must be ASCII (body paths are); see the module docs for why that makes this exact.
pub fn binds(member: &str, name: &str) -> bool {
    debug_assert!(name.is_ascii(), "body path names are ascii");
    member.len() == name.len() && member.eq_ignore_ascii_case(name)
}

/// A key under which names that any case-insensitive comparison could equate are equal: Unicode
/// simple case folding (ICU4X's `simple_fold`, so `ſ`~`s`, `K`~`k`, `ς`~`σ`, `ẞ`~`ß`, Deseret
/// `𐐀`~`𐐨`), with the Turkic letters `ı` and `İ` also taken as `i`. That makes it coarser than
/// ASCII case-insensitivity, than .NET's ordinal upper-casing, than Turkic folding and than
/// Rust's upper-casing (`ı`~`i`, the old bug).
pub fn fold(name: &str) -> String {
    name.chars().map(fold_char).collect()
}

fn fold_char(c: char) -> char {
    if c.is_ascii() {
        return c.to_ascii_lowercase();
    }
    match c {
        '\u{130}' | '\u{131}' => 'i',
        _ => CaseMapper::new().simple_fold(c),
    }
}

/// Two member names of one object that fold to the same key (including exact duplicates).
pub fn colliding<'a>(names: impl IntoIterator<Item = &'a str>) -> Option<(&'a str, &'a str)> {
    let mut seen: HashMap<String, &'a str> = HashMap::new();
    for name in names {
        if let Some(first) = seen.insert(fold(name), name) {
            return Some((first, name));
        }
    }
    None
}

#[cfg(test)]
#[path = "member_names_tests.rs"]
mod tests;
