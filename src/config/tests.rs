//! Config loading, validation and environment overrides.

use super::*;

fn load(text: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    // Every config needs a store; these tests are about the other sections.
    let text = format!("{text}\n[store]\nkind = \"postgres\"\n");
    Config::from_str(Path::new("/etc/portcullis/portcullis.toml"), &text, &env)
}

#[test]
fn a_minimal_config_is_valid() {
    let c = load("[upstream]\nmanagement = \"127.0.0.1:5000\"\n", &[]).expect("valid");
    assert_eq!(c.delivery_upstream, c.management_upstream);
    assert_eq!(c.file.mode, Mode::Enforce);
}

#[test]
fn passthrough_is_refused_outside_development() {
    let err = load(
        "mode = \"passthrough\"\n[upstream]\nmanagement = \"127.0.0.1:5000\"\n",
        &[],
    )
    .unwrap_err();
    assert!(err.to_string().contains("passthrough"), "{err}");
    load(
        "development = true\nmode = \"passthrough\"\n[upstream]\nmanagement = \"127.0.0.1:5000\"\n",
        &[],
    )
    .expect("development passthrough is allowed");
}

#[test]
fn every_problem_is_reported_at_once() {
    let err = load(
        "[listen]\naddress = \"nope\"\n[upstream]\nmanagement = \"\"\nread_timeout = \"0s\"\n[headers]\ntrusted_proxies = [\"10.0.0.0/99\"]\n",
        &[],
    )
    .unwrap_err();
    let text = err.to_string();
    for needle in [
        "listen.address",
        "upstream.management",
        "upstream.read_timeout",
        "trusted_proxies[0]",
    ] {
        assert!(text.contains(needle), "missing {needle} in {text}");
    }
}

#[test]
fn connection_limits_default_and_refuse_zero_and_absurd_values() {
    let c = load("[upstream]\nmanagement = \"127.0.0.1:5000\"\n", &[]).expect("valid");
    assert_eq!(c.file.listen.request_head_timeout, Duration::from_secs(10));
    assert_eq!(c.file.listen.keepalive_timeout, Duration::from_secs(60));
    assert!(c.max_connections >= 1);
    let err = load(
        "[listen]\nrequest_head_timeout = \"0s\"\nkeepalive_timeout = \"2h\"\nbody_timeout = \"0s\"\nmax_connections = 0\n[upstream]\nmanagement = \"127.0.0.1:5000\"\n",
        &[],
    )
    .unwrap_err()
    .to_string();
    for needle in [
        "listen.request_head_timeout: must be greater than zero",
        "listen.keepalive_timeout: must be at most 1h",
        "listen.body_timeout: must be greater than zero",
        "listen.max_connections: must be at least 1",
    ] {
        assert!(err.contains(needle), "missing {needle} in {err}");
    }
    if let Some(limit) = crate::proxy::edge::open_file_limit() {
        let err = load(
            &format!("[listen]\nmax_connections = {limit}\n[upstream]\nmanagement = \"127.0.0.1:5000\"\n"),
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("open-file limit"), "{err}");
    }
    let c = load(
        "[listen]\nmax_connections = 7\n[upstream]\nmanagement = \"127.0.0.1:5000\"\n",
        &[],
    )
    .expect("valid");
    assert_eq!(c.max_connections, 7);
}

#[test]
fn unknown_fields_are_rejected() {
    let err = load(
        "[upstream]\nmanagement = \"127.0.0.1:5000\"\nmanagment = 1\n",
        &[],
    )
    .unwrap_err();
    assert!(err.to_string().contains("managment"), "{err}");
}

#[test]
fn environment_overrides_nested_keys_with_types() {
    let c = load(
        "[upstream]\nmanagement = \"127.0.0.1:5000\"\n",
        &[
            ("PORTCULLIS_UPSTREAM__DELIVERY", "127.0.0.1:6000"),
            ("PORTCULLIS_LISTEN__THREADS", "4"),
        ],
    )
    .expect("valid");
    assert_eq!(c.delivery_upstream.port(), 6000);
    assert_eq!(c.file.listen.threads, 4);
}
