//! The gate end to end, as `request_filter` calls it on a warm cache: classification of the raw
//! target, RS256 bearer token (verified-token cache hit, and the signature cold), the user and the
//! ancestry of a document 12 levels deep from the file store's cache, the verb check — for a
//! Management `GET document/{id}` (the load benchmark's request, `benches/load/run`). Then the
//! rest of the per-request work the proxy does on its worker thread after the decision: the
//! audit metadata, the event and `Auditor::record` into a JSONL file sink.
#![allow(clippy::unwrap_used)]

use base64::Engine;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use portcullis::audit::{AuditEvent, Auditor, RequestMeta};
use portcullis::authn::Authenticator;
use portcullis::authz::Decision;
use portcullis::config::Config;
use portcullis::gate::{Gate, Progress, Services, Verdict};
use portcullis::store::{FileStore, PolicyCache, PolicyStore, StoreMetrics};
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::pkcs8::DecodePrivateKey;
use rsa::traits::PublicKeyParts;
use serde_json::json;
use std::sync::Arc;

const RSA_A: &str = include_str!("../tests/data/authn/TEST-ONLY-rsa-a.pem");
const ISSUER: &str = "https://bench.portcullis.invalid";
const DOC: &str = "/umbraco/management/api/v1/document/00000000-0000-0000-0000-000000001012";

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// The load benchmark's policy: an editor, a translator, documents 1001…1012 in one chain.
fn policy() -> String {
    let mut p = String::from(
        "[[users]]\nkey = \"00000000-0000-0000-00bb-000000000001\"\nexternal_id = \"bench-editor\"\nname = \"Editor\"\nemail = \"e@bench.invalid\"\ngroups = [\"editor\"]\n\n[[users]]\nkey = \"00000000-0000-0000-00bb-000000000002\"\nexternal_id = \"bench-translator\"\nname = \"Translator\"\nemail = \"t@bench.invalid\"\ngroups = [\"translator\"]\n",
    );
    for i in 1001..=1012 {
        p += &format!(
            "\n[[nodes]]\nkey = \"00000000-0000-0000-0000-{i:012}\"\nid = {i}\nkind = \"document\"\n"
        );
        if i > 1001 {
            p += &format!("parent = \"00000000-0000-0000-0000-{:012}\"\n", i - 1);
        }
    }
    p
}

fn config(dir: &std::path::Path) -> Config {
    std::fs::write(dir.join("policy.toml"), policy()).unwrap();
    let audit = dir.join("audit.jsonl");
    let spool = dir.join("spool");
    let text = format!(
        "mode = \"enforce\"\n[upstream]\nmanagement = \"127.0.0.1:9\"\n[authn]\npepper_env = \"PORTCULLIS_BENCH_PEPPER\"\n[[authn.issuers]]\nname = \"bench\"\nissuer = \"{ISSUER}\"\njwks_url = \"https://bench.portcullis.invalid/jwks\"\naudiences = [\"bench\"]\n[store]\nkind = \"file\"\npolicy_file = \"policy.toml\"\n[audit.spool]\ndir = \"{}\"\n[[audit.sinks]]\nkind = \"file\"\npath = \"{}\"\n",
        spool.display(),
        audit.display()
    );
    let path = dir.join("portcullis.toml");
    std::fs::write(&path, text).unwrap();
    std::env::set_var(
        "PORTCULLIS_BENCH_PEPPER",
        "bench-pepper-bench-pepper-bench-pepper",
    );
    Config::load(&path, &[]).unwrap()
}

/// The gate over the file store, with the issuer's key installed, and a token for `sub`.
fn gate(config: &Config, dir: &std::path::Path) -> (Gate, Arc<Services>, String) {
    let registry = prometheus::Registry::new();
    let authn = Authenticator::new(&config.file.authn, &registry).unwrap();
    let key = rsa::RsaPrivateKey::from_pkcs8_pem(RSA_A).unwrap();
    let public = key.to_public_key();
    let jwks = json!({"keys": [{"kty": "RSA", "kid": "k1", "use": "sig",
        "n": b64(&public.n().to_bytes_be()), "e": b64(&public.e().to_bytes_be())}]});
    authn
        .install_jwks("bench", jwks.to_string().as_bytes())
        .unwrap();
    let st = &config.file.store;
    let store: Arc<dyn PolicyStore> = Arc::new(FileStore::open(&dir.join("policy.toml")).unwrap());
    let cache = PolicyCache::new(
        store,
        st.cache.clone(),
        st.max_staleness,
        StoreMetrics::register(&registry).unwrap(),
    );
    cache.set_always_current();
    let services = Arc::new(Services {
        authn,
        cache,
        api_user: None,
        sessions: None,
        nodes: None,
        versions: None,
        mirror: None,
    });
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("k1".into());
    let now = chrono::Utc::now().timestamp();
    let claims = json!({"iss": ISSUER, "aud": "bench", "sub": "bench-editor",
                        "exp": now + 7200, "iat": now});
    let enc = EncodingKey::from_rsa_der(key.to_pkcs1_der().unwrap().as_bytes());
    let token = jsonwebtoken::encode(&header, &claims, &enc).unwrap();
    (Gate::new(config, services.clone()), services, token)
}

fn decided(progress: Progress) -> Box<Verdict> {
    match progress {
        Progress::Decided(v) => v,
        Progress::Wait(_) => panic!("a cold lookup on the warm path"),
        Progress::ReadBody { .. } => panic!("GET document/{{id}} reads no body"),
    }
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let (gate, services, token) = gate(&config, dir.path());
    let parts = http::Request::get(DOC)
        .header("authorization", format!("Bearer {token}"))
        .header("user-agent", "wrk")
        .body(())
        .unwrap()
        .into_parts()
        .0;
    let raw = DOC.as_bytes();
    let verdict = decided(rt.block_on(gate.decide(&parts, raw)));
    assert!(
        matches!(verdict.decision, Decision::Allow(_)),
        "{:?}",
        verdict.decision
    );

    c.bench_function("gate_document_get_depth12_warm", |b| {
        b.iter(|| decided(rt.block_on(gate.decide(&parts, raw))))
    });
    // What `request_filter` runs on a warm cache: no runtime, no future.
    c.bench_function("gate_document_get_depth12_decide_now", |b| {
        b.iter(|| decided(gate.decide_now(&parts, raw)))
    });
    c.bench_function("gate_document_get_depth12_token_cold", |b| {
        b.iter_batched(
            || services.authn.clear_token_cache(),
            |()| decided(rt.block_on(gate.decide(&parts, raw))),
            BatchSize::SmallInput,
        )
    });

    // The writers run on their own runtime, as in the gateway (`app::run`).
    let bg = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let registry = prometheus::Registry::new();
    let auditor = bg
        .block_on(async { Auditor::start(&config.file.audit, &registry) })
        .unwrap();
    let peer = Some("127.0.0.1".parse().unwrap());
    c.bench_function("gate_document_get_then_audit", |b| {
        b.iter(|| {
            let v = decided(rt.block_on(gate.decide(&parts, raw)));
            let meta = RequestMeta::new("req", &parts.method, DOC, peer, &parts.headers);
            let event = AuditEvent::new(
                &meta,
                v.target.as_ref(),
                v.principal.as_ref(),
                &v.groups,
                &v.decision,
            )
            .with_upstream(Some(200), None);
            auditor.record(event)
        })
    });
    bg.block_on(auditor.shutdown(std::time::Duration::from_secs(2)));
}

criterion_group!(benches, bench);
criterion_main!(benches);
