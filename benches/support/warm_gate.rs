//! Shared by the `gate` and `request_path` benches: the load benchmark's policy (an editor, a
//! translator, documents 1001…1012 in one chain), a config over the file store with a JSONL
//! audit sink, and the gate with the issuer's key installed and a token for the editor.
#![allow(clippy::unwrap_used, dead_code)]

use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use portcullis::authn::Authenticator;
use portcullis::config::Config;
use portcullis::gate::{Gate, Progress, Services, Verdict};
use portcullis::store::{FileStore, PolicyCache, PolicyStore, StoreMetrics};
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::pkcs8::DecodePrivateKey;
use rsa::traits::PublicKeyParts;
use serde_json::json;
use std::sync::Arc;

const RSA_A: &str = include_str!("../../tests/data/authn/TEST-ONLY-rsa-a.pem");
const ISSUER: &str = "https://bench.portcullis.invalid";
pub const DOC: &str = "/umbraco/management/api/v1/document/00000000-0000-0000-0000-000000001012";

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

pub fn config(dir: &std::path::Path) -> Config {
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
pub fn gate(config: &Config, dir: &std::path::Path) -> (Gate, Arc<Services>, String) {
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
    let services = Arc::new(Services::local(authn, cache));
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("k1".into());
    let now = chrono::Utc::now().timestamp();
    let claims = json!({"iss": ISSUER, "aud": "bench", "sub": "bench-editor",
                        "exp": now + 7200, "iat": now});
    let enc = EncodingKey::from_rsa_der(key.to_pkcs1_der().unwrap().as_bytes());
    let token = jsonwebtoken::encode(&header, &claims, &enc).unwrap();
    (Gate::new(config, services.clone()), services, token)
}

pub fn decided(progress: Progress) -> Box<Verdict> {
    match progress {
        Progress::Decided(v) => v,
        Progress::Wait(_) => panic!("a cold lookup on the warm path"),
        Progress::ReadBody { .. } => panic!("GET document/{{id}} reads no body"),
    }
}
