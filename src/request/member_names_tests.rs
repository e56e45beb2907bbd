#![allow(clippy::unwrap_used)] // tests: a panic is the failure report
use super::*;
use icu_casemap::CaseMapper;

#[test]
fn ascii_names_bind_only_their_ascii_case_variants() {
    for member in ["id", "ID", "Id", "iD"] {
        assert!(binds(member, "id"), "{member}");
    }
    // U+0131 and U+017F map to themselves in .NET's ordinal casing table (pal_common.c
    // `InitOrdinalCasingPage`); Kelvin (U+212A), Turkish İ (U+0130) and fullwidth letters have
    // no upper-case mapping into ASCII at all.
    for (member, name) in [
        ("\u{131}d", "id"),
        ("\u{131}D", "ID"),
        ("\u{17f}orting", "sorting"),
        ("\u{212a}ey", "key"),
        ("\u{130}d", "id"),
        ("\u{ff49}\u{ff44}", "id"),
        ("idx", "id"),
        ("i", "id"),
    ] {
        assert!(!binds(member, name), "{member} must not bind {name}");
    }
}

#[test]
fn only_dotless_i_and_long_s_upper_case_into_ascii_and_dotnet_keeps_both() {
    // The premise of `binds`: ICU's `u_toupper` is the simple upper-case mapping, and among all
    // non-ASCII scalars only U+0131 and U+017F map into ASCII — the two .NET's ordinal table
    // (pal_common.c) and its invariant table (CategoryCasingInfo.cs) exclude.
    let cm = CaseMapper::new();
    let into_ascii: Vec<char> = (0x80..=0x10ffff)
        .filter_map(char::from_u32)
        .filter(|&c| cm.simple_uppercase(c).is_ascii())
        .collect();
    assert_eq!(into_ascii, ['\u{131}', '\u{17f}']);
}

#[test]
fn the_fold_key_is_coarser_than_every_case_relation_dotnet_or_rust_could_use() {
    // Every scalar shares its key with its simple upper/lower case (what .NET's ordinal and
    // invariant tables hold), its Turkic folding and Rust's single-character upper case.
    let cm = CaseMapper::new();
    for c in (0..=0x10ffff).filter_map(char::from_u32) {
        let mut related = vec![
            cm.simple_uppercase(c),
            cm.simple_lowercase(c),
            cm.simple_fold_turkic(c),
        ];
        let mut rust_upper = c.to_uppercase();
        if let (Some(u), None) = (rust_upper.next(), rust_upper.next()) {
            related.push(u);
        }
        for r in related {
            assert_eq!(
                fold_char(c),
                fold_char(r),
                "U+{:04X} and U+{:04X} must share a key",
                c as u32,
                r as u32
            );
        }
    }
}

#[test]
fn member_names_that_any_folding_equates_collide() {
    for (a, b) in [
        ("id", "id"),
        ("id", "Id"),
        ("id", "\u{131}d"),
        ("Id", "\u{130}d"),
        ("sorting", "\u{17f}orting"),
        ("key", "\u{212a}ey"),
        ("\u{3c3}", "\u{3c2}"),
        ("\u{ff49}\u{ff44}", "\u{ff29}\u{ff24}"),
        ("\u{10428}", "\u{10400}"),
    ] {
        assert_eq!(colliding([a, "other", b]), Some((a, b)), "{a} / {b}");
    }
    // Fullwidth `ｉｄ` is not `id` under any case folding: .NET binds `id` and ignores it.
    assert_eq!(colliding(["id", "\u{ff49}\u{ff44}", "parent"]), None);
    assert_eq!(colliding(["parent", "documentType", "values"]), None);
}
