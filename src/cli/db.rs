//! The database commands: `migrate`, `policy apply|export` and `audit query` (`audit list`
//! asks a gateway instead: `audit.rs`). Each opens one
//! small pool on the URL from `--database-url` / `$PORTCULLIS_DATABASE_URL` and runs once on a
//! current-thread runtime.

use super::{print_json, CliError};
use crate::audit::{format_json, format_table, AuditFilter};
use crate::store::PolicyFile;
use chrono::{DateTime, Utc};
use clap::{Args, Subcommand, ValueEnum};
use sqlx::postgres::{PgPool, PgPoolOptions};
use std::path::PathBuf;
use std::time::Duration;
use uuid::Uuid;

/// Where the database is (never printed: the URL may hold a password).
#[derive(Debug, Args)]
pub struct Database {
    /// PostgreSQL URL, e.g. `postgres://portcullis@db:5432/portcullis`.
    #[arg(long, env = "PORTCULLIS_DATABASE_URL", hide_env_values = true)]
    pub database_url: String,
}

/// `portcullis policy …`
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Load a policy file into the database (one transaction; only rows that differ are
    /// written) and print what changed as JSON.
    Apply {
        #[command(flatten)]
        db: Database,
        /// Also delete what the file does not name (never the built-in groups; nodes only when
        /// the file lists nodes).
        #[arg(long)]
        prune: bool,
        /// With `--prune`: allow deleting every user, group or API key (a file naming none).
        #[arg(long, requires = "prune")]
        force: bool,
        /// The policy file (TOML, the format of `config/policy/dev.toml`).
        file: PathBuf,
    },
    /// Print the database's policy as a normalized policy file (TOML).
    Export {
        #[command(flatten)]
        db: Database,
    },
}

/// `portcullis audit …`
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Print audit events, newest first.
    Query {
        #[command(flatten)]
        db: Database,
        #[command(flatten)]
        filters: AuditFilters,
        /// Most events printed (1..=10000).
        #[arg(long, default_value_t = 100)]
        limit: i64,
        /// One JSON object per line (nothing for no events) instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Print audit events through a running gateway's admin API (`GET /v1/audit`).
    List(super::audit::ListArgs),
}

/// The audit filters of `audit query` and `audit list`.
#[derive(Debug, Args)]
pub struct AuditFilters {
    /// Exact principal id (`jwt:{issuer}#{subject}`, `key:{id}`, `anonymous`).
    #[arg(long)]
    pub principal: Option<String>,
    /// Only events whose checks named this node key.
    #[arg(long)]
    pub node: Option<Uuid>,
    /// Only events at or after this time (RFC 3339, e.g. `2026-01-31T12:00:00Z`).
    #[arg(long)]
    pub since: Option<DateTime<Utc>>,
    /// Only allows or only denies.
    #[arg(long, value_enum)]
    pub decision: Option<DecisionArg>,
}

impl AuditFilters {
    /// `--decision` as the audit trail spells it.
    pub fn decision(&self) -> Option<String> {
        self.decision.map(|d| match d {
            DecisionArg::Allow => "allow".to_owned(),
            DecisionArg::Deny => "deny".to_owned(),
        })
    }
}

/// `--decision` values.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum DecisionArg {
    Allow,
    Deny,
}

/// `portcullis migrate`: applies the schema migrations.
pub fn migrate(db: &Database) -> Result<(), CliError> {
    super::block_on(async {
        let pool = pool(db)?;
        crate::store::migrate(&pool)
            .await
            .map_err(CliError::Store)?;
        outln!("migrations applied");
        Ok(())
    })
}

/// Runs a `policy` subcommand.
pub fn policy(cmd: PolicyCommand) -> Result<(), CliError> {
    super::block_on(async {
        match cmd {
            PolicyCommand::Apply {
                db,
                prune,
                force,
                file,
            } => {
                let bytes = super::routes::read_file(&file)?;
                let text = String::from_utf8_lossy(&bytes);
                let policy = PolicyFile::parse(&text, &file.display().to_string())
                    .map_err(CliError::Store)?;
                for w in crate::store::policy_verbs::unknown_verb_warnings(&policy) {
                    eprintln!("portcullis: warning: {w}");
                }
                if prune && !force {
                    if let Some(kind) = prune_would_empty(&policy) {
                        return Err(CliError::PruneEverything(kind));
                    }
                }
                let report = crate::store::apply_policy(&pool(&db)?, &policy, prune)
                    .await
                    .map_err(CliError::Store)?;
                print_json(&serde_json::json!({
                    "written": report.written,
                    "pruned": report.pruned,
                    "total": report.total(),
                }))
            }
            PolicyCommand::Export { db } => {
                let policy = crate::store::export_policy(&pool(&db)?)
                    .await
                    .map_err(CliError::Store)?;
                let text = toml::to_string(&policy).map_err(CliError::Toml)?;
                out!("{text}");
                Ok(())
            }
        }
    })
}

/// Runs an `audit` subcommand.
pub fn audit(cmd: AuditCommand) -> Result<(), CliError> {
    let (db, filters, limit, json) = match cmd {
        AuditCommand::Query {
            db,
            filters,
            limit,
            json,
        } => (db, filters, limit, json),
        AuditCommand::List(args) => return super::audit::list(args),
    };
    let filter = AuditFilter {
        decision: filters.decision(),
        principal: filters.principal,
        node: filters.node,
        since: filters.since,
        limit,
        before: None,
    };
    super::block_on(async {
        let events = crate::audit::query(&pool(&db)?, &filter)
            .await
            .map_err(CliError::Audit)?;
        if json {
            out!("{}", format_json(&events).map_err(CliError::Audit)?);
        } else {
            out!("{}", format_table(&events));
        }
        Ok(())
    })
}

fn pool(db: &Database) -> Result<PgPool, CliError> {
    PgPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(Duration::from_secs(10))
        .connect_lazy(&db.database_url)
        .map_err(CliError::Database)
}

/// What `--prune` would delete all of because the file names none of it: users, groups (other
/// than the built-in ones, which are never pruned) or API keys.
fn prune_would_empty(policy: &PolicyFile) -> Option<&'static str> {
    if policy.users.is_empty() {
        Some("users")
    } else if policy.groups.is_empty() {
        Some("groups")
    } else if policy.api_keys.is_empty() {
        Some("api keys")
    } else {
        None
    }
}
