//! Unit tests of the `[audit]` section: defaults, every sink kind, unknown fields, and every
//! problem reported at once.

use super::*;

#[test]
fn default_audit_config_is_valid() {
    let mut p = crate::config::Problems::default();
    AuditConfig::default().validate(&mut p);
    assert!(p.is_empty(), "{p:?}");
}

#[test]
fn audit_config_parses_every_sink_kind_from_toml() {
    let cfg: AuditConfig = toml::from_str(
        r#"
        sample_allow = 0.1
        flush_interval = "250ms"
        [spool]
        dir = "/tmp/spool"
        fsync = "always"
        [[sinks]]
        kind = "stdout"
        [[sinks]]
        kind = "file"
        path = "/var/log/portcullis/audit.jsonl"
        keep = 3
        [[sinks]]
        kind = "postgres"
        [[sinks]]
        kind = "webhook"
        name = "siem"
        url = "https://siem.example/ingest"
        token_env = "SIEM_TOKEN"
        "#,
    )
    .expect("parse");
    assert_eq!(cfg.flush_interval, Duration::from_millis(250));
    assert_eq!(cfg.spool.fsync, FsyncPolicy::Always);
    let names: Vec<_> = cfg.sinks.iter().map(SinkConfig::name).collect();
    assert_eq!(names, ["stdout", "file", "postgres", "siem"]);
    let mut p = crate::config::Problems::default();
    cfg.validate(&mut p);
    assert!(p.is_empty(), "{p:?}");
}

#[test]
fn audit_config_rejects_unknown_fields() {
    assert!(toml::from_str::<AuditConfig>("queue_size = 3").is_err());
    assert!(toml::from_str::<AuditConfig>("[[sinks]]\nkind = \"stdout\"\nurl = \"x\"").is_err());
}

#[test]
fn invalid_audit_config_reports_every_problem() {
    let cfg = AuditConfig {
        queue_capacity: 0,
        batch_size: 0,
        flush_interval: Duration::ZERO,
        sample_allow: 1.5,
        sinks: vec![
            SinkConfig::Stdout { name: None },
            SinkConfig::Stdout { name: None },
            SinkConfig::Webhook {
                name: Some("bad name".into()),
                url: "ftp://user:pw@x".into(),
                token_env: Some(String::new()),
            },
            SinkConfig::File {
                name: None,
                path: "".into(),
                max_bytes: 10,
                keep: 0,
            },
        ],
        ..AuditConfig::default()
    };
    let mut p = crate::config::Problems::default();
    cfg.validate(&mut p);
    let text = p.0.join("\n");
    for needle in [
        "audit.queue_capacity",
        "audit.batch_size",
        "audit.flush_interval",
        "audit.sample_allow",
        "duplicate sink name `stdout`",
        "name `bad name`",
        "scheme `ftp`",
        "audit.sinks[2].token_env",
        "audit.sinks[3].path",
        "audit.sinks[3].max_bytes",
        "audit.sinks[3].keep",
    ] {
        assert!(text.contains(needle), "missing {needle} in\n{text}");
    }
}
