//! The one place the services are built from their ports and policies: the composition root
//! (`app.rs`) and the service tests both call [`Services::new`].

use std::sync::Arc;

use crate::domain::{
    AccountRecoveryStore, AccountStore, AccountTokenRepository, AuditQueries, AuditStore, HotReads,
    PasskeyStore, SecondFactorStore, SessionRepository, SocialFlowStore, SocialIdentityStore,
    UserDirectory,
};

use super::account::{AccountDeps, AccountService};
use super::audit::{AuditRetention, AuditService, AuditTrail};
use super::auth::{AuthDeps, AuthService};
use super::claims::{ClaimsPolicy, TokenClaims};
use super::links::AccountLinks;
use super::notices::SecurityNotices;
use super::passkey_ports::PasskeyCeremonies;
use super::passkeys::{PasskeyDeps, PasskeyPolicy, PasskeyService};
use super::passwords::Confirmation;
use super::ports::{
    AccessTokens, AuditLog, ClaimsHook, Clock, Deferred, Mailer, PasswordHasher, RateLimiter,
    SecretSealer,
};
use super::second_factor::{MfaDeps, MfaPolicy, MfaService};
use super::sessions::{SessionDeps, SessionPolicy, SessionService};
use super::social::{SocialDeps, SocialPolicy, SocialService};
use super::social_ports::SocialProviders;
use super::throttle::{Throttle, ThrottlePolicy};
use super::users::{UserDeps, UserService};

/// Where the services keep what lasts: one adapter per port (the SeaORM repositories, as
/// `app::stores` builds them).
#[derive(Clone)]
pub struct Stores {
    pub accounts: Arc<dyn AccountStore>,
    /// The lookup by email and the session check, which a backend may serve faster.
    pub reads: Arc<dyn HotReads>,
    pub sessions: Arc<dyn SessionRepository>,
    /// One-time links, tickets and recovery links.
    pub links: Arc<dyn AccountTokenRepository>,
    pub recovery: Arc<dyn AccountRecoveryStore>,
    pub factors: Arc<dyn SecondFactorStore>,
    /// Passkeys and the state of their ceremonies.
    pub passkeys: Arc<dyn PasskeyStore>,
    pub directory: Arc<dyn UserDirectory>,
    pub audit: Arc<dyn AuditStore>,
    pub audit_queries: Arc<dyn AuditQueries>,
    /// Identities linked to accounts, and social sign-in flows and codes.
    pub social_identities: Arc<dyn SocialIdentityStore>,
    pub social_flows: Arc<dyn SocialFlowStore>,
}

/// Everything the services use that is not a policy.
pub struct Ports {
    pub stores: Stores,
    pub hasher: Arc<dyn PasswordHasher>,
    pub tokens: Arc<dyn AccessTokens>,
    pub sealer: Arc<dyn SecretSealer>,
    pub mailer: Arc<dyn Mailer>,
    pub deferred: Arc<dyn Deferred>,
    /// Where services record audit events (written later, in batches).
    pub audit_log: Arc<dyn AuditLog>,
    pub limiter: Arc<dyn RateLimiter>,
    /// Adds claims to access tokens before they are signed, when one is configured.
    pub claims_hook: Option<Arc<dyn ClaimsHook>>,
    pub clock: Arc<dyn Clock>,
    /// The configured OpenID providers.
    pub providers: Arc<dyn SocialProviders>,
    /// The WebAuthn relying party.
    pub ceremonies: Arc<dyn PasskeyCeremonies>,
}

/// The rules the services apply, each built by its configuration area.
#[derive(Debug, Clone)]
pub struct Policies {
    pub sessions: SessionPolicy,
    pub links: AccountLinks,
    pub mfa: MfaPolicy,
    pub passkeys: PasskeyPolicy,
    pub throttle: ThrottlePolicy,
    pub claims: ClaimsPolicy,
    pub audit: AuditRetention,
    pub social: SocialPolicy,
}

/// Every service, as the interfaces use them.
#[derive(Clone)]
pub struct Services {
    pub auth: Arc<AuthService>,
    pub sessions: Arc<SessionService>,
    pub account: Arc<AccountService>,
    pub users: Arc<UserService>,
    pub mfa: Arc<MfaService>,
    pub passkeys: Arc<PasskeyService>,
    pub audit: Arc<AuditService>,
    pub social: Arc<SocialService>,
    /// The abuse limits every service applies, for their counters.
    pub throttle: Arc<Throttle>,
}

impl Services {
    pub fn new(ports: Ports, policies: Policies) -> Self {
        let Ports {
            stores,
            hasher,
            tokens,
            sealer,
            mailer,
            deferred,
            audit_log,
            limiter,
            claims_hook,
            clock,
            providers,
            ceremonies,
        } = ports;
        let audit = AuditTrail::new(audit_log, clock.clone());
        let throttle = Arc::new(Throttle::new(limiter, policies.throttle));
        let links = Arc::new(policies.links);
        let sessions = Arc::new(SessionService::new(SessionDeps {
            sessions: stores.sessions.clone(),
            users: stores.accounts.clone(),
            passkeys: stores.passkeys.clone(),
            reads: stores.reads.clone(),
            tokens,
            claims: Arc::new(TokenClaims::new(
                policies.claims,
                claims_hook,
                audit.clone(),
            )),
            clock: clock.clone(),
            audit: audit.clone(),
            throttle: throttle.clone(),
            policy: policies.sessions,
        }));
        let confirmation = Arc::new(Confirmation::new(
            hasher.clone(),
            throttle.clone(),
            sessions.clone(),
        ));
        let notices = Arc::new(SecurityNotices::new(
            stores.accounts.clone(),
            stores.links.clone(),
            mailer.clone(),
            deferred.clone(),
            links.clone(),
            audit.clone(),
        ));
        let social_mail = (mailer.clone(), deferred.clone(), links.clone());
        let mfa = Arc::new(MfaService::new(MfaDeps {
            users: stores.accounts.clone(),
            factors: stores.factors.clone(),
            passkeys: stores.passkeys.clone(),
            tickets: stores.links.clone(),
            sealer,
            clock: clock.clone(),
            confirmation: confirmation.clone(),
            notices: notices.clone(),
            sessions: sessions.clone(),
            throttle: throttle.clone(),
            audit: audit.clone(),
            policy: policies.mfa.clone(),
        }));
        let account = Arc::new(AccountService::new(AccountDeps {
            users: stores.accounts.clone(),
            reads: stores.reads.clone(),
            tokens: stores.links.clone(),
            recovery: stores.recovery.clone(),
            notices: notices.clone(),
            hasher: hasher.clone(),
            sessions: sessions.clone(),
            mfa: mfa.clone(),
            mailer,
            deferred,
            clock: clock.clone(),
            audit: audit.clone(),
            throttle: throttle.clone(),
            links,
        }));
        let auth = Arc::new(AuthService::new(AuthDeps {
            users: stores.accounts.clone(),
            reads: stores.reads.clone(),
            notices: notices.clone(),
            hasher: hasher.clone(),
            confirmation: confirmation.clone(),
            sessions: sessions.clone(),
            account: account.clone(),
            mfa: mfa.clone(),
            clock: clock.clone(),
            audit: audit.clone(),
            throttle: throttle.clone(),
        }));
        let (social_mailer, social_deferred, social_links) = social_mail;
        let social = Arc::new(SocialService::new(SocialDeps {
            providers,
            identities: stores.social_identities.clone(),
            flows: stores.social_flows.clone(),
            users: stores.accounts.clone(),
            reads: stores.reads.clone(),
            session_store: stores.sessions.clone(),
            hasher: hasher.clone(),
            sessions: sessions.clone(),
            mfa: mfa.clone(),
            notices: notices.clone(),
            mailer: social_mailer,
            deferred: social_deferred,
            links: social_links,
            clock: clock.clone(),
            audit: audit.clone(),
            throttle: throttle.clone(),
            policy: policies.social,
        }));
        let passkeys = Arc::new(PasskeyService::new(PasskeyDeps {
            passkeys: stores.passkeys.clone(),
            identities: stores.social_identities.clone(),
            users: stores.accounts.clone(),
            ceremonies,
            sessions: sessions.clone(),
            clock: clock.clone(),
            audit: audit.clone(),
            throttle: throttle.clone(),
            notices: notices.clone(),
            tickets: stores.links.clone(),
            mfa: policies.mfa,
            policy: policies.passkeys,
        }));
        let users = Arc::new(UserService::new(UserDeps {
            users: stores.accounts.clone(),
            reads: stores.reads.clone(),
            notices,
            directory: stores.directory.clone(),
            hasher,
            confirmation,
            sessions: sessions.clone(),
            account: account.clone(),
            clock: clock.clone(),
            audit,
            throttle: throttle.clone(),
        }));
        let audit = Arc::new(AuditService::new(
            stores.audit,
            stores.audit_queries,
            clock,
            policies.audit,
        ));
        Self {
            auth,
            sessions,
            account,
            users,
            mfa,
            passkeys,
            audit,
            social,
            throttle,
        }
    }
}
