//! The `[admin]` config section: where the admin listener binds, which probe paths are served
//! without a token, and the admin bearer tokens (each named, read from an environment variable
//! or a file, several at once so they can be rotated).

use crate::config::Problems;
use serde::Deserialize;
use std::path::PathBuf;

/// The probe endpoints that may be served without a token.
pub const PROBES: [&str; 3] = ["/healthz", "/readyz", "/metrics"];

/// `[admin]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    pub address: String,
    /// Paths answered without a token; a subset of [`PROBES`] (default: all three).
    pub open: Vec<String>,
    /// Admin bearer tokens accepted on `/v1/…` (and on probes not listed in `open`).
    pub tokens: Vec<TokenSource>,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            address: "127.0.0.1:9901".into(),
            open: PROBES.iter().map(|p| (*p).to_owned()).collect(),
            tokens: Vec::new(),
        }
    }
}

/// `[[admin.tokens]]`: one accepted admin token. The secret is never in the config file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenSource {
    /// Recorded as the actor of every change made with this token (`admin:{name}`).
    pub name: String,
    /// Environment variable holding the token.
    #[serde(default)]
    pub env: Option<String>,
    /// File holding the token (surrounding whitespace ignored); re-read on every reload.
    #[serde(default)]
    pub file: Option<PathBuf>,
}

/// Whether `name` is a usable token name (`[a-z0-9_-]{1,32}`).
fn name_ok(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 32
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

impl AdminConfig {
    /// Records every problem of the section under `admin.*` (the address is checked by
    /// `config.rs` with the other listeners).
    pub fn validate(&self, p: &mut Problems) {
        for (i, path) in self.open.iter().enumerate() {
            if !PROBES.contains(&path.as_str()) {
                p.push(
                    &format!("admin.open[{i}]"),
                    format!("`{path}` is not one of {}", PROBES.join(", ")),
                );
            }
        }
        let mut seen = std::collections::HashSet::new();
        for (i, t) in self.tokens.iter().enumerate() {
            let at = format!("admin.tokens[{i}]");
            if !name_ok(&t.name) {
                p.push(
                    &format!("{at}.name"),
                    format!("`{}` must be 1-32 of [a-z0-9_-]", t.name),
                );
            } else if !seen.insert(t.name.as_str()) {
                p.push(&format!("{at}.name"), format!("`{}` is repeated", t.name));
            }
            match (&t.env, &t.file) {
                (Some(_), None) | (None, Some(_)) => {}
                _ => p.push(&at, "needs exactly one of `env` or `file`"),
            }
            if t.env.as_ref().is_some_and(|e| e.trim().is_empty()) {
                p.push(&format!("{at}.env"), "must name an environment variable");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(text: &str) -> Vec<String> {
        let c: AdminConfig = toml::from_str(text).expect("parses");
        let mut p = Problems::default();
        c.validate(&mut p);
        p.0
    }

    #[test]
    fn defaults_open_every_probe_and_accept_no_token() {
        let c = AdminConfig::default();
        assert_eq!(c.open, PROBES);
        assert!(c.tokens.is_empty());
        assert!(problems("").is_empty());
    }

    #[test]
    fn every_token_problem_is_reported_at_once() {
        let p = problems(
            "open = [\"/metrics\", \"/v1/keys\"]\n\
             [[tokens]]\nname = \"Ops\"\nenv = \"A\"\n\
             [[tokens]]\nname = \"ci\"\n\
             [[tokens]]\nname = \"ci\"\nenv = \"B\"\nfile = \"/x\"\n",
        );
        assert_eq!(
            p,
            [
                "admin.open[1]: `/v1/keys` is not one of /healthz, /readyz, /metrics",
                "admin.tokens[0].name: `Ops` must be 1-32 of [a-z0-9_-]",
                "admin.tokens[1]: needs exactly one of `env` or `file`",
                "admin.tokens[2].name: `ci` is repeated",
                "admin.tokens[2]: needs exactly one of `env` or `file`",
            ]
        );
    }

    #[test]
    fn a_token_value_in_the_file_is_rejected() {
        let r: Result<AdminConfig, _> = toml::from_str("[[tokens]]\nname = \"a\"\ntoken = \"x\"");
        assert!(r.is_err());
    }
}
