//! OpenID Connect providers (the `SocialProviders` port), over the `openidconnect` crate.
//!
//! Each provider is discovered from `{issuer}/.well-known/openid-configuration` on first use
//! and again once its metadata is older than `metadata_ttl` (and at most once a minute when an
//! ID token names a key the provider's key set does not have: a key rotation). The document
//! must name exactly the configured issuer (OIDC Discovery §4.3): no trailing-slash or case
//! variant passes. If a refresh fails, the last metadata keeps serving; a provider that never
//! answered is retried at most every `retry_after_failure`, so a provider that is down costs
//! its own sign-ins one timeout at a time and no one else anything.
//!
//! The outbound side is closed: the HTTP client follows no redirects (a redirect from a
//! provider's endpoint is an SSRF path), has a connect and a total timeout, reads at most
//! `MAX_BODY` bytes of an answer, speaks HTTPS only (plain HTTP only for a development
//! deployment's issuer), and reaches only the provider's own origins: its issuer's, and those
//! of the endpoints its discovery document names (token, keys, userinfo). Google, for one,
//! serves those from other hosts than its issuer's. Anything else is refused before a
//! connection is opened.

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use openidconnect::core::{
    CoreAuthDisplay, CoreAuthenticationFlow, CoreClaimName, CoreClaimType, CoreClient,
    CoreClientAuthMethod, CoreGrantType, CoreIdToken, CoreJsonWebKey,
    CoreJweContentEncryptionAlgorithm, CoreJweKeyManagementAlgorithm, CoreJwsSigningAlgorithm,
    CoreResponseMode, CoreResponseType, CoreSubjectIdentifierType, CoreUserInfoClaims,
};
use openidconnect::url::{Origin, Url};
use openidconnect::{
    AccessToken, AdditionalProviderMetadata, AsyncHttpClient, AuthType,
    AuthenticationMethodReference, AuthorizationCode, ClaimsVerificationError, ClientId,
    ClientSecret, CsrfToken, EndpointMaybeSet, EndpointNotSet, EndpointSet, HttpRequest,
    HttpResponse, IssuerUrl, JsonWebKeySet, Nonce, OAuth2TokenResponse, PkceCodeChallenge,
    PkceCodeVerifier, ProviderMetadata, RedirectUrl, RequestTokenError, Scope,
    SignatureVerificationError, SubjectIdentifier, TokenResponse, http,
};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::application::social_ports::{
    AuthorizationRedirect, AuthorizationResponse, FlowSecrets, ProviderError, ProviderInfo,
    SocialProviders,
};
use crate::domain::{Email, IdentityKey, ProviderId, VerifiedIdentity};

/// The largest answer read from a provider: discovery documents and key sets are a few KB.
const MAX_BODY: usize = 1 << 20;
/// The soonest the keys are fetched again for an ID token signed with an unknown key.
const MIN_KEY_REFRESH: Duration = Duration::from_secs(60);

/// One provider, as configured.
#[derive(Debug, Clone)]
pub struct ProviderSettings {
    pub id: ProviderId,
    /// What the sign-in button says.
    pub name: String,
    /// The issuer, exactly as its ID tokens name it.
    pub issuer: String,
    pub client_id: String,
    pub client_secret: SecretString,
    /// Scopes asked for besides `openid` (which is always asked for).
    pub scopes: Vec<String>,
}

/// What all providers share.
#[derive(Debug, Clone)]
pub struct OidcSettings {
    /// Where providers send the browser back: `{API_URL}/auth/oidc/callback`.
    pub redirect_uri: String,
    /// Whether `http://` issuers and endpoints are accepted (development only).
    pub allow_http: bool,
    pub connect_timeout: Duration,
    /// For a whole request, answer included.
    pub timeout: Duration,
    /// How long discovered metadata and keys are used before they are fetched again.
    pub metadata_ttl: Duration,
    /// How long a provider whose discovery failed is left alone before it is tried again.
    pub retry_after_failure: Duration,
}

impl OidcSettings {
    /// The defaults for a callback at `redirect_uri`.
    pub fn new(redirect_uri: impl Into<String>) -> Self {
        Self {
            redirect_uri: redirect_uri.into(),
            allow_http: false,
            connect_timeout: Duration::from_secs(3),
            timeout: Duration::from_secs(10),
            metadata_ttl: Duration::from_secs(3600),
            retry_after_failure: Duration::from_secs(10),
        }
    }
}

/// Why the providers could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum OidcConfigError {
    #[error("provider {provider}: {message}")]
    Provider {
        provider: ProviderId,
        message: String,
    },
    #[error("{0}")]
    Other(String),
}

/// RFC 9207 in the discovery document: whether every authorization response carries `iss`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
struct IssParameter {
    #[serde(default)]
    authorization_response_iss_parameter_supported: bool,
}

impl AdditionalProviderMetadata for IssParameter {}

type Metadata = ProviderMetadata<
    IssParameter,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

type Client = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// Signature algorithms accepted on ID tokens: asymmetric ones only, whatever the provider
/// lists, so no token is ever checked with the client secret as an HMAC key.
const ID_TOKEN_ALGORITHMS: [CoreJwsSigningAlgorithm; 10] = [
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha384,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha512,
    CoreJwsSigningAlgorithm::RsaSsaPssSha256,
    CoreJwsSigningAlgorithm::RsaSsaPssSha384,
    CoreJwsSigningAlgorithm::RsaSsaPssSha512,
    CoreJwsSigningAlgorithm::EcdsaP256Sha256,
    CoreJwsSigningAlgorithm::EcdsaP384Sha384,
    CoreJwsSigningAlgorithm::EcdsaP521Sha512,
    CoreJwsSigningAlgorithm::EdDsa,
];

/// The configured providers.
pub struct OidcProviders {
    providers: Vec<Provider>,
}

struct Provider {
    settings: ProviderSettings,
    issuer: IssuerUrl,
    redirect_uri: RedirectUrl,
    http: reqwest::Client,
    allow_http: bool,
    metadata_ttl: Duration,
    retry_after_failure: Duration,
    /// Held while discovery runs, so concurrent sign-ins wait for one fetch.
    cache: tokio::sync::Mutex<Cache>,
}

#[derive(Default)]
struct Cache {
    discovered: Option<Arc<Discovered>>,
    failed_at: Option<Instant>,
}

/// A provider's metadata and keys as last fetched.
struct Discovered {
    client: Client,
    /// The client that reaches this provider's origins only.
    http: GuardedHttp,
    iss_parameter: bool,
    fetched_at: Instant,
}

impl OidcProviders {
    /// Checks the settings; nothing is fetched until a provider is first used (or
    /// [`Self::discover_all`] is called).
    pub fn new(
        providers: Vec<ProviderSettings>,
        settings: &OidcSettings,
    ) -> Result<Self, OidcConfigError> {
        let redirect_uri = RedirectUrl::new(settings.redirect_uri.clone())
            .map_err(|e| OidcConfigError::Other(format!("the redirect URI is not a URL: {e}")))?;
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(settings.connect_timeout)
            .timeout(settings.timeout)
            .https_only(!settings.allow_http)
            .user_agent(concat!("authgraph/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| OidcConfigError::Other(format!("cannot build the HTTP client: {e}")))?;
        let mut seen = HashSet::new();
        let providers = providers
            .into_iter()
            .map(|provider| {
                let invalid = |message: String| OidcConfigError::Provider {
                    provider: provider.id.clone(),
                    message,
                };
                if !seen.insert(provider.id.clone()) {
                    return Err(invalid("configured twice".into()));
                }
                let issuer = IssuerUrl::new(provider.issuer.clone())
                    .map_err(|e| invalid(format!("the issuer is not a URL: {e}")))?;
                match issuer.url().scheme() {
                    "https" => {}
                    "http" if settings.allow_http => {}
                    _ => return Err(invalid("the issuer must be an https:// URL".into())),
                }
                if provider.client_id.is_empty()
                    || provider.client_secret.expose_secret().is_empty()
                {
                    return Err(invalid("a client id and a client secret are needed".into()));
                }
                Ok(Provider {
                    issuer,
                    redirect_uri: redirect_uri.clone(),
                    http: http.clone(),
                    allow_http: settings.allow_http,
                    metadata_ttl: settings.metadata_ttl,
                    retry_after_failure: settings.retry_after_failure,
                    cache: tokio::sync::Mutex::default(),
                    settings: provider,
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { providers })
    }

    /// Discovers every provider now (at startup), each on its own; a provider that does not
    /// answer is logged and tried again when it is next used.
    pub async fn discover_all(&self) {
        let all = self.providers.iter().map(|provider| async move {
            if let Err(error) = provider.discovered(false).await {
                tracing::warn!(provider = %provider.settings.id, %error, "provider discovery failed");
            }
        });
        futures_util::future::join_all(all).await;
    }

    /// Verifies an ID token as [`SocialProviders::verify`] does after the code exchange:
    /// signature from the provider's keys, exact issuer, this client as its audience (and no
    /// other), expiry at `now`, and `nonce`. For tests that hold a token of their own.
    pub async fn verify_id_token(
        &self,
        provider: &ProviderId,
        id_token: &str,
        nonce: &str,
        now: DateTime<Utc>,
    ) -> Result<VerifiedIdentity, ProviderError> {
        let provider = self.provider(provider)?;
        let token: CoreIdToken = id_token
            .parse()
            .map_err(|e| ProviderError::Rejected(format!("the ID token is malformed: {e}")))?;
        let (discovered, claims) = provider.verified_claims(&token, nonce, now).await?;
        provider.identity(&discovered, &claims, None).await
    }

    fn provider(&self, id: &ProviderId) -> Result<&Provider, ProviderError> {
        self.providers
            .iter()
            .find(|p| p.settings.id == *id)
            .ok_or(ProviderError::UnknownProvider)
    }
}

#[async_trait]
impl SocialProviders for OidcProviders {
    fn list(&self) -> Vec<ProviderInfo> {
        self.providers
            .iter()
            .map(|p| ProviderInfo {
                id: p.settings.id.clone(),
                name: p.settings.name.clone(),
            })
            .collect()
    }

    async fn authorization_redirect(
        &self,
        provider: &ProviderId,
        state: &str,
    ) -> Result<AuthorizationRedirect, ProviderError> {
        let provider = self.provider(provider)?;
        let discovered = provider.discovered(false).await?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let nonce = Nonce::new_random();
        let state = CsrfToken::new(state.to_owned());
        let sent_nonce = nonce.clone();
        let mut request = discovered.client.authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            move || state,
            move || sent_nonce,
        );
        for scope in &provider.settings.scopes {
            // `openid` is always sent; twice would be a malformed request to some providers.
            if scope != "openid" {
                request = request.add_scope(Scope::new(scope.clone()));
            }
        }
        let (url, _, _) = request.set_pkce_challenge(challenge).url();
        Ok(AuthorizationRedirect {
            url: url.into(),
            nonce: nonce.secret().clone(),
            pkce_verifier: verifier.secret().clone(),
        })
    }

    async fn verify(
        &self,
        provider: &ProviderId,
        response: &AuthorizationResponse,
        secrets: FlowSecrets<'_>,
        now: DateTime<Utc>,
    ) -> Result<VerifiedIdentity, ProviderError> {
        let provider = self.provider(provider)?;
        let discovered = provider.discovered(false).await?;
        // RFC 9207: a response naming another issuer came from another provider (a mix-up
        // attack); a provider that promised `iss` and left it out is refused too.
        match response.iss.as_deref() {
            Some(iss) if iss != provider.issuer.as_str() => {
                return Err(ProviderError::Rejected(format!(
                    "the response's iss is `{iss}`, not `{}`",
                    provider.issuer.as_str()
                )));
            }
            None if discovered.iss_parameter => {
                return Err(ProviderError::Rejected(
                    "the response has no iss, which this provider always sends".into(),
                ));
            }
            _ => {}
        }
        let token = discovered
            .client
            .exchange_code(AuthorizationCode::new(response.code.clone()))
            .map_err(|e| ProviderError::Unavailable(format!("no token endpoint: {e}")))?
            .set_pkce_verifier(PkceCodeVerifier::new(secrets.pkce_verifier.to_owned()))
            .request_async(&discovered.http)
            .await
            .map_err(|error| match error {
                // The provider refused the code or the verifier (used, expired, forged).
                RequestTokenError::ServerResponse(refusal) => ProviderError::Rejected(format!(
                    "the token endpoint refused the code: {refusal}"
                )),
                other => ProviderError::Unavailable(format!("the token request failed: {other}")),
            })?;
        let id_token = token
            .id_token()
            .ok_or_else(|| ProviderError::Rejected("the token response has no ID token".into()))?;
        let (discovered, claims) = provider
            .verified_claims(id_token, secrets.nonce, now)
            .await?;
        provider
            .identity(&discovered, &claims, Some(token.access_token()))
            .await
    }
}

type Claims = openidconnect::IdTokenClaims<
    openidconnect::EmptyAdditionalClaims,
    openidconnect::core::CoreGenderClaim,
>;

impl Provider {
    /// The metadata and keys, fetched when there are none, when they are older than the
    /// TTL, or (`refresh_keys`) when a token named a key they lack.
    async fn discovered(&self, refresh_keys: bool) -> Result<Arc<Discovered>, ProviderError> {
        let mut cache = self.cache.lock().await;
        let now = Instant::now();
        if let Some(discovered) = &cache.discovered {
            let age = now.duration_since(discovered.fetched_at);
            let fresh = if refresh_keys {
                age < MIN_KEY_REFRESH
            } else {
                age < self.metadata_ttl
            };
            if fresh {
                return Ok(discovered.clone());
            }
        }
        if let Some(failed_at) = cache.failed_at
            && now.duration_since(failed_at) < self.retry_after_failure
        {
            return cache
                .discovered
                .clone()
                .ok_or_else(|| ProviderError::Unavailable("discovery failed moments ago".into()));
        }
        match self.discover().await {
            Ok(discovered) => {
                let discovered = Arc::new(discovered);
                cache.discovered = Some(discovered.clone());
                cache.failed_at = None;
                Ok(discovered)
            }
            Err(error) => {
                cache.failed_at = Some(now);
                match &cache.discovered {
                    Some(stale) => {
                        tracing::warn!(provider = %self.settings.id, %error,
                            "provider discovery failed; the last metadata stays in use");
                        Ok(stale.clone())
                    }
                    None => Err(error),
                }
            }
        }
    }

    async fn discover(&self) -> Result<Discovered, ProviderError> {
        let unavailable = |message: String| ProviderError::Unavailable(message);
        let issuer_origin = self.issuer.url().origin();
        let to_issuer = GuardedHttp::new(
            self.http.clone(),
            HashSet::from([issuer_origin.clone()]),
            self.allow_http,
        );
        let url = self
            .issuer
            .join(".well-known/openid-configuration")
            .map_err(|e| unavailable(format!("bad discovery URL: {e}")))?;
        let request = http::Request::builder()
            .uri(url.as_str())
            .header(http::header::ACCEPT, "application/json")
            .body(Vec::new())
            .map_err(|e| unavailable(e.to_string()))?;
        let response = to_issuer
            .call(request)
            .await
            .map_err(|e| unavailable(format!("discovery request failed: {e}")))?;
        if response.status() != http::StatusCode::OK {
            return Err(unavailable(format!(
                "discovery answered HTTP {}",
                response.status()
            )));
        }
        let metadata: Metadata = serde_json::from_slice(response.body())
            .map_err(|e| unavailable(format!("the discovery document does not parse: {e}")))?;
        // OIDC Discovery §4.3: exactly the issuer asked for, or the document is not its own.
        if metadata.issuer().as_str() != self.issuer.as_str() {
            return Err(unavailable(format!(
                "the discovery document is for issuer `{}`, not `{}`",
                metadata.issuer().as_str(),
                self.issuer.as_str()
            )));
        }
        let mut origins = HashSet::from([issuer_origin]);
        let endpoints = [
            Some(metadata.authorization_endpoint().url()),
            metadata.token_endpoint().map(|u| u.url()),
            Some(metadata.jwks_uri().url()),
            metadata.userinfo_endpoint().map(|u| u.url()),
        ];
        for endpoint in endpoints.into_iter().flatten() {
            if endpoint.scheme() != "https" && !self.allow_http {
                return Err(unavailable(format!("endpoint {endpoint} is not https")));
            }
            origins.insert(endpoint.origin());
        }
        let http = GuardedHttp::new(self.http.clone(), origins, self.allow_http);
        let keys = JsonWebKeySet::fetch_async(metadata.jwks_uri(), &http)
            .await
            .map_err(|e| unavailable(format!("the key set could not be fetched: {e}")))?;
        let iss_parameter = metadata
            .additional_metadata()
            .authorization_response_iss_parameter_supported;
        // Basic authentication unless the provider only takes the secret in the body.
        let auth_type = match metadata.token_endpoint_auth_methods_supported() {
            Some(methods)
                if methods.contains(&CoreClientAuthMethod::ClientSecretPost)
                    && !methods.contains(&CoreClientAuthMethod::ClientSecretBasic) =>
            {
                AuthType::RequestBody
            }
            _ => AuthType::BasicAuth,
        };
        let client = CoreClient::from_provider_metadata(
            metadata.set_jwks(keys),
            ClientId::new(self.settings.client_id.clone()),
            Some(ClientSecret::new(
                self.settings.client_secret.expose_secret().to_owned(),
            )),
        )
        .set_redirect_uri(self.redirect_uri.clone())
        .set_auth_type(auth_type);
        Ok(Discovered {
            client,
            http,
            iss_parameter,
            fetched_at: Instant::now(),
        })
    }

    /// The ID token's claims, verified with the keys at hand, or with fresh ones if it names
    /// a key they lack.
    async fn verified_claims(
        &self,
        token: &CoreIdToken,
        nonce: &str,
        now: DateTime<Utc>,
    ) -> Result<(Arc<Discovered>, Claims), ProviderError> {
        let nonce = Nonce::new(nonce.to_owned());
        let check = |discovered: &Discovered| {
            let verifier = discovered
                .client
                .id_token_verifier()
                .set_allowed_algs(ID_TOKEN_ALGORITHMS)
                .set_time_fn(move || now);
            token.claims(&verifier, &nonce).cloned()
        };
        let discovered = self.discovered(false).await?;
        match check(&discovered) {
            Ok(claims) => Ok((discovered, claims)),
            Err(ClaimsVerificationError::SignatureVerification(
                SignatureVerificationError::NoMatchingKey,
            )) => {
                let discovered = self.discovered(true).await?;
                let claims = check(&discovered).map_err(rejected)?;
                Ok((discovered, claims))
            }
            Err(error) => Err(rejected(error)),
        }
    }

    /// Who the claims say signed in; the email from the userinfo endpoint when the ID token
    /// has none (a provider that keeps claims out of ID tokens), for the same subject only.
    async fn identity(
        &self,
        discovered: &Discovered,
        claims: &Claims,
        access_token: Option<&AccessToken>,
    ) -> Result<VerifiedIdentity, ProviderError> {
        let key = IdentityKey::new(claims.issuer().as_str(), claims.subject().as_str())
            .map_err(|e| ProviderError::Rejected(format!("unusable subject: {e}")))?;
        let mut email = claims.email().map(|e| e.as_str().to_owned());
        let mut email_verified = claims.email_verified().unwrap_or(false);
        if email.is_none()
            && let Some(access_token) = access_token
            && let Ok(request) = discovered.client.user_info(
                access_token.clone(),
                Some(SubjectIdentifier::new(key.subject().to_owned())),
            )
        {
            let info: CoreUserInfoClaims = request
                .request_async(&discovered.http)
                .await
                .map_err(|e| ProviderError::Unavailable(format!("userinfo failed: {e}")))?;
            email = info.email().map(|e| e.as_str().to_owned());
            email_verified = info.email_verified().unwrap_or(false);
        }
        let email = email.and_then(|e| Email::parse(&e).ok());
        Ok(VerifiedIdentity {
            provider: self.settings.id.clone(),
            key,
            email_verified: email_verified && email.is_some(),
            email,
            provider_mfa: asserts_mfa(claims.auth_method_refs()),
        })
    }
}

fn rejected(error: ClaimsVerificationError) -> ProviderError {
    ProviderError::Rejected(format!("the ID token is refused: {error}"))
}

/// Whether `amr` (RFC 8176) says the user passed more than one factor: `mfa` or `mca`, or
/// methods of two kinds among something known, something held and something one is.
fn asserts_mfa(amr: Option<&Vec<AuthenticationMethodReference>>) -> bool {
    let Some(amr) = amr else {
        return false;
    };
    let methods: Vec<&str> = amr.iter().map(|m| m.as_str()).collect();
    if methods.iter().any(|m| matches!(*m, "mfa" | "mca")) {
        return true;
    }
    let knows = methods.iter().any(|m| matches!(*m, "pwd" | "pin" | "kba"));
    let has = methods
        .iter()
        .any(|m| matches!(*m, "otp" | "hwk" | "swk" | "sms" | "tel" | "sc" | "pop"));
    let is = methods
        .iter()
        .any(|m| matches!(*m, "fpt" | "face" | "iris" | "retina" | "vbm"));
    [knows, has, is].into_iter().filter(|kind| *kind).count() >= 2
}

/// The HTTP client that talks to one provider: its origins only, no redirects, bounded
/// answers.
#[derive(Clone)]
struct GuardedHttp {
    client: reqwest::Client,
    origins: Arc<HashSet<Origin>>,
    allow_http: bool,
}

/// Why a request to a provider failed.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// Refused before anything was sent.
    #[error("refused: {0}")]
    Refused(String),
    #[error(transparent)]
    Request(#[from] reqwest::Error),
    #[error("the answer is larger than {MAX_BODY} bytes")]
    TooLarge,
    #[error(transparent)]
    Http(#[from] http::Error),
}

impl GuardedHttp {
    fn new(client: reqwest::Client, origins: HashSet<Origin>, allow_http: bool) -> Self {
        Self {
            client,
            origins: Arc::new(origins),
            allow_http,
        }
    }

    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, HttpError> {
        let url = Url::parse(&request.uri().to_string())
            .map_err(|e| HttpError::Refused(format!("not a URL: {e}")))?;
        if !self.origins.contains(&url.origin()) {
            return Err(HttpError::Refused(format!(
                "{} is not an origin of this provider",
                url.origin().ascii_serialization()
            )));
        }
        if url.scheme() != "https" && !self.allow_http {
            return Err(HttpError::Refused(format!("{url} is not https")));
        }
        let request = reqwest::Request::try_from(request)?;
        // Redirects are not followed (the client's policy): a 3xx comes back as it is, and
        // fails as the wrong answer wherever it lands.
        let mut response = self.client.execute(request).await?;
        if response
            .content_length()
            .is_some_and(|length| length > MAX_BODY as u64)
        {
            return Err(HttpError::TooLarge);
        }
        let mut builder = http::Response::builder().status(response.status());
        for (name, value) in response.headers() {
            builder = builder.header(name, value);
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await? {
            if body.len() + chunk.len() > MAX_BODY {
                return Err(HttpError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(builder.body(body)?)
    }
}

impl<'c> AsyncHttpClient<'c> for GuardedHttp {
    type Error = HttpError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, HttpError>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(self.send(request))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    /// A server on 127.0.0.1 that answers every request with `response` and counts them.
    async fn server(response: Vec<u8>) -> (Url, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = Url::parse(&format!("http://{}/", listener.local_addr().unwrap())).unwrap();
        let served = Arc::new(AtomicUsize::new(0));
        let count = served.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                let response = response.clone();
                tokio::spawn(async move {
                    let mut request = Vec::new();
                    let mut buffer = [0u8; 1024];
                    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                        match socket.read(&mut buffer).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&buffer[..n]),
                        }
                    }
                    let _ = socket.write_all(&response).await;
                });
            }
        });
        (url, served)
    }

    fn answer(status: &str, headers: &str, body: &[u8]) -> Vec<u8> {
        let mut response = format!(
            "HTTP/1.1 {status}\r\n{headers}content-length: {}\r\nconnection: close\r\n\r\n",
            body.len()
        )
        .into_bytes();
        response.extend_from_slice(body);
        response
    }

    fn client() -> reqwest::Client {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap()
    }

    fn get(url: &Url) -> HttpRequest {
        http::Request::builder()
            .uri(url.as_str())
            .body(Vec::new())
            .unwrap()
    }

    #[tokio::test]
    async fn a_provider_client_reaches_its_own_origins_only() {
        let (ours, _) = server(answer("200 OK", "", b"{}")).await;
        let (elsewhere, reached) = server(answer("200 OK", "", b"{}")).await;
        let http = GuardedHttp::new(client(), HashSet::from([ours.origin()]), true);

        assert_eq!(http.call(get(&ours)).await.unwrap().status(), 200);
        let refused = http.call(get(&elsewhere)).await;

        assert!(matches!(refused, Err(HttpError::Refused(_))), "{refused:?}");
        assert_eq!(reached.load(Ordering::SeqCst), 0, "not even a connection");
    }

    #[tokio::test]
    async fn a_provider_client_speaks_https_only_unless_told_otherwise() {
        let (ours, reached) = server(answer("200 OK", "", b"{}")).await;
        let http = GuardedHttp::new(client(), HashSet::from([ours.origin()]), false);

        let refused = http.call(get(&ours)).await;

        assert!(matches!(refused, Err(HttpError::Refused(_))), "{refused:?}");
        assert_eq!(reached.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn a_redirect_from_a_provider_is_never_followed() {
        let (target, reached) = server(answer("200 OK", "", b"{}")).await;
        let location = format!("location: {target}\r\n");
        let (ours, served) = server(answer("302 Found", &location, b"")).await;
        // Even to an origin it may reach.
        let origins = HashSet::from([ours.origin(), target.origin()]);
        let http = GuardedHttp::new(client(), origins, true);

        let response = http.call(get(&ours)).await.unwrap();

        assert_eq!(response.status(), 302);
        assert_eq!(served.load(Ordering::SeqCst), 1);
        assert_eq!(reached.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn an_oversized_answer_is_refused() {
        let (ours, _) = server(answer("200 OK", "", &vec![b'x'; MAX_BODY + 1])).await;
        let http = GuardedHttp::new(client(), HashSet::from([ours.origin()]), true);

        assert!(matches!(
            http.call(get(&ours)).await,
            Err(HttpError::TooLarge)
        ));
    }

    fn amr(methods: &[&str]) -> Vec<AuthenticationMethodReference> {
        methods
            .iter()
            .map(|m| AuthenticationMethodReference::new((*m).to_owned()))
            .collect()
    }

    #[test]
    fn two_kinds_of_factor_or_an_explicit_mfa_make_a_multi_factor_sign_in() {
        assert!(asserts_mfa(Some(&amr(&["mfa"]))));
        assert!(asserts_mfa(Some(&amr(&["pwd", "otp"]))));
        assert!(asserts_mfa(Some(&amr(&["hwk", "fpt"]))));
        assert!(!asserts_mfa(Some(&amr(&["pwd"]))));
        assert!(
            !asserts_mfa(Some(&amr(&["pwd", "pin"]))),
            "two things known"
        );
        assert!(!asserts_mfa(Some(&amr(&["otp", "sms"]))), "two things held");
        assert!(!asserts_mfa(None));
    }
}
