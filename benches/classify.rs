//! Hot-path bench: canonicalise + match a typical Management API request against the shipped
//! route table (`cargo bench --bench classify`).

use criterion::{criterion_group, criterion_main, Criterion};
use portcullis::request::{Classifier, RoutesConfig};
use std::hint::black_box;
use std::path::Path;

fn bench(c: &mut Criterion) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let classifier = match Classifier::from_config(&RoutesConfig::default(), &dir) {
        Ok(c) => c,
        Err(e) => panic!("shipped route profiles do not load: {e}"),
    };
    let move_req = http::Request::builder()
        .method("PUT")
        .uri("/umbraco/management/api/v1/document/3f0c1d2e-4b5a-4c6d-8e7f-9a0b1c2d3e4f/move")
        .body(())
        .map(|r| r.into_parts().0);
    let Ok(move_parts) = move_req else {
        panic!("request head does not build");
    };
    c.bench_function("classify_document_move", |b| {
        b.iter(|| classifier.classify(black_box(&move_parts)))
    });
    let get_req = http::Request::builder()
        .method("GET")
        .uri("/umbraco/management/api/v1/document/3f0c1d2e-4b5a-4c6d-8e7f-9a0b1c2d3e4f/audit-log?skip=0&take=50")
        .body(())
        .map(|r| r.into_parts().0);
    let Ok(get_parts) = get_req else {
        panic!("request head does not build");
    };
    c.bench_function("classify_document_audit_log_get", |b| {
        b.iter(|| classifier.classify(black_box(&get_parts)))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
