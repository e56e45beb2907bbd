//! How long a user disabled in Umbraco keeps access through the gateway, measured (not
//! asserted: the number is for the operator documentation). Umbraco revokes a disabled user's
//! tokens at once (`RevokeUserAuthenticationTokensNotificationHandler`), so the gateway is the
//! only delay: its cached `user/current` answer lives `session_ttl`.
//!
//! `cargo test --test it umbraco_revocation -- --ignored --nocapture` prints, per TTL, the time
//! from the change in Umbraco to the first refusal when the session was cached just before it
//! (the worst case) and when it was cached half a TTL before it.

use crate::fake_umbraco::FakeUmbraco;
use crate::harness::*;
use crate::pipeline::send;
use crate::umbraco_callers::{doc, gateway, site};
use std::time::{Duration, Instant};

/// Disables the user `cached_for` after its session was cached; the time until the first 401.
async fn cutoff(ttl: &str, cached_for: Duration) -> Duration {
    let mut s = site();
    let tok = s.state.issue_token(s.bob);
    let fake = FakeUmbraco::start(s.state).await;
    let gw = gateway(&fake, &format!("session_ttl = \"{ttl}\"")).await;
    let url = gw.url(&doc(s.post));
    assert_eq!(send(client().get(&url).bearer_auth(&tok)).await.0, 404);
    tokio::time::sleep(cached_for).await;
    fake.with(|st| st.disable_user(s.bob));
    let disabled_at = Instant::now();
    wait_until(Duration::from_secs(120), || {
        let req = client().get(&url).bearer_auth(&tok);
        async move { send(req).await.0 == 401 }
    })
    .await
    .expect("the disabled user was never refused");
    disabled_at.elapsed()
}

#[tokio::test]
#[ignore = "a measurement (about a minute); run with --ignored --nocapture"]
async fn measure_how_long_a_disabled_user_keeps_access() {
    for (ttl, secs) in [("5s", 5.0), ("30s", 30.0)] {
        let worst = cutoff(ttl, Duration::ZERO).await;
        let half = cutoff(ttl, Duration::from_secs_f64(secs / 2.0)).await;
        eprintln!(
            "session_ttl {ttl}: refused {:.2} s after the change (cached just before), {:.2} s (cached {:.1} s before)",
            worst.as_secs_f64(),
            half.as_secs_f64(),
            secs / 2.0
        );
    }
}
