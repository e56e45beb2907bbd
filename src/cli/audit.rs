//! `portcullis audit list`: the audit trail through a running gateway's `GET /v1/audit`
//! (docs/ADMIN.md), newest first, a page at a time (`--cursor` from the previous page, printed
//! on stderr) or every page (`--all`); a table by default, one JSON object per line with
//! `--json`. `audit query` reads the database directly instead.

use super::admin_client::{with_query, AdminClient, AdminTarget};
use super::db::AuditFilters;
use super::CliError;
use crate::audit::{format_json, format_table, AuditEvent};
use reqwest::Method;

/// `portcullis audit list`.
#[derive(Debug, clap::Args)]
pub struct ListArgs {
    #[command(flatten)]
    target: AdminTarget,
    #[command(flatten)]
    filters: AuditFilters,
    /// Events per page (1..=1000).
    #[arg(long, default_value_t = 100)]
    limit: u32,
    /// Start after this position (`next_cursor` of the previous page).
    #[arg(long)]
    cursor: Option<String>,
    /// Follow `next_cursor` to the last page.
    #[arg(long)]
    all: bool,
    /// One JSON object per line instead of a table.
    #[arg(long)]
    json: bool,
}

/// Prints the pages asked for.
pub fn list(args: ListArgs) -> Result<(), CliError> {
    super::block_on(async {
        let client = AdminClient::new(&args.target)?;
        let f = &args.filters;
        let decision = f.decision();
        let mut events: Vec<AuditEvent> = Vec::new();
        let mut cursor = args.cursor.clone();
        loop {
            let path = with_query(
                "/v1/audit",
                &[
                    ("principal", f.principal.clone()),
                    ("node", f.node.map(|n| n.to_string())),
                    ("since", f.since.map(|s| s.to_rfc3339())),
                    ("decision", decision.clone()),
                    ("limit", Some(args.limit.to_string())),
                    ("cursor", cursor.clone()),
                ],
            );
            let page = client.call(Method::GET, &path, None).await?;
            let items: Vec<AuditEvent> =
                serde_json::from_value(page["items"].clone()).map_err(CliError::Json)?;
            events.extend(items);
            cursor = page["next_cursor"].as_str().map(str::to_owned);
            if !args.all || cursor.is_none() {
                break;
            }
        }
        if args.json {
            out!("{}", format_json(&events).map_err(CliError::Audit)?);
        } else {
            out!("{}", format_table(&events));
        }
        if let Some(c) = cursor {
            eprintln!("portcullis: more events: --cursor {c}");
        }
        Ok(())
    })
}
