//! `portcullis sync umbraco --config FILE [--policy-file PATH]`: one full sync of the Umbraco
//! mirror into the config's store — the Postgres store, or the policy file of a file store (or
//! the one `--policy-file` names) — (docs/MIRROR.md); prints what changed as JSON.

use super::{print_json, CliError};
use crate::config::{env_overrides, Config};
use crate::mirror::{reader_from_config, to_file, Mirror};
use crate::store::StoreKind;
use clap::Subcommand;
use std::path::PathBuf;

/// `portcullis sync …`
#[derive(Debug, Subcommand)]
pub enum SyncCommand {
    /// Pull users, groups, permissions and the content and media trees from Umbraco's
    /// Management API (as the `[upstream.credential]` API user) into the config's store.
    Umbraco {
        #[arg(long, short, env = "PORTCULLIS_CONFIG")]
        config: PathBuf,
        /// Write this policy file instead (Umbraco's rows replaced, Portcullis's kept).
        #[arg(long)]
        policy_file: Option<PathBuf>,
    },
}

/// Runs a `sync` subcommand.
pub fn run(cmd: SyncCommand) -> Result<(), CliError> {
    let SyncCommand::Umbraco {
        config,
        policy_file,
    } = cmd;
    let config = Config::load(&config, &env_overrides()).map_err(CliError::Config)?;
    let store = &config.file.store;
    let file_target = policy_file.or_else(|| match store.kind {
        StoreKind::File => store.policy_file.clone(),
        StoreKind::Postgres => None,
    });
    super::block_on(async {
        let metrics =
            crate::umbraco::UmbracoMetrics::unregistered().map_err(|e| CliError::Sync(e.into()))?;
        let report = match file_target {
            Some(path) => {
                let reader = reader_from_config(&config, metrics).map_err(CliError::Sync)?;
                to_file::sync_file(&reader, &config.file.sync, &path).await
            }
            None => {
                let mirror = Mirror::from_config(&config, metrics).map_err(CliError::Sync)?;
                mirror.full_sync().await
            }
        }
        .map_err(CliError::Sync)?;
        print_json(&serde_json::json!({
            "kinds": report.kinds,
            "changed": report.changed(),
            "duration_ms": report.duration_ms,
        }))
    })
}
