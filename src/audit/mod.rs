//! Placeholder module: built by its own issue (see ARCHITECTURE.md).
