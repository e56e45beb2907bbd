//! `portcullis explain`: the decision a config and its policy store would make for one
//! request, with the evidence, through the same classify → authorise path as the gateway
//! (`Gate::explain_request`). Acts as a registered user (`--principal`), so no token and no
//! key-set fetch are needed.

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
    /// The gateway config (its routes, `[authz]` policy and `[store]` are used).
    #[arg(long, short, env = "PORTCULLIS_CONFIG")]
    pub config: PathBuf,
    /// External id of a user registered in the policy store; explained as principal
    /// `explain:{ID}` (no token groups are mapped).
    #[arg(long)]
    pub principal: String,
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
    let config = Config::load(&args.config, &env_overrides()).map_err(CliError::Config)?;
    let body = args
        .body
        .as_deref()
        .map(super::routes::read_file)
        .transpose()?;
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
        let gate = Gate::new(
            &config,
            Arc::new(Services {
                authn,
                cache,
                api_user: None,
                sessions: None,
                nodes: None,
                versions: None,
                mirror: None,
            }),
        );
        let explained = gate
            .explain_request(
                &parts,
                args.target.as_bytes(),
                body.as_deref(),
                Some(&args.principal),
            )
            .await;
        print_json(&explained.to_json())
    })
}
