//! JWS signature verification (RFC 7515 §5.2, algorithms of RFC 7518 §3 and RFC 8037) with
//! `ring`. A key verifies only the algorithms of its type; anything else is a failed check.
//!
//! Why not `jsonwebtoken::crypto::verify`: with its `rust_crypto` backend an RS256 check
//! rebuilds the key's big integers and runs `rsa`'s generic modular exponentiation, ~220 µs
//! against ~25 µs here on the same machine (benches/RESULTS.md, issue 15) — the whole cost of
//! a token the verified-token cache has not seen.

use base64::Engine;
use jsonwebtoken::Algorithm;
use ring::{hmac, signature as sig};

/// A verification key in the form `ring` checks with.
pub(crate) enum VerifyKey {
    /// RSA: big-endian modulus and public exponent, without leading zero bytes (`ring`
    /// rejects them; a JWK's `n` may carry one).
    Rsa { n: Vec<u8>, e: Vec<u8> },
    /// EC P-256 or P-384: the uncompressed SEC1 point `04 ‖ x ‖ y`.
    Ec(Vec<u8>),
    /// Ed25519: the 32-byte public key.
    Ed25519(Vec<u8>),
    /// HMAC: the shared secret (configured, never from a fetched set).
    Hmac(Vec<u8>),
}

/// `bytes` without its leading zero bytes.
pub(crate) fn unsigned(bytes: &[u8]) -> Vec<u8> {
    let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    bytes[first..].to_vec()
}

impl VerifyKey {
    /// An uncompressed EC point from its coordinates.
    pub(crate) fn ec(x: &[u8], y: &[u8]) -> VerifyKey {
        let mut point = Vec::with_capacity(1 + x.len() + y.len());
        point.push(0x04);
        point.extend_from_slice(x);
        point.extend_from_slice(y);
        VerifyKey::Ec(point)
    }

    /// Whether `signature` (base64url, unpadded, as in a compact JWS) is `alg`'s signature of
    /// `signing_input` under this key. A malformed signature, a key of another type than
    /// `alg` needs, or a key `ring` refuses (RSA modulus outside 2048–8192 bits, a point
    /// off the curve) is `false`.
    pub(crate) fn verify(&self, alg: Algorithm, signing_input: &[u8], signature: &str) -> bool {
        let Ok(signature) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(signature)
        else {
            return false;
        };
        match self {
            VerifyKey::Rsa { n, e } => rsa_params(alg).is_some_and(|params| {
                sig::RsaPublicKeyComponents { n, e }
                    .verify(params, signing_input, &signature)
                    .is_ok()
            }),
            VerifyKey::Ec(point) => {
                let params: &'static dyn sig::VerificationAlgorithm = match alg {
                    Algorithm::ES256 => &sig::ECDSA_P256_SHA256_FIXED,
                    Algorithm::ES384 => &sig::ECDSA_P384_SHA384_FIXED,
                    _ => return false,
                };
                sig::UnparsedPublicKey::new(params, point)
                    .verify(signing_input, &signature)
                    .is_ok()
            }
            VerifyKey::Ed25519(key) => {
                alg == Algorithm::EdDSA
                    && sig::UnparsedPublicKey::new(&sig::ED25519, key)
                        .verify(signing_input, &signature)
                        .is_ok()
            }
            VerifyKey::Hmac(secret) => {
                let mac = match alg {
                    Algorithm::HS256 => hmac::HMAC_SHA256,
                    Algorithm::HS384 => hmac::HMAC_SHA384,
                    Algorithm::HS512 => hmac::HMAC_SHA512,
                    _ => return false,
                };
                // Constant-time comparison of the tag (ring::hmac::verify).
                hmac::verify(&hmac::Key::new(mac, secret), signing_input, &signature).is_ok()
            }
        }
    }
}

fn rsa_params(alg: Algorithm) -> Option<&'static sig::RsaParameters> {
    Some(match alg {
        Algorithm::RS256 => &sig::RSA_PKCS1_2048_8192_SHA256,
        Algorithm::RS384 => &sig::RSA_PKCS1_2048_8192_SHA384,
        Algorithm::RS512 => &sig::RSA_PKCS1_2048_8192_SHA512,
        Algorithm::PS256 => &sig::RSA_PSS_2048_8192_SHA256,
        Algorithm::PS384 => &sig::RSA_PSS_2048_8192_SHA384,
        Algorithm::PS512 => &sig::RSA_PSS_2048_8192_SHA512,
        _ => return None,
    })
}

#[cfg(test)]
#[path = "signature_tests.rs"]
mod tests;
