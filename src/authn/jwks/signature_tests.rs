//! Signatures made by another implementation (`jsonwebtoken`'s RustCrypto signers: `rsa`,
//! `p256`/`p384`, `ed25519-dalek`, `hmac`) are verified here by `ring`; every algorithm, and
//! every way a check must fail.

#![allow(clippy::unwrap_used)]

use super::*;
use crate::authn::testing::idp;
use jsonwebtoken::EncodingKey;
use ring::rand::SystemRandom;
use ring::signature::KeyPair;
use rsa::traits::PublicKeyParts;

const INPUT: &[u8] = b"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9";
const SECRET: &[u8] = b"a-shared-secret-of-thirty-two-by";

fn sign(key: &EncodingKey, alg: Algorithm) -> String {
    jsonwebtoken::crypto::sign(INPUT, key, alg).unwrap()
}

fn rsa_key(kid: &str) -> VerifyKey {
    let jwk = idp().rsa_jwk(kid);
    let b = |f: &str| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(jwk[f].as_str().unwrap())
            .unwrap()
    };
    VerifyKey::Rsa {
        n: unsigned(&b("n")),
        e: unsigned(&b("e")),
    }
}

/// A fresh EC key pair made by ring: its PKCS#8 document (signed with by RustCrypto) and the
/// public key as ring would verify it.
fn ec_pair(alg: &'static sig::EcdsaSigningAlgorithm) -> (EncodingKey, VerifyKey) {
    let rng = SystemRandom::new();
    let pkcs8 = sig::EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
    let pair = sig::EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).unwrap();
    let point = pair.public_key().as_ref().to_vec();
    (
        EncodingKey::from_ec_der(pkcs8.as_ref()),
        VerifyKey::Ec(point),
    )
}

fn ed_pair() -> (EncodingKey, VerifyKey) {
    let pkcs8 = sig::Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
    let pair = sig::Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
    (
        EncodingKey::from_ed_der(pkcs8.as_ref()),
        VerifyKey::Ed25519(pair.public_key().as_ref().to_vec()),
    )
}

/// Every failure a good signature must show: another input, one changed signature byte, a
/// truncated or non-base64url signature.
fn assert_only_exact_signature_verifies(key: &VerifyKey, alg: Algorithm, signature: &str) {
    assert!(key.verify(alg, INPUT, signature), "{alg:?}");
    assert!(!key.verify(alg, b"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJib2IifQ", signature));
    let mut bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(signature)
        .unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 1;
    let flipped = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&bytes);
    assert!(!key.verify(alg, INPUT, &flipped), "{alg:?} flipped");
    assert!(!key.verify(alg, INPUT, &signature[..signature.len() - 4]));
    assert!(!key.verify(alg, INPUT, &format!("{signature}=")));
    assert!(!key.verify(alg, INPUT, ""));
}

#[test]
fn rsa_pkcs1_and_pss_signatures_of_every_hash_verify_and_nothing_else_does() {
    let key = rsa_key("rsa-a");
    let signer = idp().encoding_key("rsa-a");
    use Algorithm::*;
    for alg in [RS256, RS384, RS512, PS256, PS384, PS512] {
        let signature = sign(&signer, alg);
        assert_only_exact_signature_verifies(&key, alg, &signature);
        // Another RSA key, and the same key under another algorithm of its family.
        assert!(!rsa_key("rsa-b").verify(alg, INPUT, &signature), "{alg:?}");
        let other = if alg == RS256 { PS256 } else { RS256 };
        assert!(
            !key.verify(other, INPUT, &signature),
            "{alg:?} as {other:?}"
        );
    }
}

#[test]
fn a_jwk_modulus_with_a_leading_zero_byte_verifies_once_made_unsigned() {
    let public = idp_rsa().to_public_key();
    let mut n = vec![0u8];
    n.extend(public.n().to_bytes_be());
    let key = VerifyKey::Rsa {
        n: unsigned(&n),
        e: unsigned(&public.e().to_bytes_be()),
    };
    let signature = sign(&idp().encoding_key("rsa-a"), Algorithm::RS256);
    assert!(key.verify(Algorithm::RS256, INPUT, &signature));
    let padded = VerifyKey::Rsa {
        n,
        e: public.e().to_bytes_be(),
    };
    assert!(!padded.verify(Algorithm::RS256, INPUT, &signature));
}

fn idp_rsa() -> rsa::RsaPrivateKey {
    use rsa::pkcs8::DecodePrivateKey;
    rsa::RsaPrivateKey::from_pkcs8_pem(include_str!(
        "../../../tests/data/authn/TEST-ONLY-rsa-a.pem"
    ))
    .unwrap()
}

#[test]
fn ecdsa_p256_and_p384_signatures_verify_only_under_their_own_curve() {
    let (signer256, key256) = ec_pair(&sig::ECDSA_P256_SHA256_FIXED_SIGNING);
    let (signer384, key384) = ec_pair(&sig::ECDSA_P384_SHA384_FIXED_SIGNING);
    let es256 = sign(&signer256, Algorithm::ES256);
    let es384 = sign(&signer384, Algorithm::ES384);
    assert_only_exact_signature_verifies(&key256, Algorithm::ES256, &es256);
    assert_only_exact_signature_verifies(&key384, Algorithm::ES384, &es384);
    assert!(!key256.verify(Algorithm::ES384, INPUT, &es256));
    assert!(!key384.verify(Algorithm::ES256, INPUT, &es384));
    assert!(!key384.verify(Algorithm::ES384, INPUT, &es256));
    let (_, other256) = ec_pair(&sig::ECDSA_P256_SHA256_FIXED_SIGNING);
    assert!(!other256.verify(Algorithm::ES256, INPUT, &es256));
}

#[test]
fn ed25519_signatures_verify_as_eddsa_only() {
    let (signer, key) = ed_pair();
    let signature = sign(&signer, Algorithm::EdDSA);
    assert_only_exact_signature_verifies(&key, Algorithm::EdDSA, &signature);
    assert!(!ed_pair().1.verify(Algorithm::EdDSA, INPUT, &signature));
}

#[test]
fn hmac_tags_of_every_hash_verify_with_the_same_secret_only() {
    let key = VerifyKey::Hmac(SECRET.to_vec());
    let signer = EncodingKey::from_secret(SECRET);
    use Algorithm::*;
    for alg in [HS256, HS384, HS512] {
        let tag = sign(&signer, alg);
        assert_only_exact_signature_verifies(&key, alg, &tag);
        let other = VerifyKey::Hmac(b"another-secret-another-secret-xx".to_vec());
        assert!(!other.verify(alg, INPUT, &tag), "{alg:?}");
        let shorter = if alg == HS256 { HS384 } else { HS256 };
        assert!(!key.verify(shorter, INPUT, &tag), "{alg:?} as {shorter:?}");
    }
}

#[test]
fn a_key_never_verifies_an_algorithm_of_another_key_type() {
    // The algorithm-confusion attack: an HMAC tag keyed with the RSA public key's bytes must
    // not pass as RS256/HS256 under the RSA key, nor any family under another's key.
    let rsa = rsa_key("rsa-a");
    let VerifyKey::Rsa { n, .. } = &rsa else {
        unreachable!()
    };
    let confused = sign(&EncodingKey::from_secret(n), Algorithm::HS256);
    use Algorithm::*;
    for alg in [HS256, ES256, ES384, EdDSA] {
        assert!(!rsa.verify(alg, INPUT, &confused), "{alg:?}");
    }
    let (ec_signer, ec) = ec_pair(&sig::ECDSA_P256_SHA256_FIXED_SIGNING);
    let es256 = sign(&ec_signer, ES256);
    for alg in [RS256, PS256, HS256, EdDSA] {
        assert!(!ec.verify(alg, INPUT, &es256), "{alg:?}");
    }
    let (_, ed) = ed_pair();
    let hmac = VerifyKey::Hmac(SECRET.to_vec());
    let hs256 = sign(&EncodingKey::from_secret(SECRET), HS256);
    for alg in [RS256, ES256, EdDSA] {
        assert!(!hmac.verify(alg, INPUT, &hs256), "{alg:?}");
        assert!(!ed.verify(alg, INPUT, &hs256), "{alg:?}");
    }
}
