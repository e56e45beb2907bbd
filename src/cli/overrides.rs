//! `portcullis overrides list|show|create|update|delete RESOURCE …`: the local overrides of a
//! running gateway's admin API (`/v1/overrides/…`, docs/ADMIN.md) — `groups`,
//! `group-mappings` (id `ISSUER/IDP_GROUP`) and `users` (id: the external id). Bodies are the
//! API's JSON (`--data '{…}'`, `--data @file.json`, `--data -` for stdin). `update` and
//! `delete` send `If-Match`: the `--if-match` given, or the ETag the resource has just now.

use super::admin_client::{segment, table, with_query, AdminClient, AdminTarget};
use super::keys::{cell, details};
use super::{print_json, CliError};
use clap::{Args, Subcommand, ValueEnum};
use reqwest::Method;
use serde_json::Value;

/// The override resources.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Resource {
    Groups,
    GroupMappings,
    Users,
}

impl Resource {
    fn base(self) -> &'static str {
        match self {
            Resource::Groups => "/v1/overrides/groups",
            Resource::GroupMappings => "/v1/overrides/group-mappings",
            Resource::Users => "/v1/overrides/users",
        }
    }

    /// The path of one: a mapping's `ISSUER/IDP_GROUP` is two segments.
    fn path(self, id: &str) -> Result<String, CliError> {
        let parts: Vec<String> = match self {
            Resource::GroupMappings => match id.split_once('/') {
                Some((issuer, group)) => vec![segment(issuer), segment(group)],
                None => return Err(CliError::BadId(id.to_owned())),
            },
            _ => vec![segment(id)],
        };
        Ok(format!("{}/{}", self.base(), parts.join("/")))
    }

    /// Table columns: header and the JSON field of each.
    fn columns(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Resource::Groups => &[
                ("ALIAS", "alias"),
                ("NAME", "name"),
                ("ORIGIN", "origin"),
                ("SECTIONS", "sections"),
                ("CONTENT_START", "content_start"),
                ("LANGUAGES", "languages"),
            ],
            Resource::GroupMappings => &[
                ("ISSUER", "issuer"),
                ("IDP_GROUP", "idp_group"),
                ("GROUPS", "groups"),
            ],
            Resource::Users => &[
                ("EXTERNAL_ID", "external_id"),
                ("NAME", "name"),
                ("STATE", "state"),
                ("ORIGIN", "origin"),
                ("GROUPS", "groups"),
            ],
        }
    }
}

/// `portcullis overrides …`
#[derive(Debug, Subcommand)]
pub enum OverridesCommand {
    /// List groups, group mappings or users (of both owners, with their origin).
    List {
        #[command(flatten)]
        target: AdminTarget,
        #[arg(value_enum)]
        resource: Resource,
        /// Only `local` or only `umbraco` rows.
        #[arg(long)]
        origin: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Show one.
    Show(OneArgs),
    /// Create a local one from the JSON body.
    Create {
        #[command(flatten)]
        target: AdminTarget,
        #[arg(value_enum)]
        resource: Resource,
        /// The JSON body: inline, `@FILE`, or `-` for stdin.
        #[arg(long)]
        data: String,
        #[arg(long)]
        json: bool,
    },
    /// Replace a local one with the JSON body.
    Update {
        #[command(flatten)]
        one: OneArgs,
        /// The JSON body: inline, `@FILE`, or `-` for stdin.
        #[arg(long)]
        data: String,
        /// The ETag the change is based on (default: the current one).
        #[arg(long)]
        if_match: Option<String>,
    },
    /// Delete a local one.
    Delete {
        #[command(flatten)]
        one: OneArgs,
        /// The ETag the deletion is based on (default: the current one).
        #[arg(long)]
        if_match: Option<String>,
    },
}

/// One resource and where to send the request.
#[derive(Debug, Args)]
pub struct OneArgs {
    #[command(flatten)]
    target: AdminTarget,
    #[arg(value_enum)]
    resource: Resource,
    /// Alias (groups), `ISSUER/IDP_GROUP` (group-mappings) or external id (users).
    id: String,
    #[arg(long)]
    json: bool,
}

/// The `--data` body.
fn body(data: &str) -> Result<Value, CliError> {
    let bytes = match data {
        "-" => {
            let mut b = Vec::new();
            std::io::Read::read_to_end(&mut std::io::stdin(), &mut b).map_err(|source| {
                CliError::Read {
                    path: "-".into(),
                    source,
                }
            })?;
            b
        }
        d => match d.strip_prefix('@') {
            Some(file) => super::routes::read_file(std::path::Path::new(file))?,
            None => d.as_bytes().to_vec(),
        },
    };
    serde_json::from_slice(&bytes).map_err(CliError::Json)
}

/// Runs an `overrides` subcommand.
pub fn run(cmd: OverridesCommand) -> Result<(), CliError> {
    super::block_on(async {
        match cmd {
            OverridesCommand::List {
                target,
                resource,
                origin,
                json,
            } => {
                let path = with_query(resource.base(), &[("origin", origin)]);
                let v = AdminClient::new(&target)?
                    .call(Method::GET, &path, None)
                    .await?;
                print_list(resource, &v, json)
            }
            OverridesCommand::Show(one) => {
                let path = one.resource.path(&one.id)?;
                let v = AdminClient::new(&one.target)?
                    .call(Method::GET, &path, None)
                    .await?;
                print_one(&v, one.json)
            }
            OverridesCommand::Create {
                target,
                resource,
                data,
                json,
            } => {
                let v = AdminClient::new(&target)?
                    .call(Method::POST, resource.base(), Some(&body(&data)?))
                    .await?;
                print_one(&v, json)
            }
            OverridesCommand::Update {
                one,
                data,
                if_match,
            } => {
                let b = body(&data)?;
                let v = edit(&one, Method::PUT, Some(&b), if_match).await?;
                print_one(&v, one.json)
            }
            OverridesCommand::Delete { one, if_match } => {
                edit(&one, Method::DELETE, None, if_match).await?;
                if !one.json {
                    outln!("deleted");
                }
                Ok(())
            }
        }
    })
}

/// A PUT or DELETE with `If-Match`: `if_match`, or the ETag of a GET just before.
async fn edit(
    one: &OneArgs,
    method: Method,
    body: Option<&Value>,
    if_match: Option<String>,
) -> Result<Value, CliError> {
    let c = AdminClient::new(&one.target)?;
    let path = one.resource.path(&one.id)?;
    let tag = match if_match {
        Some(t) => Some(t),
        None => c.send(Method::GET, &path, None, None).await?.1,
    };
    Ok(c.send(method, &path, body, tag.as_deref()).await?.0)
}

fn print_one(v: &Value, json: bool) -> Result<(), CliError> {
    if json {
        return print_json(v);
    }
    out!("{}", details(v));
    Ok(())
}

fn print_list(resource: Resource, v: &Value, json: bool) -> Result<(), CliError> {
    if json {
        return print_json(v);
    }
    let cols = resource.columns();
    let header: Vec<&str> = cols.iter().map(|(h, _)| *h).collect();
    let rows: Vec<Vec<String>> = v["items"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|item| cols.iter().map(|(_, f)| cell(&item[*f])).collect())
                .collect()
        })
        .unwrap_or_default();
    out!("{}", table(&header, &rows));
    Ok(())
}
