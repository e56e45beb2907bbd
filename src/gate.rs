//! The decision pipeline: the one function `request_filter` calls. Runs classification,
//! authentication, permission resolution and authorization in order and returns a [`Verdict`].
//! Knows nothing of pingora: it takes `http::request::Parts`.

use crate::authz::{Decision, DenyReason, Grant, Permit};
use crate::config::{Config, Mode};
use crate::request::Api;
use std::sync::Arc;

/// The protected prefixes and their APIs, lowercase.
const PREFIXES: &[(&str, Api)] = &[
    ("/umbraco/management/api/", Api::Management),
    ("/umbraco/delivery/api/", Api::Delivery),
];

/// What the pipeline concluded about one request.
#[derive(Debug, Clone)]
pub struct Verdict {
    pub decision: Decision,
    /// `None` for paths outside the protected prefixes.
    pub api: Option<Api>,
    pub route: Arc<str>,
}

/// Everything needed to decide, built once per config (re)load.
#[derive(Debug)]
pub struct Gate {
    mode: Mode,
}

impl Gate {
    /// Builds the pipeline from a validated config.
    pub fn new(config: &Config) -> Gate {
        Gate {
            mode: config.file.mode,
        }
    }

    /// Decides one request. Deny by default: under a protected prefix, only the explicit
    /// development placeholder (`mode = "passthrough"`) allows without a matching route.
    pub async fn decide(&self, parts: &http::request::Parts) -> Verdict {
        let path = parts.uri.path().to_ascii_lowercase();
        let api = PREFIXES
            .iter()
            .find(|(p, _)| path.starts_with(p) || path == p.trim_end_matches('/'))
            .map(|(_, a)| *a);
        let (decision, route) = match (api, self.mode) {
            (None, _) => (allow("passthrough", Grant::Passthrough), "passthrough"),
            (Some(_), Mode::Passthrough) => {
                (allow("passthrough", Grant::Passthrough), "passthrough")
            }
            (Some(_), Mode::Enforce) => (Decision::Deny(DenyReason::NoRoute), "unmatched"),
        };
        Verdict {
            decision,
            api,
            route: Arc::from(route),
        }
    }
}

fn allow(route: &str, grant: Grant) -> Decision {
    Decision::Allow(Permit {
        route: route.to_owned(),
        principal: None,
        via: vec![grant],
    })
}
