//! What social sign-in needs from the OpenID providers, implemented in
//! `infrastructure::oidc`: where to send a browser, and what the provider vouched for once it
//! came back. Nothing of the `openidconnect` crate shows here.

use std::fmt;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::domain::{ProviderId, VerifiedIdentity};

/// A provider as the sign-in page lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderInfo {
    pub id: ProviderId,
    /// What the button says ("Sign in with …").
    pub name: String,
}

/// Where to send the browser, and the secrets of that request, which stay on the server (in
/// the flow) until the browser comes back.
#[derive(Clone)]
pub struct AuthorizationRedirect {
    /// The provider's authorization endpoint with the request: `state`, `nonce`, the PKCE
    /// S256 challenge, the scopes and the redirect URI.
    pub url: String,
    /// The nonce the ID token must carry.
    pub nonce: String,
    /// The PKCE verifier whose challenge is in the URL.
    pub pkce_verifier: String,
}

impl fmt::Debug for AuthorizationRedirect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthorizationRedirect")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// What the provider sent back to the callback, besides `state` (which finds the flow).
#[derive(Clone)]
pub struct AuthorizationResponse {
    /// The authorization code.
    pub code: String,
    /// The RFC 9207 `iss` parameter, if the provider sent one.
    pub iss: Option<String>,
}

impl fmt::Debug for AuthorizationResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthorizationResponse")
            .field("iss", &self.iss)
            .finish_non_exhaustive()
    }
}

/// The secrets a flow kept for its return.
pub struct FlowSecrets<'a> {
    pub pkce_verifier: &'a str,
    pub nonce: &'a str,
}

/// Why a provider gave no verified identity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// No provider is configured with this id.
    #[error("no such provider")]
    UnknownProvider,
    /// The provider cannot be reached now, or answered something unusable (down, slow, a
    /// broken discovery document): the same request may work later. Details for the log.
    #[error("the provider is unavailable: {0}")]
    Unavailable(String),
    /// What came back failed a check (a foreign `iss`, a refused code or PKCE verifier, an ID
    /// token with a wrong signature, issuer, audience, nonce or expiry): a stale or forged
    /// response. Details for the log.
    #[error("the provider's response was refused: {0}")]
    Rejected(String),
}

/// The configured OpenID providers.
#[async_trait]
pub trait SocialProviders: Send + Sync {
    /// Every configured provider, in the configured order.
    fn list(&self) -> Vec<ProviderInfo>;
    /// A new authorization request to `provider` carrying `state`, with a fresh nonce and
    /// PKCE verifier.
    async fn authorization_redirect(
        &self,
        provider: &ProviderId,
        state: &str,
    ) -> Result<AuthorizationRedirect, ProviderError>;
    /// Checks a response that came back to the callback (the `iss` parameter), exchanges its
    /// code with the flow's PKCE verifier, and verifies the ID token (signature from the
    /// provider's keys, exact issuer, audience, expiry at `now`, the flow's nonce): who the
    /// provider says signed in.
    async fn verify(
        &self,
        provider: &ProviderId,
        response: &AuthorizationResponse,
        secrets: FlowSecrets<'_>,
        now: DateTime<Utc>,
    ) -> Result<VerifiedIdentity, ProviderError>;
}
