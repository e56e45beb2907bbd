//! The command line: `serve`, `dev`, `check-config` and the operator commands (`routes`,
//! `explain`, `migrate`, `policy`, `audit`, `keys`, `overrides`, `sync`; one file each under `cli/`). Parses
//! arguments and dispatches; exit code 64 (EX_USAGE) for a bad config, 1 for a runtime
//! failure, 2 for bad arguments (clap). Documented in `docs/CLI.md`.

/// `print!` that ends quietly on a closed stdout (`out.rs`).
macro_rules! out {
    ($($t:tt)*) => { $crate::cli::out::emit(&format!($($t)*)) };
}
/// `println!` that ends quietly on a closed stdout (`out.rs`).
macro_rules! outln {
    ($($t:tt)*) => { $crate::cli::out::emit(&format!("{}\n", format_args!($($t)*))) };
}

mod admin_client;
mod audit;
mod db;
mod explain;
mod keys;
mod out;
mod overrides;
mod routes;
mod sync;
mod upstream;

use crate::config::{env_overrides, Config, ConfigError};
use crate::telemetry::{init_logging, LogFormat};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// Exit code for configuration errors (sysexits EX_USAGE).
pub const EXIT_CONFIG: u8 = 64;

#[derive(Debug, Parser)]
#[command(
    name = "portcullis",
    version,
    about = "Authorization gateway for Umbraco CMS"
)]
pub struct Cli {
    /// Log output format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Human, env = "PORTCULLIS_LOG_FORMAT")]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway with a config file.
    Serve {
        #[arg(long, short, env = "PORTCULLIS_CONFIG")]
        config: PathBuf,
    },
    /// Run on loopback with the built-in development config and a bundled demo upstream.
    Dev {
        /// Proxy listener.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: String,
        /// Admin listener.
        #[arg(long, default_value = "127.0.0.1:9901")]
        admin: String,
        /// Where the bundled demo upstream listens.
        #[arg(long, default_value = "127.0.0.1:8081")]
        upstream: String,
    },
    /// Validate config files, report every problem, exit 64 if any.
    CheckConfig {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Inspect the route table: classify one request, or list every route.
    #[command(subcommand)]
    Routes(routes::RoutesCommand),
    /// Explain the decision for one request made as a registered user, with the evidence.
    Explain(explain::ExplainArgs),
    /// Apply the PostgreSQL schema migrations.
    Migrate {
        #[command(flatten)]
        db: db::Database,
    },
    /// Load a policy file into PostgreSQL, or export the database's policy.
    #[command(subcommand)]
    Policy(db::PolicyCommand),
    /// Read the audit trail: stored in PostgreSQL (`query`) or through a gateway (`list`).
    #[command(subcommand)]
    Audit(db::AuditCommand),
    /// Manage API keys through a running gateway's admin API (or a policy file offline).
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Manage local overrides (groups, group mappings, users) through a running gateway.
    #[command(subcommand)]
    Overrides(overrides::OverridesCommand),
    /// Mirror Umbraco into the store: Postgres, or a file store's policy file (docs/MIRROR.md).
    #[command(subcommand)]
    Sync(sync::SyncCommand),
    /// Check that the `[upstream.credential]` API user gets a token Umbraco accepts; list its
    /// sections and root access.
    CheckUpstream {
        #[arg(long, short, env = "PORTCULLIS_CONFIG")]
        config: PathBuf,
    },
}

/// Why an operator command failed (printed with its causes on stderr).
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("invalid config")]
    Config(#[source] ConfigError),
    #[error("invalid route files")]
    Routes(#[source] crate::request::RouteError),
    #[error("cannot read `{path}`")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid request method or target")]
    Request(#[source] http::Error),
    #[error("cannot start the runtime")]
    Runtime(#[source] std::io::Error),
    #[error("cannot open the database")]
    Database(#[source] sqlx::Error),
    #[error("policy store failed")]
    Store(#[source] crate::store::StoreError),
    #[error("audit query failed")]
    Audit(#[source] crate::audit::AuditError),
    #[error("cannot set up authentication")]
    Authn(#[source] crate::authn::AuthnError),
    #[error("cannot register metrics")]
    Metrics(#[source] prometheus::Error),
    #[error("cannot build the services")]
    App(#[source] crate::app::AppError),
    #[error("cannot encode the policy as toml")]
    Toml(#[source] toml::ser::Error),
    #[error("cannot encode the output as json")]
    Json(#[source] serde_json::Error),
    #[error(
        "`${}` is not set; it must hold an admin token",
        admin_client::TOKEN_ENV
    )]
    NoAdminToken,
    #[error("cannot reach the admin api")]
    Admin(#[source] reqwest::Error),
    #[error("{status} {error}{}: {message}", field.as_ref().map(|f| format!(" ({f})")).unwrap_or_default())]
    Refused {
        status: u16,
        error: String,
        message: String,
        field: Option<String>,
    },
    #[error("offline `keys create` needs a config with `store.kind = \"file\"` and a valid `authn.key_env`")]
    NotFileStore,
    #[error("`{0}` is not ISSUER/IDP_GROUP")]
    BadId(String),
    #[error("`{0}` is not a header `NAME: VALUE`")]
    BadHeader(String),
    #[error("sync failed")]
    Sync(#[source] crate::mirror::SyncError),
    #[error("`[upstream.credential]` configures no api user (kind = \"umbraco_api_user\")")]
    NoApiUser,
    #[error("umbraco check failed")]
    Umbraco(#[source] crate::umbraco::UmbracoError),
    #[error("--prune would delete every one of the {0} in the database (the file names none); add --force if that is meant")]
    PruneEverything(&'static str),
}

/// Exit code when the admin API refused the request (4xx other than 401).
pub const EXIT_REFUSED: u8 = 3;
/// Exit code when no admin token is set or the gateway refused it (401).
pub const EXIT_UNAUTHENTICATED: u8 = 4;

impl CliError {
    /// 64 for configuration problems, 1 for everything else.
    fn exit_code(&self) -> ExitCode {
        match self {
            CliError::Config(_) | CliError::Routes(_) | CliError::PruneEverything(_) => {
                ExitCode::from(EXIT_CONFIG)
            }
            CliError::NoAdminToken | CliError::Refused { status: 401, .. } => {
                ExitCode::from(EXIT_UNAUTHENTICATED)
            }
            CliError::Refused { status, .. } if *status < 500 => ExitCode::from(EXIT_REFUSED),
            CliError::BadId(_) | CliError::BadHeader(_) => ExitCode::from(2),
            _ => ExitCode::FAILURE,
        }
    }
}

impl CliError {
    /// An admin API error met offline, reported like the same refusal from a gateway.
    fn refused(e: crate::admin::http::AdminError) -> CliError {
        CliError::Refused {
            status: e.status().as_u16(),
            error: e.id().to_owned(),
            message: e.to_string(),
            field: e.field().map(str::to_owned),
        }
    }
}

/// Pretty-prints `v` on stdout.
fn print_json(v: &serde_json::Value) -> Result<(), CliError> {
    outln!(
        "{}",
        serde_json::to_string_pretty(v).map_err(CliError::Json)?
    );
    Ok(())
}

/// Runs a one-shot command on a current-thread runtime.
fn block_on<T>(f: impl std::future::Future<Output = Result<T, CliError>>) -> Result<T, CliError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(CliError::Runtime)?
        .block_on(f)
}

fn report(r: Result<(), CliError>) -> ExitCode {
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("portcullis: {}", crate::config::error_chain(&e));
            e.exit_code()
        }
    }
}

/// Parses the command line and runs it.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let gateway = matches!(cli.command, Command::Serve { .. } | Command::Dev { .. });
    init_logging(cli.log_format, !gateway);
    match cli.command {
        Command::Serve { config } => match Config::load(&config, &env_overrides()) {
            Ok(c) => finish(crate::app::run(c, Vec::new())),
            Err(e) => config_error(&e),
        },
        Command::Dev {
            listen,
            admin,
            upstream,
        } => dev(&listen, &admin, &upstream),
        Command::CheckConfig { files } => check_config(&files),
        Command::Routes(cmd) => report(routes::run(cmd)),
        Command::Explain(args) => report(explain::run(args)),
        Command::Migrate { db } => report(db::migrate(&db)),
        Command::Policy(cmd) => report(db::policy(cmd)),
        Command::Audit(cmd) => report(db::audit(cmd)),
        Command::Keys(cmd) => report(keys::run(cmd)),
        Command::Overrides(cmd) => report(overrides::run(cmd)),
        Command::Sync(cmd) => report(sync::run(cmd)),
        Command::CheckUpstream { config } => report(upstream::run(&config)),
    }
}

fn finish(r: Result<(), crate::app::AppError>) -> ExitCode {
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, cause = ?std::error::Error::source(&e), "portcullis failed");
            ExitCode::FAILURE
        }
    }
}

fn config_error(e: &ConfigError) -> ExitCode {
    eprintln!("portcullis: {e}");
    ExitCode::from(EXIT_CONFIG)
}

fn check_config(files: &[PathBuf]) -> ExitCode {
    let mut bad = false;
    for f in files {
        match Config::load(f, &env_overrides()).map(|c| (check_policy_file(&c), c)) {
            Ok((Ok(()), c)) => {
                outln!(
                    "{}: ok (routes: {})",
                    f.display(),
                    c.classifier.table().describe_profiles()
                );
                for w in policy_warnings(&c) {
                    outln!("{}: warning: {w}", f.display());
                }
            }
            Ok((Err(e), _)) => {
                bad = true;
                outln!("{}: {}", f.display(), crate::config::error_chain(&e));
            }
            Err(e) => {
                bad = true;
                outln!("{e}");
            }
        }
    }
    if bad {
        ExitCode::from(EXIT_CONFIG)
    } else {
        ExitCode::SUCCESS
    }
}

/// The file store's policy file, loaded exactly as `serve` loads it (parse, node cycles,
/// unknown group aliases and every other policy check). Postgres policies are checked by
/// `policy apply`.
fn check_policy_file(c: &Config) -> Result<(), crate::store::StoreError> {
    let st = &c.file.store;
    if st.kind != crate::store::StoreKind::File {
        return Ok(());
    }
    let path = c
        .base_dir()
        .join(st.policy_file.clone().unwrap_or_default());
    crate::store::FileStore::open(&path).map(drop)
}

/// Warnings about the file store's policy file (unknown verb names); none for Postgres.
fn policy_warnings(c: &Config) -> Vec<String> {
    let st = &c.file.store;
    if st.kind != crate::store::StoreKind::File {
        return Vec::new();
    }
    let path = c
        .base_dir()
        .join(st.policy_file.clone().unwrap_or_default());
    std::fs::read_to_string(&path)
        .ok()
        .and_then(|t| {
            crate::store::policy_file::PolicyFile::parse(&t, &path.display().to_string()).ok()
        })
        .map(|p| crate::store::policy_verbs::unknown_verb_warnings(&p))
        .unwrap_or_default()
}

fn dev(listen: &str, admin: &str, upstream: &str) -> ExitCode {
    // DEV-ONLY secrets unless the environment provides its own.
    for (var, value) in [
        ("PORTCULLIS_KEY_PEPPER", crate::dev::DEV_PEPPER),
        ("PORTCULLIS_DEV_HS_SECRET", crate::dev::DEV_HS_SECRET),
        ("PORTCULLIS_ADMIN_TOKEN", crate::dev::DEV_ADMIN_TOKEN),
        (
            "PORTCULLIS_UMBRACO_CLIENT_SECRET",
            crate::dev::demo_umbraco::DEV_CLIENT_SECRET,
        ),
    ] {
        if std::env::var_os(var).is_none() {
            std::env::set_var(var, value);
        }
    }
    let dir = std::env::temp_dir().join(format!("portcullis-dev-{}", std::process::id()));
    let path = match crate::dev::materialise(&dir) {
        Ok(p) => p,
        Err(e) => {
            eprintln!(
                "portcullis: cannot write the dev config to `{}`: {e}",
                dir.display()
            );
            return ExitCode::FAILURE;
        }
    };
    let mut env = env_overrides();
    env.push(("PORTCULLIS_LISTEN__ADDRESS".into(), format!("\"{listen}\"")));
    env.push(("PORTCULLIS_ADMIN__ADDRESS".into(), format!("\"{admin}\"")));
    env.push((
        "PORTCULLIS_UPSTREAM__MANAGEMENT".into(),
        format!("\"{upstream}\""),
    ));
    let spool = dir.join("audit-spool");
    env.push((
        "PORTCULLIS_AUDIT__SPOOL__DIR".into(),
        format!("{:?}", spool.display().to_string()),
    ));
    let config = match Config::load(&path, &env) {
        Ok(c) => c,
        Err(e) => return config_error(&e),
    };
    let mut demo = pingora::services::listening::Service::new(
        "portcullis demo upstream".into(),
        pingora::apps::http_app::HttpServer::new_app(crate::dev::DemoUpstream),
    );
    demo.add_tcp(upstream);
    demo.threads = Some(1);
    outln!("{}", crate::dev::banner(listen, admin, upstream));
    finish(crate::app::run(config, vec![Box::new(demo)]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_has_no_conflicting_arguments() {
        Cli::command().debug_assert();
    }

    #[test]
    fn cli_audit_query_parses_every_filter() {
        let cli = Cli::try_parse_from([
            "portcullis",
            "audit",
            "query",
            "--database-url",
            "postgres://db/x",
            "--principal",
            "key:abc",
            "--node",
            "00000000-0000-0000-0000-000000001063",
            "--since",
            "2026-01-31T12:00:00Z",
            "--decision",
            "deny",
            "--limit",
            "5",
            "--json",
        ])
        .expect("parses");
        let Command::Audit(db::AuditCommand::Query {
            filters,
            limit,
            json,
            ..
        }) = cli.command
        else {
            panic!("not audit query: {:?}", cli.command);
        };
        assert!(matches!(filters.decision, Some(db::DecisionArg::Deny)));
        assert_eq!((limit, json), (5, true));
        assert_eq!(
            filters.since.map(|s| s.to_rfc3339()),
            Some("2026-01-31T12:00:00+00:00".to_owned())
        );
    }

    #[test]
    fn cli_audit_query_refuses_a_bad_since_and_decision() {
        for bad in [["--since", "yesterday"], ["--decision", "maybe"]] {
            let args = ["portcullis", "audit", "query", "--database-url", "x"]
                .into_iter()
                .chain(bad);
            assert!(Cli::try_parse_from(args).is_err(), "{bad:?} accepted");
        }
    }
}
