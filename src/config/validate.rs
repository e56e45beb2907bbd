//! Validation of a parsed config file into the runtime [`Config`]: addresses, header
//! settings, connection limits, and every section's own `validate`.

use super::{error_chain, Config, FileConfig, HeadersConfig, ListenConfig, Mode, Problems};
use ipnet::IpNet;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

fn parse_addr(at: &str, s: &str, p: &mut Problems) -> Option<SocketAddr> {
    use std::net::ToSocketAddrs;
    if s.is_empty() {
        p.push(at, "is required (host:port)");
        return None;
    }
    match s.to_socket_addrs().map(|mut a| a.next()) {
        Ok(Some(a)) => Some(a),
        _ => {
            p.push(at, format!("`{s}` is not a host:port address"));
            None
        }
    }
}

/// `headers.trusted_proxies` as networks (a bare address is its own /32 or /128) and
/// `headers.identity` as header names.
fn parse_headers(headers: &HeadersConfig, p: &mut Problems) -> (Vec<IpNet>, Vec<http::HeaderName>) {
    let mut trusted = Vec::new();
    for (i, c) in headers.trusted_proxies.iter().enumerate() {
        match c
            .parse::<IpNet>()
            .or_else(|_| c.parse::<std::net::IpAddr>().map(IpNet::from))
        {
            Ok(n) => trusted.push(n),
            Err(_) => p.push(
                &format!("headers.trusted_proxies[{i}]"),
                format!("`{c}` is not a CIDR"),
            ),
        }
    }
    let mut identity = Vec::new();
    for (i, h) in headers.identity.iter().enumerate() {
        match http::HeaderName::from_bytes(h.as_bytes()) {
            Ok(n) => identity.push(n),
            Err(_) => p.push(
                &format!("headers.identity[{i}]"),
                format!("`{h}` is not a header name"),
            ),
        }
    }
    (trusted, identity)
}

/// The file's settings checked and parsed into the runtime [`Config`]; `None` when any
/// problem was recorded.
pub(super) fn validate(path: &Path, file: FileConfig, p: &mut Problems) -> Option<Config> {
    if file.mode == Mode::Passthrough && !file.development {
        p.push(
            "mode",
            "`passthrough` is an allow-all placeholder and is refused unless `development = true`",
        );
    }
    let listen = parse_addr("listen.address", &file.listen.address, p);
    let admin = parse_addr("admin.address", &file.admin.address, p);
    let management = parse_addr("upstream.management", &file.upstream.management, p);
    let delivery = match &file.upstream.delivery {
        Some(d) => parse_addr("upstream.delivery", d, p),
        None => management,
    };
    if file.listen.threads == 0 {
        p.push("listen.threads", "must be at least 1");
    }
    let max_connections = validate_connections(&file.listen, file.upstream.keepalive_pool, p);
    if listen.is_some() && listen == admin {
        p.push("admin.address", "must differ from listen.address");
    }
    for (name, d) in [
        ("upstream.connect_timeout", file.upstream.connect_timeout),
        ("upstream.read_timeout", file.upstream.read_timeout),
        ("upstream.write_timeout", file.upstream.write_timeout),
    ] {
        if d.is_zero() {
            p.push(name, "must be greater than zero");
        }
    }
    let (trusted, identity) = parse_headers(&file.headers, p);
    let head_policy = crate::proxy::head_check::HeadPolicy::from_config(&file.listen, p);
    file.admin.validate(p);
    file.upstream.credential.validate(p);
    file.routes.validate(p);
    file.authn.validate(p);
    file.authz.validate(p);
    file.store.validate(p);
    file.audit.validate(p);
    file.sync.validate(p);
    let base = path.parent().unwrap_or(Path::new("."));
    let classifier = match crate::request::Classifier::from_config(&file.routes, base) {
        Ok(c) => Some(std::sync::Arc::new(
            c.with_item_scope(file.authz.item_scope),
        )),
        Err(e) => {
            p.push("routes", error_chain(&e));
            None
        }
    };
    Some(Config {
        classifier: classifier?,
        path: path.to_owned(),
        listen: listen?,
        admin: admin?,
        management_upstream: management?,
        delivery_upstream: delivery?,
        trusted_proxies: trusted,
        identity_headers: identity,
        max_connections,
        head_policy,
        file,
    })
}

/// The connection limits of `[listen]`: every deadline above zero and at most an hour (the
/// head deadline at most 5 minutes); a connection cap above zero and within the open-file
/// limit. Returns the cap in force.
fn validate_connections(l: &ListenConfig, keepalive_pool: usize, p: &mut Problems) -> usize {
    const HOUR: Duration = Duration::from_secs(3600);
    for (name, d, max) in [
        ("listen.body_timeout", l.body_timeout, HOUR),
        (
            "listen.request_head_timeout",
            l.request_head_timeout,
            HOUR / 12,
        ),
        ("listen.keepalive_timeout", l.keepalive_timeout, HOUR),
    ] {
        if d.is_zero() {
            p.push(name, "must be greater than zero");
        } else if d > max {
            p.push(
                name,
                format!("must be at most {}", humantime::format_duration(max)),
            );
        }
    }
    let fd_limit = crate::proxy::edge::open_file_limit();
    match (l.max_connections, fd_limit) {
        (Some(0), _) => p.push("listen.max_connections", "must be at least 1"),
        (Some(n), Some(limit)) if n as u64 >= limit => p.push(
            "listen.max_connections",
            format!("{n} is not below the open-file limit {limit} (ulimit -n): the admin listener and upstream connections need descriptors too; lower it or raise the limit"),
        ),
        _ => {}
    }
    l.max_connections
        .unwrap_or_else(|| crate::proxy::edge::default_max_connections(fd_limit, keepalive_pool))
}
