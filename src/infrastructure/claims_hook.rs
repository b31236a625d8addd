//! The claims hook over HTTP: a POST to `CLAIMS_HOOK_URL`, signed by the Standard Webhooks
//! scheme (<https://www.standardwebhooks.com/>, "Signature scheme"): the headers
//! `webhook-id`, `webhook-timestamp` and `webhook-signature: v1,<base64 HMAC-SHA256 of
//! "{id}.{timestamp}.{body}">`, keyed with the bytes of the `whsec_` secret. The receiver
//! verifies it with any Standard Webhooks library (npm, PyPI, crates.io `standardwebhooks`) and
//! refuses stale timestamps, so a captured request cannot be replayed to it later.
//!
//! The client follows no redirect (a 3xx is a failure: following one is a way to make this
//! service call where an attacker points it), waits `timeout` at most for the whole exchange,
//! and reads at most [`MAX_ANSWER_BYTES`].

use std::time::Duration;

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::application::ports::{ClaimsHook, ClaimsHookRequest, CustomClaims, HookError};

/// The most of an answer that is read: far above what the claims may add (1 KB), so an answer
/// a little too large is refused for its claims, and a huge one is not read to the end.
pub const MAX_ANSWER_BYTES: usize = 16 * 1024;

/// Where the hook is and how it is called.
pub struct HookSettings {
    pub url: reqwest::Url,
    /// The `whsec_` secret's bytes.
    pub secret: Zeroizing<Vec<u8>>,
    pub timeout: Duration,
}

/// Why a hook secret was refused.
#[derive(Debug, thiserror::Error)]
#[error("CLAIMS_HOOK_SECRET must be `whsec_` followed by base64 of at least 24 random bytes")]
pub struct BadHookSecret;

/// The bytes of a Standard Webhooks secret, `whsec_<base64>`.
pub fn parse_hook_secret(text: &str) -> Result<Zeroizing<Vec<u8>>, BadHookSecret> {
    let encoded = text.strip_prefix("whsec_").ok_or(BadHookSecret)?;
    let bytes = Zeroizing::new(STANDARD.decode(encoded).map_err(|_| BadHookSecret)?);
    if bytes.len() < 24 {
        return Err(BadHookSecret);
    }
    Ok(bytes)
}

/// The HTTP adapter of the `ClaimsHook` port.
pub struct HttpClaimsHook {
    client: reqwest::Client,
    url: reqwest::Url,
    secret: Zeroizing<Vec<u8>>,
    timeout: Duration,
}

impl HttpClaimsHook {
    pub fn new(settings: HookSettings) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(settings.timeout)
            .timeout(settings.timeout)
            .user_agent(concat!("authgraph/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            client,
            url: settings.url,
            secret: settings.secret,
            timeout: settings.timeout,
        })
    }

    async fn call(&self, body: Vec<u8>) -> Result<CustomClaims, HookError> {
        let id = format!("msg_{}", uuid::Uuid::now_v7().simple());
        let timestamp = chrono::Utc::now().timestamp().to_string();
        let signature = sign(&self.secret, &id, &timestamp, &body)?;
        let mut response = self
            .client
            .post(self.url.clone())
            .header("content-type", "application/json")
            .header("webhook-id", &id)
            .header("webhook-timestamp", &timestamp)
            .header("webhook-signature", signature)
            .body(body)
            .send()
            .await
            .map_err(|e| {
                if e.is_timeout() {
                    HookError::Timeout
                } else {
                    HookError::Unreachable(without_url(&e))
                }
            })?;
        if !response.status().is_success() {
            return Err(HookError::Status(response.status().as_u16()));
        }
        if response
            .content_length()
            .is_some_and(|length| length > MAX_ANSWER_BYTES as u64)
        {
            return Err(HookError::TooLarge);
        }
        let mut answer = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| {
            if e.is_timeout() {
                HookError::Timeout
            } else {
                HookError::Unreachable(without_url(&e))
            }
        })? {
            if answer.len() + chunk.len() > MAX_ANSWER_BYTES {
                return Err(HookError::TooLarge);
            }
            answer.extend_from_slice(&chunk);
        }
        let answer: Value = serde_json::from_slice(&answer)
            .map_err(|_| HookError::Invalid("the answer is not JSON".into()))?;
        match answer.get("claims") {
            Some(Value::Object(claims)) => Ok(claims.clone()),
            None | Some(Value::Null) => Ok(CustomClaims::new()),
            Some(_) => Err(HookError::Invalid("`claims` is not an object".into())),
        }
    }
}

/// A reqwest error's message without the URL, which may carry credentials in its query.
fn without_url(error: &reqwest::Error) -> String {
    let mut error = error.to_string();
    if let Some(at) = error.find(" for url") {
        error.truncate(at);
    }
    error
}

/// The `webhook-signature` header of `body` (Standard Webhooks, version 1).
pub fn sign(secret: &[u8], id: &str, timestamp: &str, body: &[u8]) -> Result<String, HookError> {
    // HMAC takes a key of any length: this never fails.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret)
        .map_err(|_| HookError::Invalid("the hook secret is unusable".into()))?;
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    Ok(format!(
        "v1,{}",
        STANDARD.encode(mac.finalize().into_bytes())
    ))
}

/// The request body: a Standard Webhooks event (`type`, `timestamp`, `data`).
pub fn payload(request: &ClaimsHookRequest) -> Value {
    json!({
        "type": "token.claims",
        "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "data": {
            "event": request.event.as_str(),
            "user": {
                "id": request.user_id.to_string(),
                "email": request.email,
                "role": request.role.as_str(),
            },
            "session": {
                "id": request.session_id.to_string(),
                "auth_time": request.authenticated.at.timestamp(),
            },
            "amr": request.authenticated.methods.amr(),
        },
    })
}

#[async_trait]
impl ClaimsHook for HttpClaimsHook {
    async fn claims(&self, request: &ClaimsHookRequest) -> Result<CustomClaims, HookError> {
        let body =
            serde_json::to_vec(&payload(request)).map_err(|e| HookError::Invalid(e.to_string()))?;
        // The client's timeout covers each attempt; this one the whole exchange, body included.
        tokio::time::timeout(self.timeout, self.call(body))
            .await
            .map_err(|_| HookError::Timeout)?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks specification's reference implementations (their
    /// test suites sign this message with this secret).
    #[test]
    fn signs_as_the_reference_implementations_do() {
        let secret = parse_hook_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let signature = sign(
            &secret,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            "1614265330",
            br#"{"test": 2432232314}"#,
        )
        .unwrap();
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn a_secret_must_be_a_whsec_of_enough_bytes() {
        assert!(parse_hook_secret("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_err());
        assert!(parse_hook_secret("whsec_not base64!").is_err());
        assert!(parse_hook_secret("whsec_c2hvcnQ=").is_err());
    }
}
