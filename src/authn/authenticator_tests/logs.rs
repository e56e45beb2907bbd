//! Log hygiene: no token, API key or key secret appears in the authenticator's logs.

use super::*;
use crate::authn::api_key;

/// A `tracing` writer that keeps everything written to it.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// `tracing` caches callsite interest process-wide, so a scoped subscriber can miss events
/// while other tests run in parallel; the capture therefore runs alone in a child process.
#[test]
fn tokens_and_key_secrets_never_appear_in_logs() {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "authn::authenticator_tests::logs::log_capture_in_child_process",
            "--include-ignored",
            "--test-threads=1",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("1 passed"),
        "the child ran no test: {stdout}"
    );
}

#[tokio::test(flavor = "current_thread")]
#[ignore = "run alone by tokens_and_key_secrets_never_appear_in_logs"]
async fn log_capture_in_child_process() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let server = JwksServer::start(idp().jwks(&["rsa-a"])).await;
    let a = started(&server).await;
    let good = idp().mint("rsa-a", Algorithm::RS256, &claims());
    let expired = idp().mint(
        "rsa-a",
        Algorithm::RS256,
        &with(json!({"exp": now() - 100})),
    );
    let unknown_kid = idp().mint("rsa-b", Algorithm::RS256, &claims());
    for t in [&good, &expired, &unknown_kid] {
        let _ = a.verify_bearer(t).await;
    }
    let k = a.generate_api_key().unwrap();
    let presented = api_key::parse(&k.full).unwrap();
    let _ = a.verify_api_key(&presented, None);

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("bearer token rejected"),
        "logging was not captured: {logs}"
    );
    assert!(
        logs.contains("api key rejected"),
        "logging was not captured: {logs}"
    );
    for secret in [
        &good,
        &expired,
        &unknown_kid,
        &k.full,
        &presented.secret().to_owned(),
    ] {
        let signature = &secret[secret.len() - 20..];
        assert!(!logs.contains(signature), "a secret leaked into the logs");
    }
}
