//! Paths outside the protected prefixes: refused by default, forwarded unchecked only when a
//! config opts in (the whole-site sidecar, `config/sidecar-whole-site.toml`).

use crate::harness::*;
use crate::raw::*;

#[tokio::test]
async fn a_path_outside_the_protected_prefixes_is_404_no_route_by_default() {
    let up = Upstream::start().await;
    let gw = spawn_gateway("", up.addr, "").await;
    for target in ["/", "/site/page?x=1", "/umbraco/backoffice/app.js"] {
        let req = format!("GET {target} HTTP/1.1\r\nHost: cms\r\nConnection: close\r\n\r\n");
        let r = exchange(gw.proxy, req.as_bytes()).await.expect("response");
        assert_eq!(r.status, 404, "{target}: {r:?}");
        assert_eq!(r.error(), "no_route", "{target}");
    }
    assert!(up.requests().is_empty(), "nothing was forwarded");
}

#[tokio::test]
async fn the_whole_site_sidecar_forwards_paths_outside_the_prefixes_unchecked() {
    let up = Upstream::start().await;
    let gw = spawn_gateway(SITE, up.addr, "").await;
    let req = b"GET /site/page?x=1 HTTP/1.1\r\nHost: cms\r\nConnection: close\r\n\r\n";
    let r = exchange(gw.proxy, req).await.expect("response");
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("x-upstream"), Some("recorder"));
    assert_eq!(up.requests()[0].uri, "/site/page?x=1");
    // The APIs stay protected.
    let req = b"GET /umbraco/management/api/v1/document/00000000-0000-0000-0000-000000001063 HTTP/1.1\r\nHost: cms\r\nConnection: close\r\n\r\n";
    let r = exchange(gw.proxy, req).await.expect("response");
    assert_eq!(r.status, 401, "{r:?}");
    assert_eq!(up.requests().len(), 1);
}
