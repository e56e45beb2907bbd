//! Authentication metrics, registered in the registry the caller owns. Labels are bounded:
//! `issuer` is a configured issuer name (or `none`), `method` and `result` are fixed ids.

use prometheus::{GaugeVec, IntCounterVec, Opts, Registry};

use super::AuthnError;

/// Handles to the authentication metrics.
#[derive(Clone)]
pub struct AuthnMetrics {
    /// `portcullis_jwks_refresh_total{issuer,result}`: result `ok` | `error`.
    pub jwks_refresh_total: IntCounterVec,
    /// `portcullis_jwks_age_seconds{issuer}`: age of the key set in use.
    pub jwks_age_seconds: GaugeVec,
    /// `portcullis_authn_total{method,issuer,result}`: result `ok` or a deny/problem id.
    pub authn_total: IntCounterVec,
    /// `portcullis_rate_limited_total{method}`: requests refused by a key's `rate_limit_rps`.
    pub rate_limited_total: IntCounterVec,
}

impl AuthnMetrics {
    /// Creates the metrics and registers them in `registry` (fails if already registered).
    pub fn register(registry: &Registry) -> Result<Self, AuthnError> {
        let jwks_refresh_total = IntCounterVec::new(
            Opts::new(
                "portcullis_jwks_refresh_total",
                "JWKS fetches by issuer and result",
            ),
            &["issuer", "result"],
        )
        .map_err(AuthnError::Metrics)?;
        let jwks_age_seconds = GaugeVec::new(
            Opts::new(
                "portcullis_jwks_age_seconds",
                "Age of the JWKS in use, in seconds",
            ),
            &["issuer"],
        )
        .map_err(AuthnError::Metrics)?;
        let authn_total = IntCounterVec::new(
            Opts::new(
                "portcullis_authn_total",
                "Credential verifications by outcome",
            ),
            &["method", "issuer", "result"],
        )
        .map_err(AuthnError::Metrics)?;
        let rate_limited_total = IntCounterVec::new(
            Opts::new(
                "portcullis_rate_limited_total",
                "Requests refused (429) by a credential's rate limit",
            ),
            &["method"],
        )
        .map_err(AuthnError::Metrics)?;
        registry
            .register(Box::new(rate_limited_total.clone()))
            .map_err(AuthnError::Metrics)?;
        registry
            .register(Box::new(jwks_refresh_total.clone()))
            .map_err(AuthnError::Metrics)?;
        registry
            .register(Box::new(jwks_age_seconds.clone()))
            .map_err(AuthnError::Metrics)?;
        registry
            .register(Box::new(authn_total.clone()))
            .map_err(AuthnError::Metrics)?;
        Ok(AuthnMetrics {
            jwks_refresh_total,
            jwks_age_seconds,
            authn_total,
            rate_limited_total,
        })
    }
}
