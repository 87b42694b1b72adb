//! A local stand-in for a Kubernetes cluster's service-account issuer: an
//! ES256 key pair made for the test, its public key in PEM for bao's `jwt`
//! method (`jwt_validation_pubkeys`), and tokens shaped like projected
//! service-account tokens, signed with it.

#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test support"
)]

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};

/// The issuer and audience a cluster's API server puts in its tokens.
pub const ISSUER: &str = "https://kubernetes.default.svc.cluster.local";
pub const AUDIENCE: &str = "https://kubernetes.default.svc";

/// A signing key pair of a pretend cluster.
pub struct ClusterIssuer {
    key: EcdsaKeyPair,
    rng: SystemRandom,
}

impl ClusterIssuer {
    pub fn new() -> Self {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        Self { key, rng }
    }

    /// The public key as a PEM `PUBLIC KEY` (SubjectPublicKeyInfo).
    pub fn public_key_pem(&self) -> String {
        // SPKI header for an id-ecPublicKey on prime256v1, then the
        // uncompressed point ring returns.
        let mut der = vec![
            0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06,
            0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
        ];
        der.extend_from_slice(self.key.public_key().as_ref());
        let b64 = STANDARD.encode(der);
        let lines: Vec<&str> = b64
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
            lines.join("\n")
        )
    }

    /// A service-account token for `namespace/name`, valid for ten minutes.
    pub fn service_account_token(&self, namespace: &str, name: &str) -> String {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let header = serde_json::json!({"alg": "ES256", "kid": "tyrum-test", "typ": "JWT"});
        let claims = serde_json::json!({
            "aud": [AUDIENCE],
            "exp": now + 600,
            "iat": now,
            "nbf": now,
            "iss": ISSUER,
            "kubernetes.io": {
                "namespace": namespace,
                "pod": {"name": format!("{name}-0"), "uid": "4b1f0c7e-0000-4000-8000-000000000001"},
                "serviceaccount": {"name": name, "uid": "4b1f0c7e-0000-4000-8000-000000000002"},
            },
            "sub": format!("system:serviceaccount:{namespace}:{name}"),
        });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = self.key.sign(&self.rng, signing_input.as_bytes()).unwrap();
        format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature.as_ref())
        )
    }
}
