//! TODO(module owner): see ARCHITECTURE.md
