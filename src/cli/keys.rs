//! `portcullis keys create|list|show|revoke|rotate`: the API key lifecycle against a running
//! gateway's admin API (docs/ADMIN.md), a table by default and `--json`. `keys create --config
//! FILE` works offline on a file store's policy file: the same checks, the key made with the
//! config's pepper and `<env>`, only its hash written.

use super::admin_client::{segment, table, with_query, AdminClient, AdminTarget};
use super::{print_json, CliError};
use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::{json, Value};
use std::path::PathBuf;

/// `portcullis keys …`
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a key; its secret is printed once.
    Create(CreateArgs),
    /// List keys (never their secrets).
    List {
        #[command(flatten)]
        target: AdminTarget,
        /// Only keys with this owner.
        #[arg(long)]
        owner: Option<String>,
        /// Only `active`, `expired` or `revoked` keys.
        #[arg(long)]
        status: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Show one key.
    Show(KeyArgs),
    /// Revoke a key: it stops working at once on every gateway.
    Revoke(KeyArgs),
    /// Give a key a new secret (printed once); the old one works for `--overlap` seconds more.
    Rotate {
        #[command(flatten)]
        key: KeyArgs,
        /// Seconds the current secret keeps working (0: stops at once).
        #[arg(long, default_value_t = 3600)]
        overlap: u64,
    },
}

/// A key id and where to send the request.
#[derive(Debug, Args)]
pub struct KeyArgs {
    #[command(flatten)]
    target: AdminTarget,
    /// The key id (the 16 characters after `pcl_<env>_`).
    key_id: String,
    #[arg(long)]
    json: bool,
}

/// `keys create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    #[command(flatten)]
    target: AdminTarget,
    /// Offline: write the key into this config's policy file (`store.kind = "file"`) instead
    /// of asking a gateway.
    #[arg(long)]
    config: Option<PathBuf>,
    #[arg(long)]
    name: String,
    /// Who answers for the key (a label; grants nothing).
    #[arg(long)]
    owner: String,
    /// `delivery` or `management`; repeat for both.
    #[arg(long = "api", required = true)]
    apis: Vec<String>,
    /// Delivery subtree root (node key); repeat for several. None: the whole tree.
    #[arg(long = "subtree-root")]
    subtree_roots: Vec<String>,
    /// Allowed culture (`en-us`); repeat for several. None: all.
    #[arg(long = "culture")]
    cultures: Vec<String>,
    /// Allow preview (draft) content.
    #[arg(long)]
    preview: bool,
    /// The registered user (external id) the key speaks for.
    #[arg(long)]
    acts_as: Option<String>,
    /// Requests per second.
    #[arg(long)]
    rate_limit: Option<u32>,
    /// Expiry (RFC 3339).
    #[arg(long)]
    expires_at: Option<String>,
    #[arg(long)]
    json: bool,
}

impl CreateArgs {
    /// The `POST /v1/keys` body.
    fn body(&self) -> Value {
        let mut b = json!({
            "name": self.name, "owner": self.owner, "apis": self.apis,
            "subtree_roots": self.subtree_roots, "cultures": self.cultures,
            "preview": self.preview,
        });
        if let Some(a) = &self.acts_as {
            b["acts_as"] = a.as_str().into();
        }
        if let Some(r) = self.rate_limit {
            b["rate_limit_rps"] = r.into();
        }
        if let Some(e) = &self.expires_at {
            b["expires_at"] = e.as_str().into();
        }
        b
    }
}

/// Runs a `keys` subcommand.
pub fn run(cmd: KeysCommand) -> Result<(), CliError> {
    super::block_on(async {
        match cmd {
            KeysCommand::Create(args) => match &args.config {
                Some(config) => {
                    let v = create_offline(config, &args.body()).await?;
                    print_secret(&v, args.json)
                }
                None => {
                    let c = AdminClient::new(&args.target)?;
                    let v = c.call(Method::POST, "/v1/keys", Some(&args.body())).await?;
                    print_secret(&v, args.json)
                }
            },
            KeysCommand::List {
                target,
                owner,
                status,
                json,
            } => {
                let path = with_query("/v1/keys", &[("owner", owner), ("status", status)]);
                let v = AdminClient::new(&target)?
                    .call(Method::GET, &path, None)
                    .await?;
                print_list(&v, json)
            }
            KeysCommand::Show(k) => one(&k, Method::GET, "", None).await,
            KeysCommand::Revoke(k) => one(&k, Method::POST, "/revoke", None).await,
            KeysCommand::Rotate { key, overlap } => {
                let body = json!({ "overlap_seconds": overlap });
                let c = AdminClient::new(&key.target)?;
                let path = format!("/v1/keys/{}/rotate", segment(&key.key_id));
                let v = c.call(Method::POST, &path, Some(&body)).await?;
                print_secret(&v, key.json)
            }
        }
    })
}

async fn one(
    k: &KeyArgs,
    method: Method,
    suffix: &str,
    body: Option<&Value>,
) -> Result<(), CliError> {
    let path = format!("/v1/keys/{}{suffix}", segment(&k.key_id));
    let v = AdminClient::new(&k.target)?
        .call(method, &path, body)
        .await?;
    if k.json {
        return print_json(&v);
    }
    out!("{}", details(&v));
    Ok(())
}

const COLUMNS: [&str; 7] = [
    "KEY_ID", "NAME", "OWNER", "APIS", "STATUS", "EXPIRES", "RPS",
];

pub(super) fn cell(v: &Value) -> String {
    match v {
        Value::Null => "-".to_owned(),
        Value::String(s) => s.clone(),
        Value::Array(a) => a.iter().map(cell).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
}

fn row(k: &Value) -> Vec<String> {
    [
        "key_id",
        "name",
        "owner",
        "apis",
        "status",
        "expires_at",
        "rate_limit_rps",
    ]
    .iter()
    .map(|f| cell(&k[*f]))
    .collect()
}

fn print_list(v: &Value, json: bool) -> Result<(), CliError> {
    if json {
        return print_json(v);
    }
    let rows: Vec<Vec<String>> = v["items"]
        .as_array()
        .map(|a| a.iter().map(row).collect())
        .unwrap_or_default();
    out!("{}", table(&COLUMNS, &rows));
    Ok(())
}

/// One key as `field  value` lines.
pub(super) fn details(k: &Value) -> String {
    let rows: Vec<Vec<String>> = k
        .as_object()
        .map(|o| o.iter().map(|(f, v)| vec![f.clone(), cell(v)]).collect())
        .unwrap_or_default();
    table(&["FIELD", "VALUE"], &rows)
}

/// A `create`/`rotate` answer: the key, then the secret with a warning on stderr.
fn print_secret(v: &Value, json: bool) -> Result<(), CliError> {
    if json {
        print_json(v)?;
    } else {
        out!("{}", details(&v["key"]));
        outln!("secret  {}", cell(&v["secret"]));
    }
    eprintln!("portcullis: the secret is shown only now; store it safely");
    Ok(())
}

/// `keys create --config FILE`: the key written into the config's policy file.
async fn create_offline(config: &std::path::Path, body: &Value) -> Result<Value, CliError> {
    use crate::store::{FileStore, KeyWriter, StoreKind};
    let cfg = crate::config::Config::load(config, &crate::config::env_overrides())
        .map_err(CliError::Config)?;
    let st = &cfg.file.store;
    if st.kind != StoreKind::File {
        return Err(CliError::NotFileStore);
    }
    let path = cfg
        .base_dir()
        .join(st.policy_file.clone().unwrap_or_default());
    let registry = prometheus::Registry::new();
    let authn =
        crate::authn::Authenticator::new(&cfg.file.authn, &registry).map_err(CliError::Authn)?;
    let generated = authn.generate_api_key().ok_or(CliError::NotFileStore)?;
    let store = FileStore::open(&path).map_err(CliError::Store)?;
    let writer = KeyWriter::file(&path, None, None);
    let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    let bytes = serde_json::to_vec(body).map_err(CliError::Json)?;
    let entry =
        crate::admin::keys::create_key(&store, &writer, &generated, &bytes, &format!("cli:{user}"))
            .await
            .map_err(CliError::refused)?;
    Ok(crate::admin::keys::secret_json(&entry, &generated.full))
}
