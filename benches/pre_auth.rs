//! Everything done before authentication, at its worst case: a query of repeated `pcl_` (the
//! API-key-in-query scan was quadratic in it). Head checks, classification of the raw target and
//! credential extraction, at 16, 32 and 64 KiB: linear work shows as time doubling with size
//! (`cargo bench --bench pre_auth`).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use portcullis::proxy::head_check::{check, HeadFacts, HeadPolicy, Limits};
use portcullis::request::{Classifier, RoutesConfig};
use std::hint::black_box;
use std::path::Path;

fn bench(c: &mut Criterion) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let classifier = match Classifier::from_config(&RoutesConfig::default(), &dir) {
        Ok(c) => c,
        Err(e) => panic!("shipped route profiles do not load: {e}"),
    };
    // Limits raised so the whole query is looked at (the default refuses it at 8 KiB with 414).
    let policy = HeadPolicy {
        limits: Limits {
            max_query_bytes: 1 << 20,
            max_head_bytes: 1 << 20,
            ..Limits::default()
        },
        allowed_hosts: Vec::new(),
    };
    let mut group = c.benchmark_group("pre_auth_pcl_query");
    // http::Uri holds at most 65,534 bytes: the largest case is 16,000 × `pcl_` (62.5 KiB).
    for repeats in [4_000usize, 8_000, 16_000] {
        let target = format!(
            "/umbraco/delivery/api/v2/content?filter={}",
            "pcl_".repeat(repeats)
        );
        let raw_head = format!("GET {target} HTTP/1.1\r\nHost: cms\r\n\r\n");
        let parts = match http::Request::get(target.as_str()).body(()) {
            Ok(r) => r.into_parts().0,
            Err(e) => panic!("request head does not build: {e}"),
        };
        group.throughput(Throughput::Bytes(target.len() as u64));
        group.bench_with_input(
            BenchmarkId::from_parameter(target.len()),
            &target,
            |b, t| {
                b.iter(|| {
                    let head = HeadFacts::from_raw(raw_head.as_bytes());
                    let checked = check(&head, parts.version, t.as_bytes(), None, &policy);
                    let classified = classifier.classify_raw("GET", t.as_bytes(), &parts.headers);
                    let credential = portcullis::authn::extract(&parts.headers, &parts.uri);
                    black_box((checked, classified, credential))
                })
            },
        );
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
