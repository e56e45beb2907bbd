//! Test IdP (tests only): fixed RSA test keys from `tests/data/authn/TEST-ONLY-*.pem`, an
//! EC P-256 key, JWKS documents, token minting with arbitrary headers, and a loopback JWKS
//! server whose responses, failures and hit count the test controls.

use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey};
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use rsa::traits::PublicKeyParts;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const RSA_A: &str = include_str!("../../tests/data/authn/TEST-ONLY-rsa-a.pem");
const RSA_B: &str = include_str!("../../tests/data/authn/TEST-ONLY-rsa-b.pem");

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The test identity provider's keys, built once per test binary.
pub(crate) struct Idp {
    rsa_a: rsa::RsaPrivateKey,
    rsa_b: rsa::RsaPrivateKey,
    ec: p256::SecretKey,
}

pub(crate) fn idp() -> &'static Idp {
    static IDP: OnceLock<Idp> = OnceLock::new();
    IDP.get_or_init(|| Idp {
        rsa_a: rsa::RsaPrivateKey::from_pkcs8_pem(RSA_A).unwrap(),
        rsa_b: rsa::RsaPrivateKey::from_pkcs8_pem(RSA_B).unwrap(),
        ec: p256::SecretKey::from_slice(&[7u8; 32]).unwrap(),
    })
}

/// The public JWK of the EC test key (no kid).
pub(crate) fn ec_jwk() -> Value {
    let point =
        p256::elliptic_curve::sec1::ToEncodedPoint::to_encoded_point(&idp().ec.public_key(), false);
    json!({"kty": "EC", "crv": "P-256", "use": "sig",
           "x": b64(point.x().unwrap()), "y": b64(point.y().unwrap())})
}

impl Idp {
    fn rsa(&self, kid: &str) -> &rsa::RsaPrivateKey {
        if kid.starts_with("rsa-b") {
            &self.rsa_b
        } else {
            &self.rsa_a
        }
    }

    /// JWK for `kid`: `rsa-a*`/`rsa-b*` are the RSA keys, `ec*` the EC key.
    pub(crate) fn rsa_jwk(&self, kid: &str) -> Value {
        let k = self.rsa(kid).to_public_key();
        json!({"kty": "RSA", "kid": kid, "use": "sig",
               "n": b64(&k.n().to_bytes_be()), "e": b64(&k.e().to_bytes_be())})
    }

    fn jwk(&self, kid: &str) -> Value {
        if kid.starts_with("ec") {
            let mut j = ec_jwk();
            j["kid"] = kid.into();
            j
        } else {
            self.rsa_jwk(kid)
        }
    }

    /// A JWKS document with the given kids.
    pub(crate) fn jwks(&self, kids: &[&str]) -> String {
        json!({ "keys": kids.iter().map(|k| self.jwk(k)).collect::<Vec<_>>() }).to_string()
    }

    /// The signing key behind `kid` for `alg`.
    pub(crate) fn encoding_key(&self, kid: &str) -> EncodingKey {
        if kid.starts_with("ec") {
            EncodingKey::from_ec_der(self.ec.to_pkcs8_der().unwrap().as_bytes())
        } else {
            EncodingKey::from_rsa_der(self.rsa(kid).to_pkcs1_der().unwrap().as_bytes())
        }
    }

    /// Signs `claims` with an arbitrary header (the header's `alg` names the signature alg
    /// unless `sign_alg` overrides it).
    pub(crate) fn mint_with(
        &self,
        key: &EncodingKey,
        sign_alg: Algorithm,
        header: &Value,
        claims: &Value,
    ) -> String {
        let message = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let sig = jsonwebtoken::crypto::sign(message.as_bytes(), key, sign_alg).unwrap();
        format!("{message}.{sig}")
    }

    /// A token signed by `kid` with `alg`, header `{alg, kid, typ: JWT}` plus claims.
    pub(crate) fn mint(&self, kid: &str, alg: Algorithm, claims: &Value) -> String {
        let header = json!({"alg": super::jwks::alg_name(alg), "kid": kid, "typ": "JWT"});
        self.mint_with(&self.encoding_key(kid), alg, &header, claims)
    }
}

/// A loopback HTTP server for JWKS and discovery documents.
pub(crate) struct JwksServer {
    pub base: String,
    pub jwks: Arc<Mutex<String>>,
    pub discovery: Arc<Mutex<String>>,
    pub fail: Arc<AtomicBool>,
    pub hits: Arc<AtomicUsize>,
}

impl JwksServer {
    pub(crate) async fn start(jwks: String) -> JwksServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let server = JwksServer {
            base,
            jwks: Arc::new(Mutex::new(jwks)),
            discovery: Arc::new(Mutex::new(String::new())),
            fail: Arc::new(AtomicBool::new(false)),
            hits: Arc::new(AtomicUsize::new(0)),
        };
        let (body, disc, fail, hits) = (
            server.jwks.clone(),
            server.discovery.clone(),
            server.fail.clone(),
            server.hits.clone(),
        );
        tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                let (body, disc, fail, hits) =
                    (body.clone(), disc.clone(), fail.clone(), hits.clone());
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 1024];
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 16 * 1024 {
                        match sock.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    hits.fetch_add(1, Ordering::SeqCst);
                    let request = String::from_utf8_lossy(&buf);
                    let (status, text) = if fail.load(Ordering::SeqCst) {
                        ("500 Internal Server Error", String::new())
                    } else if request.starts_with("GET /.well-known/openid-configuration") {
                        ("200 OK", disc.lock().unwrap().clone())
                    } else {
                        ("200 OK", body.lock().unwrap().clone())
                    };
                    let resp = format!(
                        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{text}",
                        text.len()
                    );
                    let _ = sock.write_all(resp.as_bytes()).await;
                });
            }
        });
        server
    }

    pub(crate) fn jwks_url(&self) -> String {
        format!("{}/jwks", self.base)
    }

    pub(crate) fn set_jwks(&self, jwks: String) {
        *self.jwks.lock().unwrap() = jwks;
    }

    pub(crate) fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

/// A header map of `(name, value)` pairs, in order (repeated names kept).
pub fn headers(pairs: &[(&str, &str)]) -> http::HeaderMap {
    let mut h = http::HeaderMap::new();
    for (k, v) in pairs {
        h.append(
            http::header::HeaderName::from_bytes(k.as_bytes()).expect("header name"),
            http::HeaderValue::from_str(v).expect("header value"),
        );
    }
    h
}
