//! The operator commands' client of a running gateway's admin API: `--admin-url` (or
//! `$PORTCULLIS_ADMIN_URL`), the bearer token from `$PORTCULLIS_ADMIN_TOKEN` only (a flag would
//! show it in `ps`), JSON in and out. A refusal keeps the API's error for the message and the
//! exit code (docs/CLI.md).

use super::CliError;
use clap::Args;
use serde_json::Value;
use std::time::Duration;

/// Environment variable holding the admin token.
pub const TOKEN_ENV: &str = "PORTCULLIS_ADMIN_TOKEN";

/// Where the gateway's admin listener is.
#[derive(Debug, Clone, Args)]
pub struct AdminTarget {
    /// Base URL of the gateway's admin listener.
    #[arg(
        long,
        env = "PORTCULLIS_ADMIN_URL",
        default_value = "http://127.0.0.1:9901"
    )]
    pub admin_url: String,
}

/// A connection to one gateway's admin API.
pub struct AdminClient {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl AdminClient {
    /// Reads the token from the environment; [`CliError::NoAdminToken`] when unset.
    pub fn new(target: &AdminTarget) -> Result<AdminClient, CliError> {
        let token = std::env::var(TOKEN_ENV).map_err(|_| CliError::NoAdminToken)?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(CliError::Admin)?;
        Ok(AdminClient {
            base: target.admin_url.trim_end_matches('/').to_owned(),
            token: token.trim().to_owned(),
            http,
        })
    }

    /// `method path` with an optional JSON body; the JSON answer of a 2xx, otherwise
    /// [`CliError::Refused`] with the API's error.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, CliError> {
        self.send(method, path, body, None).await.map(|(v, _)| v)
    }

    /// As [`AdminClient::call`], with an optional `If-Match`; also returns the answer's `ETag`.
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
        if_match: Option<&str>,
    ) -> Result<(Value, Option<String>), CliError> {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(b);
        }
        if let Some(tag) = if_match {
            req = req.header(reqwest::header::IF_MATCH, tag);
        }
        let resp = req.send().await.map_err(CliError::Admin)?;
        let status = resp.status().as_u16();
        let etag = resp
            .headers()
            .get(reqwest::header::ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let text = resp.text().await.map_err(CliError::Admin)?;
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if (200..300).contains(&status) {
            return Ok((v, etag));
        }
        Err(CliError::Refused {
            status,
            error: v["error"].as_str().unwrap_or("unknown").to_owned(),
            message: v["message"].as_str().unwrap_or(&text).to_owned(),
            field: v["field"].as_str().map(str::to_owned),
        })
    }
}

/// `path?query` from the given pairs (only those with a value).
pub fn with_query(path: &str, pairs: &[(&str, Option<String>)]) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        if let Some(v) = v {
            q.append_pair(k, v);
        }
    }
    let q = q.finish();
    if q.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{q}")
    }
}

/// Percent-encodes one path segment.
pub fn segment(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// A fixed-column table: a header line, then one line per row; columns as wide as their
/// widest cell (the last one unpadded).
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let last = cells.len().saturating_sub(1);
        let mut out = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i == last {
                out.push_str(c);
            } else {
                out.push_str(&format!("{c:<w$}  ", w = widths[i]));
            }
        }
        out.trim_end().to_owned() + "\n"
    };
    let mut out = line(header.to_vec());
    for r in rows {
        out.push_str(&line(r.iter().map(String::as_str).collect()));
    }
    out
}
