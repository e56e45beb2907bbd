//! `portcullis sync umbraco --config FILE`: one full sync of the Umbraco mirror into the
//! Postgres store named by the config (docs/MIRROR.md); prints what changed as JSON.

use super::{print_json, CliError};
use crate::config::{env_overrides, Config};
use crate::mirror::Mirror;
use clap::Subcommand;
use std::path::PathBuf;

/// `portcullis sync …`
#[derive(Debug, Subcommand)]
pub enum SyncCommand {
    /// Pull users, groups, permissions and the content and media trees from Umbraco's
    /// Management API (as the `[upstream.credential]` API user) into the Postgres store.
    Umbraco {
        #[arg(long, short, env = "PORTCULLIS_CONFIG")]
        config: PathBuf,
    },
}

/// Runs a `sync` subcommand.
pub fn run(cmd: SyncCommand) -> Result<(), CliError> {
    let SyncCommand::Umbraco { config } = cmd;
    let config = Config::load(&config, &env_overrides()).map_err(CliError::Config)?;
    super::block_on(async {
        let metrics =
            crate::umbraco::UmbracoMetrics::unregistered().map_err(|e| CliError::Sync(e.into()))?;
        let mirror = Mirror::from_config(&config, metrics).map_err(CliError::Sync)?;
        let report = mirror.full_sync().await.map_err(CliError::Sync)?;
        print_json(&serde_json::json!({
            "kinds": report.kinds,
            "changed": report.changed(),
            "duration_ms": report.duration_ms,
        }))
    })
}
