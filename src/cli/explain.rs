//! `portcullis explain`: the decision for one request, with the evidence. Offline (`--config`):
//! what a config and its policy store would decide, through the same classify → authorise path
//! as the gateway (`Gate::explain_request`), acting as a registered user (`--principal`), so no
//! token and no key-set fetch are needed. Against a running gateway (`--admin-url`, token from
//! `$PORTCULLIS_ADMIN_TOKEN`): `POST /v1/explain` with the request's `--header`s, so the
//! gateway authenticates the credential as the proxy would.

use super::{print_json, CliError};
use crate::authn::Authenticator;
use crate::config::{env_overrides, Config};
use crate::gate::{Gate, Services};
use crate::store::StoreMetrics;
use std::path::PathBuf;
use std::sync::Arc;

/// Arguments of `portcullis explain`.
#[derive(Debug, clap::Args)]
pub struct ExplainArgs {
    /// Offline: the gateway config (its routes, `[authz]` policy and `[store]` are used).
    #[arg(
        long,
        short,
        env = "PORTCULLIS_CONFIG",
        required_unless_present = "admin_url"
    )]
    pub config: Option<PathBuf>,
    /// Offline: external id of a user registered in the policy store; explained as principal
    /// `explain:{ID}` (no token groups are mapped).
    #[arg(
        long,
        required_unless_present = "admin_url",
        conflicts_with = "admin_url"
    )]
    pub principal: Option<String>,
    /// Ask the running gateway whose admin listener is here (`POST /v1/explain`).
    #[arg(long, conflicts_with = "config")]
    pub admin_url: Option<String>,
    /// With `--admin-url`: a request header `NAME: VALUE` (the credential, `Accept-Language`,
    /// …); repeat for several.
    #[arg(long = "header", requires = "admin_url")]
    pub headers: Vec<String>,
    /// HTTP method (GET, PUT, …).
    pub method: String,
    /// Request target as sent (origin form `/umbraco/…?…`).
    pub target: String,
    /// File with the request body, for routes that read node ids or cultures from it.
    #[arg(long)]
    pub body: Option<PathBuf>,
}

/// Prints the explanation JSON (or `{"rejected": reason}` / `{"passthrough": true, …}`).
pub fn run(args: ExplainArgs) -> Result<(), CliError> {
    let body = args
        .body
        .as_deref()
        .map(super::routes::read_file)
        .transpose()?;
    if let Some(url) = &args.admin_url {
        return remote(url, &args, body);
    }
    let config_path = args.config.clone().unwrap_or_default();
    let principal = args.principal.clone().unwrap_or_default();
    let config = Config::load(&config_path, &env_overrides()).map_err(CliError::Config)?;
    let parts = http::Request::builder()
        .method(args.method.as_str())
        .uri(args.target.as_str())
        .body(())
        .map_err(CliError::Request)?
        .into_parts()
        .0;
    super::block_on(async move {
        let registry = prometheus::Registry::new();
        // Built like the gateway's, but never started: `--principal` skips authentication.
        let authn = Authenticator::new(&config.file.authn, &registry).map_err(CliError::Authn)?;
        let metrics = StoreMetrics::register(&registry).map_err(CliError::Metrics)?;
        let cache = crate::app::build_policy_cache(&config, metrics, false)
            .await
            .map_err(CliError::App)?
            .cache;
        let gate = Gate::new(&config, Arc::new(Services::local(authn, cache)));
        let explained = gate
            .explain_request(
                &parts,
                args.target.as_bytes(),
                body.as_deref(),
                Some(&principal),
            )
            .await;
        print_json(&explained.to_json())
    })
}

/// `POST /v1/explain` on the gateway at `url` with the request described by `args`.
fn remote(url: &str, args: &ExplainArgs, body: Option<Vec<u8>>) -> Result<(), CliError> {
    let mut headers = serde_json::Map::new();
    for h in &args.headers {
        let (name, value) = h
            .split_once(':')
            .ok_or_else(|| CliError::BadHeader(h.clone()))?;
        headers.insert(name.trim().to_owned(), value.trim().into());
    }
    let mut req = serde_json::json!({
        "method": args.method, "target": args.target, "headers": headers,
    });
    if let Some(b) = body {
        req["body"] = String::from_utf8_lossy(&b).into_owned().into();
    }
    let target = super::admin_client::AdminTarget {
        admin_url: url.to_owned(),
    };
    super::block_on(async move {
        let client = super::admin_client::AdminClient::new(&target)?;
        let v = client
            .call(reqwest::Method::POST, "/v1/explain", Some(&req))
            .await?;
        print_json(&v)
    })
}
