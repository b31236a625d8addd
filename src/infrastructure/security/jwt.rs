//! Access tokens: signed with the key of `signing_keys.rs` (HS256, ES256 or EdDSA), each key's
//! algorithm pinned, and every registered claim the service relies on (`iss`, `aud`, `sub`,
//! `iat`, `exp`) present and right.
//!
//! Expiry is checked against the time the caller passes (the `Clock` port's), not against
//! the system clock jsonwebtoken would read, so the service and its tests agree on what time
//! it is.
//!
//! Keys rotate without signing anyone out: tokens carry the `kid` of the key that signed them;
//! new tokens are signed with the current key, and tokens signed with a previous key still
//! verify until they expire. A token is verified only by the key its `kid` names, with that
//! key's algorithm: a token whose header names another algorithm (an HS256 token "signed" with
//! the public key as its secret, `none`) is refused.

use std::time::Duration;

use chrono::{DateTime, Utc};
use jsonwebtoken::{Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::application::claims::REGISTERED_CLAIMS;
use crate::application::ports::{
    AccessClaims, AccessTokens, CustomClaims, IssuedAccessToken, PublishedKey, PublishedKeys,
    TokenError,
};
use crate::domain::{AuthMethods, Authentication, SessionId, UserId};

use super::signing_keys::{self, SigningKey, VerifyingKey};
use super::verified_tokens::VerifiedTokens;

/// Tolerates small clock differences between instances, not stale tokens.
const LEEWAY_SECONDS: i64 = 30;

/// What access tokens are signed with and say about themselves.
pub struct JwtSettings {
    /// Signs new tokens.
    pub signing: SigningKey,
    /// Verifies tokens: the signing key's own half first, then retired keys whose tokens are
    /// still accepted.
    pub verifying: Vec<VerifyingKey>,
    pub issuer: String,
    pub audience: String,
    pub lifetime: Duration,
    /// Verified tokens remembered (ES256 and EdDSA only; see `verified_tokens`); 0 for none.
    pub remembered: usize,
}

impl JwtSettings {
    /// HS256 with `secret`, still accepting tokens of `previous` secrets.
    pub fn hmac(secret: &[u8], previous: &[&[u8]]) -> (SigningKey, Vec<VerifyingKey>) {
        let (signing, verifying) = signing_keys::hmac(secret);
        let previous = previous.iter().map(|s| signing_keys::hmac(s).1);
        (
            signing,
            std::iter::once(verifying).chain(previous).collect(),
        )
    }
}

/// The JWT adapter of the `AccessTokens` port.
pub struct JwtTokens {
    signing: SigningKey,
    /// Each key with the validation of its own algorithm: everything but the expiry, which
    /// `verify` checks against the time it is given.
    verifying: Vec<(VerifyingKey, Validation)>,
    issuer: String,
    audience: String,
    lifetime: Duration,
    verified: Option<VerifiedTokens>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims<'a> {
    iss: String,
    aud: String,
    sub: Uuid,
    /// The session the token belongs to; checked on every request so revocation is immediate.
    sid: Uuid,
    iat: i64,
    exp: i64,
    /// When the session last proved its user (OpenID Connect's `auth_time`).
    #[serde(default)]
    auth_time: Option<i64>,
    /// How (RFC 8176): `["pwd"]` or `["pwd", "otp"]`.
    #[serde(default)]
    amr: Vec<String>,
    /// An engine's claims and the claims hook's, signed as given; never read back (this
    /// service reads the account and the session instead).
    #[serde(flatten, skip_deserializing)]
    custom: Option<&'a CustomClaims>,
}

impl JwtTokens {
    pub fn new(settings: JwtSettings) -> Self {
        let verifying = settings
            .verifying
            .into_iter()
            .map(|key| {
                let mut validation = Validation::new(key.jsonwebtoken_algorithm());
                validation.set_issuer(&[&settings.issuer]);
                validation.set_audience(&[&settings.audience]);
                // `exp` must still be present (and a number); only its comparison with the
                // time moves to `verify`.
                validation.set_required_spec_claims(&["iss", "aud", "sub", "iat", "exp"]);
                validation.validate_exp = false;
                (key, validation)
            })
            .collect();
        let asymmetric = settings.signing.algorithm.is_asymmetric();
        Self {
            signing: settings.signing,
            verifying,
            issuer: settings.issuer,
            audience: settings.audience,
            lifetime: settings.lifetime,
            verified: VerifiedTokens::new(if asymmetric { settings.remembered } else { 0 }),
        }
    }
}

impl PublishedKeys for JwtTokens {
    /// The public keys whose tokens verify: the current one first. Empty under HS256, whose
    /// secrets are never published.
    fn published_keys(&self) -> Vec<PublishedKey> {
        self.verifying
            .iter()
            .filter_map(|(key, _)| key.public.clone())
            .collect()
    }
}

impl AccessTokens for JwtTokens {
    fn issue(
        &self,
        claims: AccessClaims,
        custom: &CustomClaims,
        now: DateTime<Utc>,
    ) -> Result<IssuedAccessToken, TokenError> {
        // A custom claim named like a registered one would be written twice, and verifiers
        // disagree on which of two equal names wins.
        if custom
            .keys()
            .any(|name| REGISTERED_CLAIMS.contains(&name.as_str()))
        {
            return Err(TokenError::Invalid);
        }
        let iat = now.timestamp();
        let claims = Claims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: claims.user_id.as_uuid(),
            sid: claims.session_id.as_uuid(),
            iat,
            exp: iat.saturating_add_unsigned(self.lifetime.as_secs()),
            auth_time: Some(claims.authenticated.at.timestamp()),
            amr: claims
                .authenticated
                .methods
                .amr()
                .iter()
                .map(|m| (*m).to_owned())
                .collect(),
            custom: (!custom.is_empty()).then_some(custom),
        };
        let mut header = Header::new(self.signing.jsonwebtoken_algorithm());
        header.kid = Some(self.signing.kid.clone());
        let token = jsonwebtoken::encode(&header, &claims, &self.signing.encoding)
            .map_err(|_| TokenError::Invalid)?;
        Ok(IssuedAccessToken {
            token,
            expires_in: self.lifetime,
        })
    }

    fn verify(&self, token: &str, now: DateTime<Utc>) -> Result<AccessClaims, TokenError> {
        let expired = |exp: i64| exp < now.timestamp().saturating_sub(LEEWAY_SECONDS);
        if let Some((claims, exp)) = self.verified.as_ref().and_then(|v| v.get(token)) {
            return if expired(exp) {
                Err(TokenError::Expired)
            } else {
                Ok(claims)
            };
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Invalid)?;
        let kid = header.kid.ok_or(TokenError::Invalid)?;
        let (key, validation) = self
            .verifying
            .iter()
            .find(|(key, _)| key.kid == kid)
            .ok_or(TokenError::Invalid)?;
        // `validation` allows the key's own algorithm only.
        let data = jsonwebtoken::decode::<Claims>(token, &key.decoding, validation)
            .map_err(|_| TokenError::Invalid)?;
        let claims = data.claims;
        if expired(claims.exp) {
            return Err(TokenError::Expired);
        }
        let at = claims.auth_time.unwrap_or(claims.iat);
        let verified = AccessClaims {
            user_id: UserId::from_uuid(claims.sub),
            session_id: SessionId::from_uuid(claims.sid),
            authenticated: Authentication {
                at: DateTime::from_timestamp(at, 0).unwrap_or_default(),
                methods: AuthMethods::from_amr(&claims.amr),
            },
        };
        if let Some(remembered) = &self.verified {
            remembered.insert(token, verified, claims.exp);
        }
        Ok(verified)
    }
}

#[cfg(test)]
mod tests {
    use super::signing_keys::key_id;
    use super::*;
    use jsonwebtoken::{Algorithm, EncodingKey};

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";
    const OLD_SECRET: &[u8] = b"the secret we used before this one";

    fn tokens_with(secret: &[u8], previous: &[&[u8]]) -> JwtTokens {
        let (signing, verifying) = JwtSettings::hmac(secret, previous);
        JwtTokens::new(JwtSettings {
            signing,
            verifying,
            issuer: "authgraph".into(),
            audience: "authgraph".into(),
            lifetime: Duration::from_secs(900),
            remembered: 0,
        })
    }

    fn tokens() -> JwtTokens {
        tokens_with(SECRET, &[])
    }

    /// A time far from the system clock's, so a test passes only if `verify` uses the time it
    /// is given.
    fn now() -> DateTime<Utc> {
        chrono::TimeZone::with_ymd_and_hms(&Utc, 2030, 6, 1, 12, 0, 0).unwrap()
    }

    fn claims() -> AccessClaims {
        AccessClaims {
            user_id: UserId::generate(),
            session_id: SessionId::generate(),
            authenticated: Authentication {
                at: DateTime::from_timestamp(1_796_000_000, 0).unwrap(),
                methods: AuthMethods::PasswordAndOtp,
            },
        }
    }

    fn sign(claims: serde_json::Value, alg: Algorithm, secret: &[u8]) -> String {
        let mut header = Header::new(alg);
        header.kid = Some(key_id(SECRET));
        jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(secret)).unwrap()
    }

    fn valid_claims_json() -> serde_json::Value {
        let now = now().timestamp();
        serde_json::json!({
            "iss": "authgraph", "aud": "authgraph", "sub": Uuid::now_v7(), "sid": Uuid::now_v7(),
            "iat": now, "exp": now + 60,
        })
    }

    #[test]
    fn an_issued_token_verifies_to_the_same_claims() {
        let claims = claims();
        let issued = tokens().issue(claims, &CustomClaims::new(), now()).unwrap();
        assert_eq!(issued.expires_in, Duration::from_secs(900));
        assert_eq!(tokens().verify(&issued.token, now()), Ok(claims));
    }

    #[test]
    fn custom_claims_are_signed_beside_the_registered_ones_and_never_replace_them() {
        let claims = claims();
        let custom: CustomClaims = serde_json::from_value(serde_json::json!({
            "role": "app_user",
            "https://hasura.io/jwt/claims": {"x-hasura-default-role": "user"},
        }))
        .unwrap();
        let issued = tokens().issue(claims, &custom, now()).unwrap();
        let payload = issued.token.split('.').nth(1).unwrap();
        let payload: serde_json::Value = serde_json::from_slice(
            &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload)
                .unwrap(),
        )
        .unwrap();
        assert_eq!(payload["role"], "app_user");
        assert_eq!(
            payload["https://hasura.io/jwt/claims"]["x-hasura-default-role"],
            "user"
        );
        assert_eq!(payload["sub"], claims.user_id.to_string());
        assert_eq!(tokens().verify(&issued.token, now()), Ok(claims));

        for name in REGISTERED_CLAIMS {
            let mut custom = CustomClaims::new();
            custom.insert(name.into(), "forged".into());
            assert_eq!(
                tokens().issue(claims, &custom, now()).unwrap_err(),
                TokenError::Invalid,
                "{name}"
            );
        }
    }

    #[test]
    fn a_token_names_the_key_that_signed_it() {
        let issued = tokens()
            .issue(claims(), &CustomClaims::new(), now())
            .unwrap();
        let header = jsonwebtoken::decode_header(&issued.token).unwrap();
        assert_eq!(header.kid.as_deref(), Some(key_id(SECRET).as_str()));
        assert_eq!(key_id(SECRET).len(), 16);
        assert_ne!(key_id(SECRET), key_id(OLD_SECRET));
    }

    #[test]
    fn tokens_of_a_previous_key_verify_until_that_key_is_dropped() {
        let claims = claims();
        let old = tokens_with(OLD_SECRET, &[])
            .issue(claims, &CustomClaims::new(), now())
            .unwrap();
        assert_eq!(
            tokens_with(SECRET, &[OLD_SECRET]).verify(&old.token, now()),
            Ok(claims)
        );
        assert_eq!(
            tokens_with(SECRET, &[]).verify(&old.token, now()),
            Err(TokenError::Invalid)
        );
    }

    #[test]
    fn a_hand_made_token_with_valid_claims_verifies() {
        let token = sign(valid_claims_json(), Algorithm::HS256, SECRET);
        assert!(tokens().verify(&token, now()).is_ok());
    }

    #[test]
    fn an_expired_token_is_reported_as_expired() {
        let issued = tokens()
            .issue(
                claims(),
                &CustomClaims::new(),
                now() - chrono::Duration::hours(1),
            )
            .unwrap();
        assert_eq!(
            tokens().verify(&issued.token, now()),
            Err(TokenError::Expired)
        );
    }

    #[test]
    fn a_token_expires_thirty_seconds_of_leeway_after_its_exp() {
        let issued = tokens()
            .issue(claims(), &CustomClaims::new(), now())
            .unwrap();
        let exp = now() + chrono::Duration::seconds(900);
        for (at, expected) in [
            (exp, true),
            (exp + chrono::Duration::seconds(30), true),
            (exp + chrono::Duration::seconds(31), false),
        ] {
            let verified = tokens().verify(&issued.token, at);
            if expected {
                assert!(verified.is_ok(), "at exp + {}", at - exp);
            } else {
                assert_eq!(verified, Err(TokenError::Expired), "at exp + {}", at - exp);
            }
        }
    }

    #[test]
    fn tokens_signed_otherwise_or_for_someone_else_are_invalid() {
        let mut wrong_issuer = valid_claims_json();
        wrong_issuer["iss"] = "someone-else".into();
        let mut wrong_audience = valid_claims_json();
        wrong_audience["aud"] = "another-api".into();
        let mut no_session = valid_claims_json();
        no_session.as_object_mut().unwrap().remove("sid");
        let mut no_expiry = valid_claims_json();
        no_expiry.as_object_mut().unwrap().remove("exp");
        let mut unknown_kid = Header::new(Algorithm::HS256);
        unknown_kid.kid = Some("0000000000000000".into());
        let no_kid = Header::new(Algorithm::HS256);
        let with_header = |header: &Header| {
            jsonwebtoken::encode(
                header,
                &valid_claims_json(),
                &EncodingKey::from_secret(SECRET),
            )
            .unwrap()
        };

        for (case, token) in [
            (
                "forged signature",
                sign(
                    valid_claims_json(),
                    Algorithm::HS256,
                    b"another secret of enough length!",
                ),
            ),
            (
                "other algorithm",
                sign(valid_claims_json(), Algorithm::HS512, SECRET),
            ),
            ("wrong issuer", sign(wrong_issuer, Algorithm::HS256, SECRET)),
            (
                "wrong audience",
                sign(wrong_audience, Algorithm::HS256, SECRET),
            ),
            ("no session id", sign(no_session, Algorithm::HS256, SECRET)),
            ("no expiry", sign(no_expiry, Algorithm::HS256, SECRET)),
            ("unknown kid", with_header(&unknown_kid)),
            ("no kid", with_header(&no_kid)),
            ("garbage", "not.a.jwt".to_owned()),
            ("empty", String::new()),
        ] {
            assert_eq!(
                tokens().verify(&token, now()),
                Err(TokenError::Invalid),
                "{case}"
            );
        }
    }

    #[test]
    fn an_unsigned_token_is_invalid() {
        let header = base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            format!(r#"{{"alg":"none","typ":"JWT","kid":"{}"}}"#, key_id(SECRET)),
        );
        let body = base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            valid_claims_json().to_string(),
        );
        let token = format!("{header}.{body}.");
        assert_eq!(tokens().verify(&token, now()), Err(TokenError::Invalid));
    }

    fn es256(remembered: usize) -> JwtTokens {
        let pem = signing_keys::generate_pem(signing_keys::JwtAlgorithm::Es256)
            .unwrap()
            .unwrap();
        let (signing, verifying) =
            signing_keys::from_private_pem(&pem, signing_keys::JwtAlgorithm::Es256).unwrap();
        JwtTokens::new(JwtSettings {
            signing,
            verifying: vec![verifying],
            issuer: "authgraph".into(),
            audience: "authgraph".into(),
            lifetime: Duration::from_secs(900),
            remembered,
        })
    }

    #[test]
    fn a_remembered_token_still_expires_and_a_forged_one_is_never_remembered() {
        let tokens = es256(10);
        let claims = claims();
        let issued = tokens.issue(claims, &CustomClaims::new(), now()).unwrap();
        assert_eq!(tokens.verify(&issued.token, now()), Ok(claims));
        // Remembered now; the same answer without the signature check...
        assert_eq!(tokens.verify(&issued.token, now()), Ok(claims));
        // ...but never past its expiry.
        let later = now() + chrono::Duration::minutes(20);
        assert_eq!(
            tokens.verify(&issued.token, later),
            Err(TokenError::Expired)
        );
        // A token whose signature fails is refused every time.
        let (head, _) = issued.token.rsplit_once('.').unwrap();
        let forged = format!("{head}.AAAA");
        for _ in 0..2 {
            assert_eq!(tokens.verify(&forged, now()), Err(TokenError::Invalid));
        }
    }

    #[test]
    fn only_asymmetric_signatures_are_worth_remembering() {
        assert!(es256(10).verified.is_some());
        assert!(es256(0).verified.is_none());
        let (signing, verifying) = JwtSettings::hmac(SECRET, &[]);
        let hmac = JwtTokens::new(JwtSettings {
            signing,
            verifying,
            issuer: "authgraph".into(),
            audience: "authgraph".into(),
            lifetime: Duration::from_secs(900),
            remembered: 10,
        });
        assert!(hmac.verified.is_none());
    }
}
