//! The command line: `serve`, `dev`, `check-config`. Parses arguments and dispatches; exit code
//! 64 (EX_USAGE) for a bad config, 1 for a runtime failure.

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
}

/// Parses the command line and runs it.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
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
        match Config::load(f, &env_overrides()) {
            Ok(_) => println!("{}: ok", f.display()),
            Err(e) => {
                bad = true;
                println!("{e}");
            }
        }
    }
    if bad {
        ExitCode::from(EXIT_CONFIG)
    } else {
        ExitCode::SUCCESS
    }
}

fn dev(listen: &str, admin: &str, upstream: &str) -> ExitCode {
    // DEV-ONLY secrets unless the environment provides its own.
    for (var, value) in [
        ("PORTCULLIS_KEY_PEPPER", crate::dev::DEV_PEPPER),
        ("PORTCULLIS_DEV_HS_SECRET", crate::dev::DEV_HS_SECRET),
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
    println!("{}", crate::dev::banner(listen, admin, upstream));
    finish(crate::app::run(config, vec![Box::new(demo)]))
}
