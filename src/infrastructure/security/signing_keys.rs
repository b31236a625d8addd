//! The keys that sign access tokens: an HMAC secret (HS256), which only this service may hold,
//! or an asymmetric pair, ES256 (P-256) or EdDSA (Ed25519), whose public half any other
//! service can fetch as a JWK (RFC 7517) and verify tokens with, without being able to mint
//! them.
//!
//! A key's `kid` is derived from the key itself (for a public key, its RFC 7638 thumbprint), so
//! there is nothing extra to configure and two keys never share one. Each `kid` is bound to
//! exactly one algorithm: a token is verified only with the algorithm of the key its `kid`
//! names, whatever its header claims (no algorithm confusion).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use clap::ValueEnum;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};

use crate::application::ports::PublishedKey;
use p256::elliptic_curve::sec1::ToEncodedPoint;
use sha2::{Digest, Sha256};

/// How access tokens are signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum JwtAlgorithm {
    /// Ed25519: small, fast, no nonce to get wrong.
    #[value(name = "EdDSA")]
    EdDsa,
    /// ECDSA on P-256: verified by every JWT library and API gateway.
    #[value(name = "ES256")]
    Es256,
    /// HMAC-SHA256 with a shared secret: only this service can verify (and mint) tokens.
    #[value(name = "HS256")]
    Hs256,
}

impl JwtAlgorithm {
    pub fn name(self) -> &'static str {
        match self {
            Self::EdDsa => "EdDSA",
            Self::Es256 => "ES256",
            Self::Hs256 => "HS256",
        }
    }

    fn jsonwebtoken(self) -> Algorithm {
        match self {
            Self::EdDsa => Algorithm::EdDSA,
            Self::Es256 => Algorithm::ES256,
            Self::Hs256 => Algorithm::HS256,
        }
    }

    /// Whether it has a public half to publish.
    pub fn is_asymmetric(self) -> bool {
        self != Self::Hs256
    }
}

/// The key new tokens are signed with.
pub struct SigningKey {
    pub kid: String,
    pub algorithm: JwtAlgorithm,
    pub(super) encoding: EncodingKey,
}

/// A key tokens are verified with: the current one or a previous one.
#[derive(Clone)]
pub struct VerifyingKey {
    pub kid: String,
    pub algorithm: JwtAlgorithm,
    pub(super) decoding: DecodingKey,
    /// The public JWK; `None` for an HMAC secret, which is never published.
    pub public: Option<PublishedKey>,
}

impl VerifyingKey {
    pub(super) fn jsonwebtoken_algorithm(&self) -> Algorithm {
        self.algorithm.jsonwebtoken()
    }
}

impl SigningKey {
    pub(super) fn jsonwebtoken_algorithm(&self) -> Algorithm {
        self.algorithm.jsonwebtoken()
    }
}

/// Why a key could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("is not a PEM private key of a supported kind (PKCS#8 or SEC1 P-256, PKCS#8 Ed25519)")]
    Unreadable,
    #[error("is not a PEM key of a supported kind (a P-256 or Ed25519 key, private or public)")]
    UnreadablePublic,
    #[error("is an {found} key, but JWT_ALGORITHM is {expected}")]
    Mismatch {
        expected: &'static str,
        found: &'static str,
    },
}

/// The signing key and its verifying half, from a private key in PEM for `algorithm`.
pub fn from_private_pem(
    pem: &str,
    algorithm: JwtAlgorithm,
) -> Result<(SigningKey, VerifyingKey), KeyError> {
    let pair = match private_pem(pem.trim())? {
        Private::P256(secret) => {
            let der = secret.to_pkcs8_der().map_err(|_| KeyError::Unreadable)?;
            let verifying = es256(&secret.public_key());
            (EncodingKey::from_ec_der(der.as_bytes()), verifying)
        }
        Private::Ed25519(signing) => {
            let der = signing.to_pkcs8_der().map_err(|_| KeyError::Unreadable)?;
            let verifying = eddsa(&signing.verifying_key());
            (EncodingKey::from_ed_der(der.as_bytes()), verifying)
        }
    };
    let (encoding, verifying) = pair;
    if verifying.algorithm != algorithm {
        return Err(KeyError::Mismatch {
            expected: algorithm.name(),
            found: verifying.algorithm.name(),
        });
    }
    Ok((
        SigningKey {
            kid: verifying.kid.clone(),
            algorithm,
            encoding,
        },
        verifying,
    ))
}

/// A previous key, to verify what it signed: a P-256 or Ed25519 key in PEM, private or public.
pub fn previous_from_pem(pem: &str) -> Result<VerifyingKey, KeyError> {
    let pem = pem.trim();
    if let Ok(private) = private_pem(pem) {
        return Ok(match private {
            Private::P256(secret) => es256(&secret.public_key()),
            Private::Ed25519(signing) => eddsa(&signing.verifying_key()),
        });
    }
    if let Ok(public) = p256::PublicKey::from_public_key_pem(pem) {
        return Ok(es256(&public));
    }
    ed25519_dalek::VerifyingKey::from_public_key_pem(pem)
        .map(|public| eddsa(&public))
        .map_err(|_| KeyError::UnreadablePublic)
}

/// The public name of an HMAC secret: the first 8 bytes of its SHA-256, in hex.
pub fn key_id(secret: &[u8]) -> String {
    Sha256::digest(secret)[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The keys of an HMAC secret (HS256): its `kid` is derived from it, and it is never published.
pub fn hmac(secret: &[u8]) -> (SigningKey, VerifyingKey) {
    let kid = key_id(secret);
    (
        SigningKey {
            kid: kid.clone(),
            algorithm: JwtAlgorithm::Hs256,
            encoding: EncodingKey::from_secret(secret),
        },
        VerifyingKey {
            kid,
            algorithm: JwtAlgorithm::Hs256,
            decoding: DecodingKey::from_secret(secret),
            public: None,
        },
    )
}

/// A new private key for `algorithm` in PKCS#8 PEM (what development generates once); `None`
/// for HS256, which has no key pair.
pub fn generate_pem(algorithm: JwtAlgorithm) -> Result<Option<String>, getrandom::Error> {
    if !algorithm.is_asymmetric() {
        return Ok(None);
    }
    loop {
        let mut bytes = zeroize::Zeroizing::new([0u8; 32]);
        getrandom::fill(bytes.as_mut())?;
        let pem = match algorithm {
            JwtAlgorithm::Es256 => p256::SecretKey::from_slice(bytes.as_ref())
                .ok()
                .and_then(|key| key.to_pkcs8_pem(Default::default()).ok()),
            _ => ed25519_dalek::SigningKey::from_bytes(&bytes)
                .to_pkcs8_pem(Default::default())
                .ok(),
        };
        // A P-256 scalar out of range (odds of about 2^-32) draws again.
        if let Some(pem) = pem {
            return Ok(Some(pem.to_string()));
        }
    }
}

/// The PEM blocks of a text holding several keys, one after the other.
pub fn pem_blocks(text: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines().map(str::trim) {
        if line.starts_with("-----BEGIN ") {
            current = Some(String::new());
        }
        if let Some(block) = current.as_mut() {
            block.push_str(line);
            block.push('\n');
            if line.starts_with("-----END ") {
                blocks.extend(current.take());
            }
        }
    }
    blocks
}

enum Private {
    P256(p256::SecretKey),
    Ed25519(ed25519_dalek::SigningKey),
}

fn private_pem(pem: &str) -> Result<Private, KeyError> {
    if let Ok(secret) = p256::SecretKey::from_pkcs8_pem(pem) {
        return Ok(Private::P256(secret));
    }
    // `openssl ecparam -genkey` writes SEC1 ("EC PRIVATE KEY").
    if let Ok(secret) = p256::SecretKey::from_sec1_pem(pem) {
        return Ok(Private::P256(secret));
    }
    ed25519_dalek::SigningKey::from_pkcs8_pem(pem)
        .map(Private::Ed25519)
        .map_err(|_| KeyError::Unreadable)
}

fn es256(public: &p256::PublicKey) -> VerifyingKey {
    let point = public.to_encoded_point(false);
    let x = URL_SAFE_NO_PAD.encode(point.x().map(|x| &x[..]).unwrap_or_default());
    let y = URL_SAFE_NO_PAD.encode(point.y().map(|y| &y[..]).unwrap_or_default());
    // RFC 7638: the required members, in lexicographic order, no spaces.
    let kid = thumbprint(&format!(
        r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#
    ));
    VerifyingKey {
        decoding: DecodingKey::from_ec_components(&x, &y)
            .expect("the coordinates of a valid P-256 point"),
        public: Some(PublishedKey {
            kty: "EC",
            crv: "P-256",
            x,
            y: Some(y),
            kid: kid.clone(),
            alg: "ES256",
        }),
        kid,
        algorithm: JwtAlgorithm::Es256,
    }
}

fn eddsa(public: &ed25519_dalek::VerifyingKey) -> VerifyingKey {
    let x = URL_SAFE_NO_PAD.encode(public.as_bytes());
    let kid = thumbprint(&format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#));
    VerifyingKey {
        decoding: DecodingKey::from_ed_components(&x).expect("an Ed25519 public key"),
        public: Some(PublishedKey {
            kty: "OKP",
            crv: "Ed25519",
            x,
            y: None,
            kid: kid.clone(),
            alg: "EdDSA",
        }),
        kid,
        algorithm: JwtAlgorithm::EdDsa,
    }
}

fn thumbprint(canonical_jwk: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical_jwk.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_read_back_with_a_stable_thumbprint_kid() {
        for algorithm in [JwtAlgorithm::Es256, JwtAlgorithm::EdDsa] {
            let pem = generate_pem(algorithm).unwrap().unwrap();
            assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"), "{pem}");
            let (signing, verifying) = from_private_pem(&pem, algorithm).unwrap();
            assert_eq!(signing.kid, verifying.kid);
            assert_eq!(signing.kid.len(), 43, "a base64url SHA-256");
            let again = previous_from_pem(&pem).unwrap();
            assert_eq!(again.kid, verifying.kid);
            assert_eq!(again.public, verifying.public);
            let other =
                from_private_pem(&generate_pem(algorithm).unwrap().unwrap(), algorithm).unwrap();
            assert_ne!(other.0.kid, signing.kid);
        }
    }

    #[test]
    fn a_key_of_another_algorithm_is_refused() {
        let pem = generate_pem(JwtAlgorithm::EdDsa).unwrap().unwrap();
        assert_eq!(
            from_private_pem(&pem, JwtAlgorithm::Es256).err(),
            Some(KeyError::Mismatch {
                expected: "ES256",
                found: "EdDSA"
            })
        );
        assert_eq!(
            from_private_pem("not a key", JwtAlgorithm::Es256).err(),
            Some(KeyError::Unreadable)
        );
    }

    #[test]
    fn the_rfc_8037_ed25519_example_has_its_published_thumbprint() {
        // RFC 8037 appendix A.1-A.3: the public key and its RFC 7638 thumbprint.
        let public = URL_SAFE_NO_PAD
            .decode("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo")
            .unwrap();
        let key = ed25519_dalek::VerifyingKey::from_bytes(&public.try_into().unwrap()).unwrap();
        assert_eq!(
            eddsa(&key).kid,
            "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
        );
    }

    #[test]
    fn several_pem_blocks_are_split_and_hmac_keys_are_never_published() {
        let a = generate_pem(JwtAlgorithm::Es256).unwrap().unwrap();
        let b = generate_pem(JwtAlgorithm::EdDsa).unwrap().unwrap();
        let blocks = pem_blocks(&format!("{a}\n{b}"));
        assert_eq!(blocks.len(), 2);
        assert!(previous_from_pem(&blocks[1]).is_ok());
        let (_, verifying) = hmac(b"0123456789abcdef0123456789abcdef");
        assert!(verifying.public.is_none());
    }
}
