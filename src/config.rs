//! Configuration: the TOML file schema (serde, `deny_unknown_fields`) and its validation into
//! the internal config. Every problem is collected and reported at once.
//!
//! Each module owns the schema of its own section (`request::RoutesConfig`, …) and a
//! `validate(&self, &mut Problems)`; this file composes them.

/// Every problem found while validating, reported together (`check-config` exits 64).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Problems(pub Vec<String>);

impl Problems {
    /// Records one problem; `at` is the dotted key (`upstream.management`), `msg` lowercase.
    pub fn push(&mut self, at: &str, msg: impl std::fmt::Display) {
        self.0.push(format!("{at}: {msg}"));
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}
