//! `portcullis dev` prints ready-to-paste curl lines; each is run here, as printed, through a
//! shell against the running dev gateway: a line annotated `# NNN reason` answers exactly that
//! status and names that reason, `curl -i` lines without a note answer 2xx, `curl -s` lines
//! (probes, metrics, explain, keys) succeed with output. Management API answers of the demo
//! upstream name the Umbraco user that acted (`umbracoUser`): the dev API user for the JWT
//! callers, `uma` for the lines holding Umbraco's own token or back-office cookie.

use crate::harness::{binary, client, free_addrs, wait_until};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

struct Dev(Child);

impl Drop for Dev {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The curl lines of the banner.
fn curl_lines(banner: &str) -> Vec<String> {
    banner
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("curl "))
        .map(str::to_owned)
        .collect()
}

/// Runs one line through `sh`; (exit code, stdout).
async fn run(line: &str) -> (i32, String) {
    let out = tokio::process::Command::new("sh")
        .args(["-c", line])
        .output()
        .await
        .expect("sh");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[tokio::test]
async fn every_printed_curl_line_behaves_as_printed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("dev.out");
    let [proxy, admin, upstream] = free_addrs();
    let child = Command::new(binary())
        .args([
            "dev",
            "--listen",
            &proxy.to_string(),
            "--admin",
            &admin.to_string(),
        ])
        .args(["--upstream", &upstream.to_string()])
        .env_remove("PORTCULLIS_ADMIN_TOKEN")
        .env_remove("PORTCULLIS_KEY_PEPPER")
        .env_remove("PORTCULLIS_DEV_HS_SECRET")
        .stdout(Stdio::from(std::fs::File::create(&log).expect("log")))
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn dev");
    let _dev = Dev(child);
    let banner = || std::fs::read_to_string(&log).unwrap_or_default();
    wait_until(Duration::from_secs(30), || async {
        let ready = client()
            .get(format!("http://{admin}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200);
        ready && banner().contains("Ctrl-C stops.")
    })
    .await
    .unwrap_or_else(|| panic!("dev mode never became ready; printed:\n{}", banner()));

    let lines = curl_lines(&banner());
    assert!(lines.len() >= 14, "{lines:?}");
    let opaque = portcullis::dev::demo_umbraco::DEV_UMBRACO_TOKEN;
    let cookie = "Cookie: umbAccessToken=";
    for form in [format!("Bearer {opaque}'"), cookie.to_owned()] {
        assert!(lines.iter().any(|l| l.contains(&form)), "no `{form}` line");
    }
    for line in &lines {
        let (code, out) = run(line).await;
        assert_eq!(code, 0, "`{line}` exited {code}: {out}");
        let note = line.split_once("   # ").map(|(_, n)| n.trim());
        if line.starts_with("curl -i") {
            let status = out.split_whitespace().nth(1).unwrap_or_default();
            match note {
                Some(n) => {
                    let (want, reason) = n.split_once(' ').expect("`NNN reason` note");
                    assert_eq!(status, want, "`{line}`:\n{out}");
                    assert!(out.contains(&format!("\"{reason}\"")), "`{line}`:\n{out}");
                }
                None => assert!(status.starts_with('2'), "`{line}`:\n{out}"),
            }
            let acting = if line.contains(opaque) || line.contains(cookie) {
                Some("uma")
            } else if line.contains("Bearer ey") {
                Some(portcullis::dev::demo_umbraco::DEV_CLIENT_ID)
            } else {
                None
            };
            if let (Some(user), None) = (acting, note) {
                let want = format!("\"umbracoUser\":\"{user}\"");
                assert!(
                    out.contains(&want),
                    "`{line}` did not act as {user}:\n{out}"
                );
            }
        } else {
            assert!(note.is_none(), "annotated -s line: {line}");
            assert!(!out.trim().is_empty(), "`{line}` printed nothing");
            if line.contains("/v1/") {
                let v: serde_json::Value = serde_json::from_str(&out)
                    .unwrap_or_else(|e| panic!("`{line}` not json ({e}): {out}"));
                assert!(v.get("error").is_none(), "`{line}`: {v}");
            }
        }
    }
}
