//! `portcullis routes match|list`: the compiled route table, without running the gateway.
//! Prints the JSON of `Classifier::explain_match` / `Classifier::list`.

use super::{print_json, CliError};
use crate::config::{env_overrides, Config};
use crate::request::{Classifier, RoutesConfig};
use clap::Subcommand;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// `portcullis routes …`
#[derive(Debug, Subcommand)]
pub enum RoutesCommand {
    /// Classify one request: prints the matched route, its node checks and the canonical
    /// target, or `{"rejected": reason}`.
    Match {
        /// Config whose `[routes]` section is used (default: the built-in profiles).
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// HTTP method (GET, PUT, …).
        method: String,
        /// Request target as sent (origin form `/umbraco/…?…` or absolute form).
        target: String,
        /// File with the request body, for routes that read node ids or cultures from it.
        #[arg(long)]
        body: Option<PathBuf>,
    },
    /// Print the protected prefixes and every compiled route, in load order.
    List {
        /// Config whose `[routes]` section is used (default: the built-in profiles).
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
}

/// Runs a `routes` subcommand.
pub fn run(cmd: RoutesCommand) -> Result<(), CliError> {
    match cmd {
        RoutesCommand::Match {
            config,
            method,
            target,
            body,
        } => {
            let classifier = classifier(config.as_deref())?;
            let body = body.map(|b| read_file(&b)).transpose()?;
            print_json(&classifier.explain_match(&method, &target, body.as_deref()))
        }
        RoutesCommand::List { config } => print_json(&classifier(config.as_deref())?.list()),
    }
}

/// The route table of `config`, or of the built-in profiles when none is given.
fn classifier(config: Option<&Path>) -> Result<Arc<Classifier>, CliError> {
    match config {
        Some(path) => Ok(Config::load(path, &env_overrides())
            .map_err(CliError::Config)?
            .classifier),
        None => Classifier::from_config(&RoutesConfig::default(), Path::new("."))
            .map(Arc::new)
            .map_err(CliError::Routes),
    }
}

/// Reads a file named on the command line.
pub(crate) fn read_file(path: &Path) -> Result<Vec<u8>, CliError> {
    std::fs::read(path).map_err(|source| CliError::Read {
        path: path.to_owned(),
        source,
    })
}
