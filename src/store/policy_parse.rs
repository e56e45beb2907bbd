//! Parsing a policy file in pieces. `toml` parses a whole document at once: every token, every
//! parser event and a spanned tree of every value, ~16 bytes of memory per byte of text (a
//! 23.7 MB file peaked at ~400 MiB, benches/RESULTS.md). A policy file is mostly a long run of
//! `[[nodes]]`, `[[users]]`, … tables, so it is cut before such headers into pieces of a few
//! hundred KiB, each parsed on its own and its lists appended in order.
//!
//! A piece parses exactly as it would inside the whole document when it starts at one of
//! those headers: at the top level (outside any value), at the start of a line, with the
//! text before the first header declaring nothing but `empty` (an inline `nodes = [...]`
//! there could not be extended by a later `[[nodes]]`). A piece that names anything outside
//! itself (`[nodes.x]` after `[[users]]`, a second `[empty]`) fails to deserialize on its own.
//! On any failure the whole text is parsed once more the usual way, so an invalid file gets
//! exactly the error (message, line and column) it always got.

use super::policy_file::PolicyFile;
use toml_parser::lexer::TokenKind;

/// The size a piece grows to before the next header starts a new one.
const PIECE: usize = 256 * 1024;

/// The top-level array tables of a policy file: a `[[name]]` header starts a piece.
const LISTS: [&str; 7] = [
    "groups",
    "users",
    "nodes",
    "permissions",
    "public_access",
    "api_keys",
    "group_mappings",
];

/// Parses `text` as `toml::from_str` would, in pieces of about 256 KiB.
pub(crate) fn parse(text: &str) -> Result<PolicyFile, toml::de::Error> {
    parse_in(text, PIECE)
}

/// `parse` with pieces of at least `size` bytes (0: one piece per header).
pub(crate) fn parse_in(text: &str, size: usize) -> Result<PolicyFile, toml::de::Error> {
    let cuts = cuts(text, size);
    if cuts.is_empty() {
        return toml::from_str(text);
    }
    match in_pieces(text, &cuts) {
        Some(file) => Ok(file),
        // Whatever failed, the whole-document parse reports it as it always has.
        None => toml::from_str(text),
    }
}

/// Offsets where a piece starts: the `[[` of the first top-level `[[list]]` header at the
/// start of a line, then of the next such header once the piece reached `size`. The text
/// before the first cut is the head (top-level keys).
pub(crate) fn cuts(text: &str, size: usize) -> Vec<usize> {
    let mut out = Vec::new();
    let mut depth: i64 = 0;
    let mut line_start = true;
    let mut last = 0usize;
    // The last five significant tokens' kinds and spans, to see `[ [ name ] ]`.
    let mut window: [(TokenKind, usize, usize); 5] = [(TokenKind::Eof, 0, 0); 5];
    let mut starts: [bool; 5] = [false; 5];
    for t in toml_parser::Source::new(text).lex() {
        let kind = t.kind();
        let span = t.span();
        window.rotate_left(1);
        starts.rotate_left(1);
        window[4] = (kind, span.start(), span.end());
        starts[4] = line_start && depth == 0;
        match kind {
            TokenKind::LeftSquareBracket | TokenKind::LeftCurlyBracket => depth += 1,
            TokenKind::RightSquareBracket | TokenKind::RightCurlyBracket => depth -= 1,
            _ => {}
        }
        line_start = match kind {
            TokenKind::Newline => true,
            TokenKind::Whitespace => line_start,
            _ => false,
        };
        if depth == 0 && is_list_header(text, &window) && starts[0] {
            let at = window[0].1;
            if out.is_empty() || at - last >= size {
                out.push(at);
                last = at;
            }
        }
    }
    out
}

/// Whether the window is `[`, `[`, a list name, `]`, `]` with nothing between them.
fn is_list_header(text: &str, w: &[(TokenKind, usize, usize); 5]) -> bool {
    use TokenKind::{Atom, LeftSquareBracket as L, RightSquareBracket as R};
    let kinds = [w[0].0, w[1].0, w[2].0, w[3].0, w[4].0];
    kinds == [L, L, Atom, R, R]
        && w.windows(2).all(|p| p[0].2 == p[1].1)
        && LISTS.contains(&&text[w[2].1..w[2].2])
}

/// Parses each piece and appends its lists; `None` when any piece fails or the first piece
/// declares more than `empty`.
fn in_pieces(text: &str, cuts: &[usize]) -> Option<PolicyFile> {
    let head = &text[..cuts[0]];
    let keys: toml::Table = toml::from_str(head).ok()?;
    if keys.keys().any(|k| k != "empty") {
        return None;
    }
    let mut file: PolicyFile = toml::from_str(head).ok()?;
    let ends = cuts.iter().skip(1).copied().chain([text.len()]);
    for (start, end) in cuts.iter().copied().zip(ends) {
        let piece: PolicyFile = toml::from_str(&text[start..end]).ok()?;
        if piece.empty {
            return None;
        }
        append(&mut file, piece);
    }
    Some(file)
}

/// Appends every list of `from` (a new list field fails to compile here until it is added).
fn append(to: &mut PolicyFile, from: PolicyFile) {
    let PolicyFile {
        empty: _,
        groups,
        users,
        nodes,
        permissions,
        public_access,
        api_keys,
        group_mappings,
    } = from;
    to.groups.extend(groups);
    to.users.extend(users);
    to.nodes.extend(nodes);
    to.permissions.extend(permissions);
    to.public_access.extend(public_access);
    to.api_keys.extend(api_keys);
    to.group_mappings.extend(group_mappings);
}
