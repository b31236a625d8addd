//! What the service tests stand on: every service as [`Services::new`] wires it, over the real
//! SeaORM repositories on a fresh in-memory SQLite database (migrated in milliseconds), with
//! the real token signer, secret sealer, rate limiter, audit writer and log mailer. A test is a
//! composition root, so this module may know the infrastructure; nothing outside `cfg(test)`
//! sees it.
//!
//! Stubs remain only where a test must hold something still or count it: a clock that moves
//! when told ([`ManualClock`]), deferred jobs that run when told ([`HeldJobs`]), and a hasher
//! that costs nothing, counts its verifications and can be saturated ([`CheapHasher`]); and
//! an OpenID provider whose answers a test scripts ([`ScriptedProviders`]: the real one runs
//! in the HTTP tests).

use crate::application::ClaimsPolicy;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use async_trait::async_trait;
use chrono::{DateTime, Duration, TimeZone, Utc};
use sea_orm::DatabaseConnection;

use crate::domain::{Email, Password, PasswordHash, Session, SessionId, User, UserId};
use crate::infrastructure::audit::AuditWriter;
use crate::infrastructure::mail::LogMailer;
use crate::infrastructure::persistence::{
    self, DatabaseSettings, QueryCounter, RetryCounter, Transactions,
};
use crate::infrastructure::rate_limit::MemoryRateLimiter;
use crate::infrastructure::security::{
    EncryptionKey, JwtSettings, JwtTokens, SecretBox, WebauthnCeremonies, WebauthnSettings,
};

use super::audit::AuditRetention;
use super::links::AccountLinks;
use super::passkeys::PasskeyPolicy;
use super::ports::{Clock, Deferred, HashError, OutgoingEmail, PasswordHasher};
use super::second_factor::MfaPolicy;
use super::sessions::SessionPolicy;
use super::social::SocialPolicy;
use super::social_ports::{
    AuthorizationRedirect, AuthorizationResponse, FlowSecrets, ProviderError, ProviderInfo,
    SocialProviders,
};
use super::throttle::ThrottlePolicy;
use super::wiring::{Policies, Ports, Services, Stores};

/// The session policy of the tests.
pub const SESSIONS: SessionPolicy = SessionPolicy {
    idle_timeout: Duration::days(30),
    max_age: Duration::days(90),
    reuse_grace: Duration::seconds(10),
    require_verified_email: false,
    reauthentication_window: Duration::minutes(10),
};

/// The policies of the tests: [`SESSIONS`], links to `https://app.example.com/`, and every
/// abuse limit off (a test of a limit turns it on).
pub fn policies() -> Policies {
    Policies {
        sessions: SESSIONS,
        links: AccountLinks {
            public_url: "https://app.example.com/".into(),
            password_reset_ttl: Duration::minutes(30),
            email_verification_ttl: Duration::hours(24),
            email_change_revert_window: Duration::hours(72),
        },
        mfa: MfaPolicy {
            issuer: "authgraph".into(),
            ticket_lifetime: Duration::minutes(5),
            ticket_attempts: 5,
        },
        passkeys: PasskeyPolicy::default(),
        throttle: ThrottlePolicy::default(),
        claims: ClaimsPolicy::default(),
        audit: AuditRetention {
            events: Duration::days(365),
            clients: Duration::days(90),
        },
        social: SocialPolicy {
            flow_lifetime: Duration::minutes(10),
            code_lifetime: Duration::minutes(2),
            link_lifetime: Duration::hours(1),
            trust_provider_mfa: false,
            max_flows_per_binding: 10,
            max_live_flows: 10_000,
            redirect_origins: vec!["https://app.example.com".into()],
            any_localhost: false,
        },
    }
}

/// One provider, `corp`, whose next answers a test sets. It hands out a fresh nonce and
/// PKCE verifier per request, as the real one does, and refuses a response verified with
/// secrets it did not hand out for that flow's `state`.
#[derive(Default)]
pub struct ScriptedProviders {
    issued: Mutex<Vec<(String, String, String)>>,
    next: Mutex<Option<Result<crate::domain::VerifiedIdentity, ProviderError>>>,
    start_fails: Mutex<Option<ProviderError>>,
}

impl ScriptedProviders {
    /// What the next `verify` answers.
    pub fn answer(&self, answer: Result<crate::domain::VerifiedIdentity, ProviderError>) {
        *self.next.lock().unwrap() = Some(answer);
    }

    /// What the next `authorization_redirect` fails with.
    pub fn fail_start(&self, error: ProviderError) {
        *self.start_fails.lock().unwrap() = Some(error);
    }
}

#[async_trait]
impl SocialProviders for ScriptedProviders {
    fn list(&self) -> Vec<ProviderInfo> {
        vec![ProviderInfo {
            id: crate::domain::ProviderId::parse("corp").unwrap(),
            name: "Corp".into(),
        }]
    }

    async fn authorization_redirect(
        &self,
        provider: &crate::domain::ProviderId,
        state: &str,
    ) -> Result<AuthorizationRedirect, ProviderError> {
        if let Some(error) = self.start_fails.lock().unwrap().take() {
            return Err(error);
        }
        if provider.as_str() != "corp" {
            return Err(ProviderError::UnknownProvider);
        }
        let nonce = format!("nonce-{}", self.issued.lock().unwrap().len());
        let verifier = format!("verifier-{}", self.issued.lock().unwrap().len());
        self.issued
            .lock()
            .unwrap()
            .push((state.to_owned(), nonce.clone(), verifier.clone()));
        Ok(AuthorizationRedirect {
            url: format!("https://idp.example/authorize?state={state}"),
            nonce,
            pkce_verifier: verifier,
        })
    }

    async fn verify(
        &self,
        _provider: &crate::domain::ProviderId,
        response: &AuthorizationResponse,
        secrets: FlowSecrets<'_>,
        _now: DateTime<Utc>,
    ) -> Result<crate::domain::VerifiedIdentity, ProviderError> {
        // The response's code is the state it was issued for: the flow's secrets must be
        // the ones handed out with that state.
        let matches = self
            .issued
            .lock()
            .unwrap()
            .iter()
            .any(|(state, nonce, verifier)| {
                *state == response.code
                    && nonce == secrets.nonce
                    && verifier == secrets.pkce_verifier
            });
        if !matches {
            return Err(ProviderError::Rejected("secrets of another flow".into()));
        }
        self.next
            .lock()
            .unwrap()
            .take()
            .unwrap_or_else(|| Err(ProviderError::Rejected("no answer scripted".into())))
    }
}

/// The services on a fresh database, and the handles a test reads or moves.
pub struct Harness {
    pub services: Services,
    /// The repositories the services use, to read what they stored.
    pub stores: Stores,
    pub hasher: Arc<CheapHasher>,
    pub mailer: Arc<LogMailer>,
    pub deferred: Arc<HeldJobs>,
    pub clock: Arc<ManualClock>,
    pub providers: Arc<ScriptedProviders>,
    /// The signer of the services' access tokens.
    pub tokens: Arc<JwtTokens>,
    /// The in-memory database lives as long as a connection to it.
    _db: DatabaseConnection,
}

impl Harness {
    /// With the test [`policies`].
    pub async fn new() -> Self {
        Self::with(policies()).await
    }

    pub async fn with(policies: Policies) -> Self {
        let queries = QueryCounter::default();
        let settings = DatabaseSettings {
            url: "sqlite::memory:".into(),
            max_connections: 1,
            connect_timeout: StdDuration::from_secs(5),
        };
        let db = persistence::connect(&settings, &queries)
            .await
            .expect("an in-memory SQLite database opens");
        persistence::migrate(&db).await.expect("migrations apply");
        let writes = Transactions::new(db.clone(), RetryCounter::default());
        let stores = crate::app::stores(&settings.url, true, &writes, &queries);
        let clock = Arc::new(ManualClock::new());
        let (signing, verifying) = JwtSettings::hmac(b"the service tests' signing secret", &[]);
        let tokens = Arc::new(JwtTokens::new(JwtSettings {
            signing,
            verifying,
            issuer: "authgraph".into(),
            audience: "authgraph".into(),
            lifetime: StdDuration::from_secs(900),
            remembered: 0,
        }));
        let providers = Arc::new(ScriptedProviders::default());
        let key = EncryptionKey::parse(&EncryptionKey::generate_text().unwrap()).unwrap();
        let (hasher, mailer, deferred) = (
            Arc::new(CheapHasher::default()),
            Arc::new(LogMailer::new(false)),
            Arc::new(HeldJobs::default()),
        );
        let ports = Ports {
            stores: stores.clone(),
            hasher: hasher.clone(),
            tokens: tokens.clone(),
            sealer: Arc::new(SecretBox::new(&key, &[])),
            mailer: mailer.clone(),
            deferred: deferred.clone(),
            audit_log: AuditWriter::start(stores.audit.clone()),
            limiter: Arc::new(MemoryRateLimiter::new(1_000, clock.clone())),
            claims_hook: None,
            clock: clock.clone(),
            providers: providers.clone(),
            ceremonies: Arc::new(
                WebauthnCeremonies::new(&WebauthnSettings {
                    rp_id: "app.example.com".into(),
                    rp_name: "authgraph".into(),
                    origins: vec!["https://app.example.com".into()],
                })
                .expect("the test relying party"),
            ),
        };
        Self {
            services: Services::new(ports, policies),
            stores,
            hasher,
            mailer,
            deferred,
            clock,
            providers,
            tokens,
            _db: db,
        }
    }

    /// Runs the jobs deferred so far (the emails with links), as the queue would.
    pub async fn settle(&self) {
        self.deferred.run_pending().await;
    }

    /// The emails sent so far, oldest first (deferred ones only once [`Self::settle`] ran).
    pub fn sent(&self) -> Vec<OutgoingEmail> {
        self.mailer.messages()
    }

    /// The token in the link of the last email sent to `to` (deferred jobs run first).
    pub async fn last_link_token(&self, to: &str) -> String {
        self.settle().await;
        let emails = self.sent();
        let email = emails
            .iter()
            .rev()
            .find(|e| e.to == to)
            .expect("an email was sent");
        let (_, rest) = email.text.split_once("?token=").expect("a link");
        rest.split_whitespace().next().unwrap().to_owned()
    }

    /// The account as stored now.
    pub async fn user(&self, id: UserId) -> Option<User> {
        self.stores.accounts.find_by_id(id).await.unwrap()
    }

    /// The account with this address, as stored now.
    pub async fn user_by_email(&self, email: &str) -> Option<User> {
        let email = Email::parse(email).unwrap();
        self.stores.reads.user_by_email(&email).await.unwrap()
    }

    /// The session as stored now.
    pub async fn session(&self, id: SessionId) -> Option<Session> {
        self.stores.sessions.find(id).await.unwrap()
    }
}

/// "Hashes" by prefixing with the parameters' name, at no cost; counts verifications so tests
/// can see the dummy hash was used, and refuses work once saturated.
pub struct CheapHasher {
    verifications: AtomicUsize,
    saturated: AtomicBool,
    dummy: PasswordHash,
}

impl Default for CheapHasher {
    fn default() -> Self {
        Self {
            verifications: AtomicUsize::new(0),
            saturated: AtomicBool::new(false),
            dummy: PasswordHash::new("current$<matches nothing>".into()),
        }
    }
}

impl CheapHasher {
    pub fn verifications(&self) -> usize {
        self.verifications.load(Ordering::SeqCst)
    }

    /// From now on every hash and verification is refused as if the pool were full.
    pub fn saturate(&self) {
        self.saturated.store(true, Ordering::SeqCst);
    }

    /// A hash as older parameters would have made it.
    pub fn outdated_hash(password: &str) -> PasswordHash {
        PasswordHash::new(format!("old${password}"))
    }

    fn check_capacity(&self) -> Result<(), HashError> {
        if self.saturated.load(Ordering::SeqCst) {
            Err(HashError::Overloaded)
        } else {
            Ok(())
        }
    }
}

#[async_trait]
impl PasswordHasher for CheapHasher {
    async fn hash(&self, password: Password) -> Result<PasswordHash, HashError> {
        self.check_capacity()?;
        Ok(PasswordHash::new(format!("current${}", password.expose())))
    }

    async fn verify(&self, password: Password, hash: &PasswordHash) -> Result<bool, HashError> {
        self.check_capacity()?;
        self.verifications.fetch_add(1, Ordering::SeqCst);
        Ok(hash.as_str().split_once('$').map(|(_, p)| p) == Some(password.expose()))
    }

    fn dummy_hash(&self) -> &PasswordHash {
        &self.dummy
    }

    fn needs_rehash(&self, hash: &PasswordHash) -> bool {
        !hash.as_str().starts_with("current$")
    }
}

/// Holds deferred jobs until a test runs them, in order.
#[derive(Default)]
pub struct HeldJobs(Mutex<Vec<futures_util::future::BoxFuture<'static, ()>>>);

impl HeldJobs {
    pub async fn run_pending(&self) {
        loop {
            let jobs = std::mem::take(&mut *self.0.lock().unwrap());
            if jobs.is_empty() {
                return;
            }
            for job in jobs {
                job.await;
            }
        }
    }
}

impl Deferred for HeldJobs {
    fn defer(&self, _what: &'static str, job: futures_util::future::BoxFuture<'static, ()>) {
        self.0.lock().unwrap().push(job);
    }
}

/// A clock that stands still until told to move.
pub struct ManualClock(Mutex<DateTime<Utc>>);

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl ManualClock {
    pub fn new() -> Self {
        Self(Mutex::new(
            Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap(),
        ))
    }

    pub fn advance(&self, by: Duration) {
        *self.0.lock().unwrap() += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}
