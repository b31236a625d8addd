//! Social sign-in (OpenID Connect): starting a flow, the provider's return to the callback,
//! finishing a sign-in with its one-time code, and linking and unlinking identities.
//!
//! Linking rules, for an identity (issuer, subject) that comes back from a provider:
//! - linked already: it signs in to its account (suspension and the second factor as at any
//!   sign-in);
//! - not linked, and the provider vouched for an address whose account proved it: refused
//!   (`ACCOUNT_EXISTS`), and that address is emailed a link that links the identity once it
//!   is followed; never silently;
//! - not linked, and the vouched-for address belongs to an account that never proved it: that
//!   account is replaced by a new one with the identity (pre-hijacking: whoever registered the
//!   address first keeps nothing, its sessions end), audited;
//! - not linked, and the provider did not vouch for an address that an account has: refused
//!   (`UNVERIFIED_PROVIDER_EMAIL`);
//! - otherwise a new account without a password is created with the identity, its address
//!   verified only if the provider vouched for it.

use std::sync::Arc;

use chrono::Duration;

use crate::domain::{
    AccountStore, AuditKind, AuthMethods, CreateOutcome, Delivery, FlowPurpose, HotReads,
    LinkOutcome, OpaqueToken, ProviderId, Replacing, Role, SessionRepository, SocialCode,
    SocialCodeKind, SocialFlow, SocialFlowStore, SocialIdentity, SocialIdentityStore,
    UnlinkOutcome, User, UserId, VerifiedIdentity,
};

use super::audit::{AuditTrail, Record};
use super::caller::{ClientInfo, Principal};
use super::error::{AuthFailure, ServiceError, SocialRefusal};
use super::links::AccountLinks;
use super::notices::{Notice, SecurityNotices};
use super::ports::{Clock, Deferred, Mailer, OutgoingEmail, PasswordHasher};
use super::second_factor::MfaService;
use super::sessions::{SessionService, SignedIn};
use super::social_ports::{
    AuthorizationResponse, FlowSecrets, ProviderError, ProviderInfo, SocialProviders,
};
use super::throttle::Throttle;

/// The longest `redirectTo` accepted (the column's size).
pub const MAX_REDIRECT_LEN: usize = 2048;

/// How social sign-in behaves.
#[derive(Debug, Clone)]
pub struct SocialPolicy {
    /// How long a flow may stay at its provider.
    pub flow_lifetime: Duration,
    /// How long a bearer client has to exchange its one-time code.
    pub code_lifetime: Duration,
    /// How long the link emailed to an existing account stays usable.
    pub link_lifetime: Duration,
    /// Whether a provider's `amr` second factor stands in for the account's own.
    pub trust_provider_mfa: bool,
    /// Flows one browser (binding cookie) may have under way at once; beyond, starting
    /// another is refused (RATE_LIMITED) until one ends or expires.
    pub max_flows_per_binding: u64,
    /// Flows under way at once, over every browser: beyond, starting one is refused
    /// (RATE_LIMITED), so a flood from many addresses cannot fill the table.
    pub max_live_flows: u64,
    /// The origins `redirectTo` may point to (`https://app.example`), lower-case.
    pub redirect_origins: Vec<String>,
    /// Whether any `localhost`/loopback origin is allowed too (development).
    pub any_localhost: bool,
}

/// A flow on its way to its provider.
#[derive(Debug)]
pub struct Started {
    /// Where to send the browser.
    pub authorization_url: String,
    /// The value of the browser's binding cookie (the one it had, or a new one).
    pub binding: OpaqueToken,
}

/// Where the callback sends the browser.
#[derive(Debug)]
pub enum CallbackOutcome {
    /// No flow matches (unknown, used, expired, or another browser's): a plain 400 page,
    /// never a redirect to anywhere a request could name.
    NoFlow,
    /// A redirect to the flow's `redirectTo` with these query parameters, and the session
    /// to set as cookies, if any.
    Redirect {
        to: String,
        signed_in: Option<Box<SignedIn>>,
    },
}

/// What a provider's error at the callback is reported as (`redirectTo?error=…`): only these
/// names, never the provider's own text.
fn provider_error_name(error: &str) -> &'static str {
    match error {
        "access_denied" => "access_denied",
        "login_required" | "interaction_required" | "consent_required" => "login_required",
        "temporarily_unavailable" => "temporarily_unavailable",
        _ => "invalid_response",
    }
}

/// The dependencies of the social sign-in service.
pub struct SocialDeps {
    pub providers: Arc<dyn SocialProviders>,
    pub identities: Arc<dyn SocialIdentityStore>,
    pub flows: Arc<dyn SocialFlowStore>,
    pub users: Arc<dyn AccountStore>,
    pub reads: Arc<dyn HotReads>,
    pub session_store: Arc<dyn SessionRepository>,
    pub hasher: Arc<dyn PasswordHasher>,
    pub sessions: Arc<SessionService>,
    pub mfa: Arc<MfaService>,
    pub notices: Arc<SecurityNotices>,
    pub mailer: Arc<dyn Mailer>,
    pub deferred: Arc<dyn Deferred>,
    pub links: Arc<AccountLinks>,
    pub clock: Arc<dyn Clock>,
    pub audit: AuditTrail,
    pub throttle: Arc<Throttle>,
    pub policy: SocialPolicy,
}

/// Social sign-in's use cases.
pub struct SocialService {
    deps: SocialDeps,
}

impl SocialService {
    pub fn new(deps: SocialDeps) -> Self {
        Self { deps }
    }

    /// The configured providers, for the sign-in page.
    pub fn providers(&self) -> Vec<ProviderInfo> {
        self.deps.providers.list()
    }

    fn provider_name(&self, id: &ProviderId) -> String {
        self.providers()
            .into_iter()
            .find(|p| p.id == *id)
            .map_or_else(|| id.to_string(), |p| p.name)
    }

    /// Starts a sign-in (`caller` = `None`) or the linking of an identity to the caller's
    /// account (which needs a recent authentication). `binding` is the browser's binding
    /// cookie, if it has one; `delivery` how the request that starts the flow holds its
    /// session (cookies or tokens), which is how the callback hands over the new one.
    /// Anonymous, so bounded: the address's allowance (RATE_LIMIT_SOCIAL), the browser's
    /// flows under way and everyone's.
    pub async fn start(
        &self,
        provider: &str,
        redirect_to: &str,
        caller: Option<&Principal>,
        binding: Option<OpaqueToken>,
        delivery: Delivery,
        client: &ClientInfo,
    ) -> Result<Started, ServiceError> {
        let provider = ProviderId::parse(provider)
            .ok()
            .filter(|id| self.providers().iter().any(|p| p.id == *id))
            .ok_or_else(|| ServiceError::InvalidInput {
                field: "provider",
                message: "No provider is configured with this id; see socialProviders.".into(),
            })?;
        let redirect_to = self.checked_redirect(redirect_to)?;
        let purpose = match caller {
            None => FlowPurpose::SignIn,
            Some(caller) => {
                let user = self
                    .deps
                    .users
                    .find_by_id(caller.user_id)
                    .await?
                    .ok_or(AuthFailure::SessionEnded)?;
                self.deps.sessions.require_recent(caller, &user).await?;
                FlowPurpose::Link {
                    user: user.id,
                    session: caller.session_id,
                }
            }
        };
        self.deps.throttle.social_flow(client).await?;
        let now = self.deps.clock.now();
        let binding = match binding {
            Some(binding) => binding,
            None => OpaqueToken::generate().map_err(ServiceError::internal)?,
        };
        self.room_for_a_flow(&binding, now).await?;
        let state = OpaqueToken::generate().map_err(ServiceError::internal)?;
        let redirect = self
            .deps
            .providers
            .authorization_redirect(&provider, state.expose())
            .await
            .map_err(provider_failure)?;
        let flow = SocialFlow {
            id: state.hash(),
            provider,
            purpose,
            binding: binding.hash(),
            pkce_verifier: redirect.pkce_verifier,
            nonce: redirect.nonce,
            redirect_to,
            delivery,
            created_at: now,
            expires_at: now + self.deps.policy.flow_lifetime,
        };
        self.deps.flows.save_flow(&flow).await?;
        Ok(Started {
            authorization_url: redirect.url,
            binding,
        })
    }

    /// Refuses a new flow past the browser's or everyone's cap of flows under way: the
    /// table stays bounded whoever floods it (a cap that cannot be checked refuses too).
    async fn room_for_a_flow(
        &self,
        binding: &OpaqueToken,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), ServiceError> {
        let policy = &self.deps.policy;
        let full = |what: &str| {
            tracing::warn!(
                cap = what,
                "social sign-in flow refused: too many under way"
            );
            ServiceError::RateLimited {
                retry_after_secs: 60,
            }
        };
        let flows = &self.deps.flows;
        if flows.live_flows(Some(&binding.hash()), now).await? >= policy.max_flows_per_binding {
            return Err(full("browser"));
        }
        if flows.live_flows(None, now).await? >= policy.max_live_flows {
            return Err(full("global"));
        }
        Ok(())
    }

    /// Refuses a `redirectTo` that is not an absolute http(s) URL on an allowed origin: the
    /// callback redirects there, so anything else would be an open redirect.
    fn checked_redirect(&self, raw: &str) -> Result<String, ServiceError> {
        let invalid = |message: &str| ServiceError::InvalidInput {
            field: "redirectTo",
            message: message.into(),
        };
        if raw.len() > MAX_REDIRECT_LEN {
            return Err(invalid("redirectTo is longer than 2048 characters."));
        }
        let origin = redirect_origin(raw).ok_or_else(|| {
            invalid("redirectTo must be an absolute http:// or https:// URL of your frontend.")
        })?;
        let policy = &self.deps.policy;
        let allowed = policy.redirect_origins.contains(&origin)
            || (policy.any_localhost && is_loopback_origin(&origin));
        if !allowed {
            return Err(invalid(
                "redirectTo is not on an allowed origin (CORS_ORIGINS or PUBLIC_URL).",
            ));
        }
        Ok(raw.to_owned())
    }

    /// The provider sent the browser back: `state` finds the flow, which must be this
    /// browser's (`binding`). `response` is the provider's answer: its code and `iss`, or its
    /// error name. `previous` is the refresh token of the session the browser held in its
    /// cookies, if any: a sign-in that sets new session cookies ends it, so a session planted
    /// in the browser is never carried over (fixation), as at any other sign-in.
    pub async fn callback(
        &self,
        state: &str,
        binding: Option<&str>,
        response: Result<AuthorizationResponse, String>,
        previous: Option<OpaqueToken>,
        client: &ClientInfo,
    ) -> Result<CallbackOutcome, ServiceError> {
        let Some(binding) = binding else {
            return Ok(CallbackOutcome::NoFlow);
        };
        let now = self.deps.clock.now();
        let binding = OpaqueToken::from_client(binding.to_owned()).hash();
        let state = OpaqueToken::from_client(state.to_owned()).hash();
        let Some(flow) = self.deps.flows.take_flow(&state, &binding, now).await? else {
            return Ok(CallbackOutcome::NoFlow);
        };
        let back = |params: &[(&str, &str)]| CallbackOutcome::Redirect {
            to: with_query(&flow.redirect_to, params),
            signed_in: None,
        };
        let response = match response {
            Ok(response) => response,
            Err(error) => return Ok(back(&[("error", provider_error_name(&error))])),
        };
        let secrets = FlowSecrets {
            pkce_verifier: &flow.pkce_verifier,
            nonce: &flow.nonce,
        };
        let identity = match self
            .deps
            .providers
            .verify(&flow.provider, &response, secrets, now)
            .await
        {
            Ok(identity) => identity,
            Err(ProviderError::Unavailable(why)) => {
                tracing::warn!(provider = %flow.provider, %why, "provider unavailable at the callback");
                return Ok(back(&[("error", "temporarily_unavailable")]));
            }
            Err(error) => {
                tracing::warn!(provider = %flow.provider, %error, "provider response refused");
                return Ok(back(&[("error", "invalid_response")]));
            }
        };
        match flow.purpose {
            FlowPurpose::SignIn => {}
            FlowPurpose::Link { user, session } | FlowPurpose::Reauthenticate { user, session } => {
                let active = self
                    .deps
                    .session_store
                    .find(session)
                    .await?
                    .is_some_and(|s| s.user_id == user && s.is_active_at(now));
                if !active {
                    return Ok(back(&[("error", "session_ended")]));
                }
                return Ok(match self.link(user, &identity, client).await? {
                    Ok(()) => back(&[("linked", flow.provider.as_str())]),
                    Err(reason) => back(&[("error", reason)]),
                });
            }
        }
        let user = match self.account_for(&identity, client).await {
            Ok(user) => user,
            Err(ServiceError::SocialRefused(refusal)) => {
                return Ok(back(&[("error", refusal.reason())]));
            }
            Err(ServiceError::AccountSuspended) => {
                return Ok(back(&[("error", "ACCOUNT_SUSPENDED")]));
            }
            Err(other) => return Err(other),
        };
        let mfa_needed = self.mfa_needed(&user, &identity).await?;
        if flow.delivery == Delivery::Cookies && !mfa_needed {
            return Ok(match self.open(user, &identity, client).await {
                Ok(signed_in) => {
                    self.end_previous(previous, client).await;
                    CallbackOutcome::Redirect {
                        to: flow.redirect_to.clone(),
                        signed_in: Some(Box::new(signed_in)),
                    }
                }
                Err(ServiceError::AccountSuspended) => back(&[("error", "ACCOUNT_SUSPENDED")]),
                Err(ServiceError::EmailNotVerified) => back(&[("error", "EMAIL_NOT_VERIFIED")]),
                Err(other) => return Err(other),
            });
        }
        // A code: for a bearer client, or for a browser whose sign-in waits for a second
        // factor (finishing it answers MFA_REQUIRED with a ticket).
        let code = OpaqueToken::generate().map_err(ServiceError::internal)?;
        self.deps
            .flows
            .save_code(&SocialCode {
                hash: code.hash(),
                kind: SocialCodeKind::SignIn,
                user_id: user.id,
                identity,
                created_at: now,
                expires_at: now + self.deps.policy.code_lifetime,
            })
            .await?;
        Ok(back(&[("code", code.expose())]))
    }

    /// Ends the session whose refresh token the browser brought, if it is one.
    async fn end_previous(&self, previous: Option<OpaqueToken>, client: &ClientInfo) {
        let Some(previous) = previous else { return };
        if let Err(error) = self.deps.sessions.logout(previous, client).await {
            // Already ended, or not a token at all: there is nothing left to end.
            tracing::debug!(%error, "the browser's previous session was not ended");
        }
    }

    /// Exchanges a callback's one-time code for a session (`finishSocialSignIn`).
    pub async fn finish(&self, code: &str, client: &ClientInfo) -> Result<SignedIn, ServiceError> {
        let now = self.deps.clock.now();
        let used = self
            .deps
            .flows
            .take_code(
                &OpaqueToken::from_client(code.to_owned()).hash(),
                SocialCodeKind::SignIn,
                now,
            )
            .await?
            .ok_or_else(|| ServiceError::InvalidInput {
                field: "code",
                message: "This sign-in code is invalid, was already used, or has expired; sign \
                          in again."
                    .into(),
            })?;
        let user = self
            .deps
            .users
            .find_by_id(used.user_id)
            .await?
            .ok_or(AuthFailure::InvalidCredentials)?;
        if self.mfa_needed(&user, &used.identity).await? {
            self.deps.sessions.policy().admit(&user)?;
            return Err(self.deps.mfa.challenge(&user).await);
        }
        self.open(user, &used.identity, client).await
    }

    /// Whether the account's second factor (TOTP or a passkey) is still to be asked for.
    async fn mfa_needed(
        &self,
        user: &User,
        identity: &VerifiedIdentity,
    ) -> Result<bool, ServiceError> {
        if identity.provider_mfa && self.deps.policy.trust_provider_mfa {
            return Ok(false);
        }
        self.deps.sessions.has_second_factor(user).await
    }

    async fn open(
        &self,
        user: User,
        identity: &VerifiedIdentity,
        client: &ClientInfo,
    ) -> Result<SignedIn, ServiceError> {
        let methods = if identity.provider_mfa && self.deps.policy.trust_provider_mfa {
            AuthMethods::FederatedWithMfa
        } else {
            AuthMethods::Federated
        };
        let id = user.id;
        let signed_in = self.deps.sessions.open(user, methods, client).await?;
        self.deps.audit.record(
            Record::own(AuditKind::SocialSignIn, id, client)
                .detail(format!("provider: {}", identity.provider)),
        );
        Ok(signed_in)
    }

    /// The account an identity signs in to, by the linking rules (see the module's
    /// comment); creates or replaces one where they say so.
    async fn account_for(
        &self,
        identity: &VerifiedIdentity,
        client: &ClientInfo,
    ) -> Result<User, ServiceError> {
        if let Some(linked) = self.deps.identities.find(&identity.key).await? {
            let user = self
                .deps
                .users
                .find_by_id(linked.user_id)
                .await?
                .ok_or(AuthFailure::InvalidCredentials)?;
            if user.suspension.is_some() {
                return Err(ServiceError::AccountSuspended);
            }
            return Ok(user);
        }
        let Some(email) = identity.email.clone() else {
            return Err(self.refuse(SocialRefusal::EmailRequired, None, identity, client));
        };
        let existing = self.deps.reads.user_by_email(&email).await?;
        let replacing = match existing {
            None => None,
            Some(account) if !identity.email_verified => {
                return Err(self.refuse(
                    SocialRefusal::UnverifiedProviderEmail,
                    Some(account.id),
                    identity,
                    client,
                ));
            }
            Some(account) if account.email_verified_at.is_some() || account.role != Role::User => {
                self.offer_link(&account, identity).await?;
                return Err(self.refuse(
                    SocialRefusal::AccountExists,
                    Some(account.id),
                    identity,
                    client,
                ));
            }
            Some(unproven) => Some(Replacing {
                user: unproven.id,
                credential_version: unproven.credential_version,
            }),
        };
        let now = self.deps.clock.now();
        let mut user = User::new(
            email,
            None,
            Role::User,
            // Matches nothing; `has_password` says so too.
            self.deps.hasher.dummy_hash().clone(),
            identity.email_verified.then_some(now),
            now,
        );
        user.has_password = false;
        let linked = SocialIdentity::link(user.id, identity, now);
        match self
            .deps
            .identities
            .create_with_identity(&user, &linked, replacing)
            .await?
        {
            CreateOutcome::Created => {}
            // A race: the address or the identity was taken, or the account to replace
            // changed, since they were read. Refused as the rules would refuse it now.
            CreateOutcome::EmailTaken | CreateOutcome::ReplacedChanged => {
                return Err(self.refuse(SocialRefusal::AccountExists, None, identity, client));
            }
            CreateOutcome::IdentityTaken => {
                return Err(ServiceError::Conflict(
                    "This identity was linked to an account at the same moment; sign in again.",
                ));
            }
        }
        if let Some(old) = replacing {
            tracing::warn!(replaced = %old.user, user_id = %user.id, "unverified account replaced by its provider-verified owner");
            self.deps.audit.record(Record {
                kind: AuditKind::SocialAccountReplaced,
                actor: Some(user.id),
                subject: Some(old.user),
                client: Some(client),
                detail: Some(format!(
                    "provider: {}; replaced by {}",
                    identity.provider, user.id
                )),
            });
        }
        self.deps.audit.record(
            Record::own(AuditKind::SocialAccountCreated, user.id, client)
                .detail(format!("provider: {}", identity.provider)),
        );
        Ok(user)
    }

    fn refuse(
        &self,
        refusal: SocialRefusal,
        account: Option<UserId>,
        identity: &VerifiedIdentity,
        client: &ClientInfo,
    ) -> ServiceError {
        self.deps.audit.record(Record {
            kind: AuditKind::SocialSignInRefused,
            actor: None,
            subject: account,
            client: Some(client),
            detail: Some(format!(
                "provider: {}; {}",
                identity.provider,
                refusal.reason()
            )),
        });
        ServiceError::SocialRefused(refusal)
    }

    /// Emails the account a link that links `identity` to it once followed.
    async fn offer_link(
        &self,
        account: &User,
        identity: &VerifiedIdentity,
    ) -> Result<(), ServiceError> {
        let now = self.deps.clock.now();
        let token = OpaqueToken::generate().map_err(ServiceError::internal)?;
        self.deps
            .flows
            .save_code(&SocialCode {
                hash: token.hash(),
                kind: SocialCodeKind::Link,
                user_id: account.id,
                identity: identity.clone(),
                created_at: now,
                expires_at: now + self.deps.policy.link_lifetime,
            })
            .await?;
        let link = format!(
            "{}/link-identity?token={}",
            self.deps.links.public_url.trim_end_matches('/'),
            token.expose()
        );
        let email = OutgoingEmail {
            to: account.email.as_str().to_owned(),
            subject: "Link a sign-in to your account?".into(),
            text: format!(
                "Someone signed in with {} using this email address. To let that sign-in open \
                 your account from now on, open this link within {} minutes:\n\n{link}\n\nIf \
                 it was not you, ignore this email: nothing changes.\n",
                self.provider_name(&identity.provider),
                self.deps.policy.link_lifetime.num_minutes()
            ),
        };
        let mailer = self.deps.mailer.clone();
        self.deps.deferred.defer(
            "identity link",
            Box::pin(async move {
                mailer.send(email).await;
            }),
        );
        Ok(())
    }

    /// Follows the link emailed to an account (`confirmSocialLink`): links the identity it
    /// was sent for. Once only, within its lifetime, and only while the account is as it was
    /// when the link was sent: a change since (a new password or email, a suspension, …)
    /// voids it, like the account's other emailed links.
    pub async fn confirm_link(&self, token: &str, client: &ClientInfo) -> Result<(), ServiceError> {
        let now = self.deps.clock.now();
        let invalid = || ServiceError::InvalidInput {
            field: "token",
            message: "This link is invalid, was already used, or has expired.".into(),
        };
        let code = self
            .deps
            .flows
            .take_code(
                &OpaqueToken::from_client(token.to_owned()).hash(),
                SocialCodeKind::Link,
                now,
            )
            .await?
            .ok_or_else(invalid)?;
        let account = self
            .deps
            .users
            .find_by_id(code.user_id)
            .await?
            .ok_or_else(invalid)?;
        // `>=`: a database that keeps whole seconds must not let a change in the same second
        // through; an account changed with its link being sent only has to sign in again.
        if account.updated_at >= code.created_at || account.suspension.is_some() {
            return Err(invalid());
        }
        match self.link(code.user_id, &code.identity, client).await? {
            Ok(()) => Ok(()),
            Err(_) => Err(ServiceError::Conflict(
                "This identity, or another one at the same provider, is linked already.",
            )),
        }
    }

    /// Links `identity` to `user`; `Err` names why not.
    async fn link(
        &self,
        user: UserId,
        identity: &VerifiedIdentity,
        client: &ClientInfo,
    ) -> Result<Result<(), &'static str>, ServiceError> {
        let now = self.deps.clock.now();
        let linked = SocialIdentity::link(user, identity, now);
        match self.deps.identities.link(&linked).await? {
            LinkOutcome::Linked => {}
            LinkOutcome::IdentityTaken => return Ok(Err("IDENTITY_TAKEN")),
            LinkOutcome::ProviderTaken => return Ok(Err("PROVIDER_TAKEN")),
            LinkOutcome::UnknownUser => return Ok(Err("session_ended")),
        }
        self.deps.audit.record(
            Record::own(AuditKind::IdentityLinked, user, client)
                .detail(format!("provider: {}", identity.provider)),
        );
        self.deps
            .notices
            .send(
                user,
                Notice::IdentityLinked(self.provider_name(&identity.provider)),
                now,
                client,
            )
            .await;
        Ok(Ok(()))
    }

    /// A user's identities, oldest first: for the user and for administrators.
    pub async fn identities(
        &self,
        caller: &Principal,
        user: UserId,
    ) -> Result<Vec<SocialIdentity>, ServiceError> {
        if caller.user_id != user {
            caller.require_admin()?;
        }
        Ok(self.deps.identities.list_for_user(user).await?)
    }

    /// Unlinks the caller's identity at `provider` (recent authentication; never the last
    /// way to sign in).
    pub async fn unlink(
        &self,
        caller: &Principal,
        provider: &str,
        client: &ClientInfo,
    ) -> Result<(), ServiceError> {
        let user = self
            .deps
            .users
            .find_by_id(caller.user_id)
            .await?
            .ok_or(AuthFailure::SessionEnded)?;
        self.deps.sessions.require_recent(caller, &user).await?;
        let not_linked = || ServiceError::NotFound("No identity at this provider is linked.");
        let provider = ProviderId::parse(provider).map_err(|_| not_linked())?;
        match self
            .deps
            .identities
            .unlink_unless_last(user.id, &provider)
            .await?
        {
            UnlinkOutcome::Unlinked => {}
            UnlinkOutcome::NotLinked => return Err(not_linked()),
            UnlinkOutcome::LastMethod => {
                return Err(ServiceError::Conflict(
                    "This is the account's last way to sign in: set a password (reset it by \
                     email) or add a passkey first.",
                ));
            }
        }
        let now = self.deps.clock.now();
        self.deps.audit.record(
            Record::own(AuditKind::IdentityUnlinked, user.id, client)
                .detail(format!("provider: {provider}")),
        );
        self.deps
            .notices
            .send(
                user.id,
                Notice::IdentityUnlinked(self.provider_name(&provider)),
                now,
                client,
            )
            .await;
        Ok(())
    }

    /// Deletes expired flows and codes; returns how many.
    pub async fn delete_expired(&self) -> Result<u64, ServiceError> {
        Ok(self
            .deps
            .flows
            .delete_expired(self.deps.clock.now())
            .await?)
    }
}

/// A provider that failed at the start.
fn provider_failure(error: ProviderError) -> ServiceError {
    match error {
        ProviderError::UnknownProvider => ServiceError::InvalidInput {
            field: "provider",
            message: "No provider is configured with this id; see socialProviders.".into(),
        },
        ProviderError::Unavailable(why) => ServiceError::Unavailable {
            retry_after_secs: 10,
            source: format!("the provider is unavailable: {why}").into(),
        },
        ProviderError::Rejected(why) => ServiceError::internal(why),
    }
}

/// `scheme://host[:port]` of an absolute http(s) URL, lower-case; `None` for anything else
/// (relative, another scheme, credentials, backslashes, spaces or control characters).
pub fn redirect_origin(raw: &str) -> Option<String> {
    if raw
        .chars()
        .any(|c| c.is_control() || c.is_whitespace() || c == '\\')
    {
        return None;
    }
    let (scheme, rest) = raw.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return None;
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    Some(format!("{scheme}://{}", authority.to_ascii_lowercase()))
}

fn is_loopback_origin(origin: &str) -> bool {
    let host = origin.split_once("://").map_or("", |(_, rest)| rest);
    let host = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host.split(':').next().unwrap_or_default(),
    };
    host == "localhost" || host == "127.0.0.1" || host == "::1"
}

/// `url` with `params` added to its query (before any fragment), percent-encoded.
fn with_query(url: &str, params: &[(&str, &str)]) -> String {
    let (base, fragment) = match url.split_once('#') {
        Some((base, fragment)) => (base, Some(fragment)),
        None => (url, None),
    };
    let mut out = base.to_owned();
    for (i, (name, value)) in params.iter().enumerate() {
        let separator = if i == 0 && !base.contains('?') {
            '?'
        } else {
            '&'
        };
        out.push(separator);
        out.push_str(&encode(name));
        out.push('=');
        out.push_str(&encode(value));
    }
    if let Some(fragment) = fragment {
        out.push('#');
        out.push_str(fragment);
    }
    out
}

fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::application::testing::Harness;
    use crate::domain::{Email, IdentityKey, NewUser, Password};

    const APP: &str = "https://app.example.com/signed-in";

    fn identity(subject: &str, email: Option<&str>, verified: bool) -> VerifiedIdentity {
        VerifiedIdentity {
            provider: ProviderId::parse("corp").unwrap(),
            key: IdentityKey::new("https://idp.example", subject).unwrap(),
            email: email.map(|e| Email::parse(e).unwrap()),
            email_verified: verified && email.is_some(),
            provider_mfa: false,
        }
    }

    /// A started sign-in: its state (from the authorization URL) and the browser's binding.
    async fn started(h: &Harness, caller: Option<&Principal>) -> (String, OpaqueToken) {
        let started = h
            .services
            .social
            .start(
                "corp",
                APP,
                caller,
                None,
                Delivery::Code,
                &ClientInfo::default(),
            )
            .await
            .unwrap();
        let state = started
            .authorization_url
            .split_once("state=")
            .unwrap()
            .1
            .to_owned();
        (state, started.binding)
    }

    async fn come_back(h: &Harness, state: &str, binding: &OpaqueToken) -> CallbackOutcome {
        h.services
            .social
            .callback(
                state,
                Some(binding.expose()),
                Ok(AuthorizationResponse {
                    code: state.to_owned(),
                    iss: None,
                }),
                None,
                &ClientInfo::default(),
            )
            .await
            .unwrap()
    }

    /// The query parameter `name` of where the callback redirected.
    fn param(outcome: &CallbackOutcome, name: &str) -> Option<String> {
        let CallbackOutcome::Redirect { to, .. } = outcome else {
            panic!("no redirect: {outcome:?}");
        };
        assert!(to.starts_with(APP), "{to}");
        to.split(['?', '&'])
            .find_map(|pair| pair.strip_prefix(&format!("{name}=")))
            .map(str::to_owned)
    }

    /// A whole sign-in with `answer` from the provider: where the callback sent the browser.
    async fn sign_in(h: &Harness, answer: VerifiedIdentity) -> CallbackOutcome {
        let (state, binding) = started(h, None).await;
        h.providers.answer(Ok(answer));
        come_back(h, &state, &binding).await
    }

    async fn finish(h: &Harness, outcome: &CallbackOutcome) -> Result<SignedIn, ServiceError> {
        let code = param(outcome, "code").expect("a code");
        h.services
            .social
            .finish(&code, &ClientInfo::default())
            .await
    }

    async fn register(h: &Harness, email: &str) -> SignedIn {
        h.services
            .auth
            .register(
                NewUser {
                    email: Email::parse(email).unwrap(),
                    password: Password::new("correct horse battery".into()).unwrap(),
                    display_name: None,
                },
                &ClientInfo::default(),
            )
            .await
            .unwrap()
    }

    async fn principal(h: &Harness, signed_in: &SignedIn) -> Principal {
        h.services
            .sessions
            .authenticate(&signed_in.access_token.token)
            .await
            .unwrap()
            .principal
    }

    #[tokio::test]
    async fn a_new_identity_creates_an_account_without_a_password_and_its_code_works_once() {
        let h = Harness::new().await;
        let outcome = sign_in(&h, identity("s-1", Some("ada@example.com"), true)).await;
        let code = param(&outcome, "code").unwrap();

        let signed_in = finish(&h, &outcome).await.unwrap();

        let user = h.user(signed_in.user.id).await.unwrap();
        assert_eq!(user.email.as_str(), "ada@example.com");
        assert!(!user.has_password);
        assert!(
            user.email_verified_at.is_some(),
            "the provider vouched for it"
        );
        assert_eq!(
            h.stores
                .social_identities
                .list_for_user(user.id)
                .await
                .unwrap()
                .len(),
            1
        );
        let again = h
            .services
            .social
            .finish(&code, &ClientInfo::default())
            .await;
        assert!(matches!(
            again,
            Err(ServiceError::InvalidInput { field: "code", .. })
        ));
        // And the same identity signs in to the same account.
        let back = finish(
            &h,
            &sign_in(&h, identity("s-1", Some("ada@example.com"), true)).await,
        )
        .await
        .unwrap();
        assert_eq!(back.user.id, user.id);
    }

    #[tokio::test]
    async fn an_unverified_provider_email_makes_an_unverified_account() {
        let h = Harness::new().await;
        let outcome = sign_in(&h, identity("s-1", Some("ada@example.com"), false)).await;
        let signed_in = finish(&h, &outcome).await.unwrap();
        assert_eq!(
            h.user(signed_in.user.id).await.unwrap().email_verified_at,
            None
        );
        let outcome = sign_in(&h, identity("s-2", None, false)).await;
        assert_eq!(param(&outcome, "error").as_deref(), Some("EMAIL_REQUIRED"));
    }

    #[tokio::test]
    async fn a_callback_in_another_browser_replayed_or_late_finds_no_flow() {
        let h = Harness::new().await;
        let (state, binding) = started(&h, None).await;
        let other = OpaqueToken::generate().unwrap();
        h.providers
            .answer(Ok(identity("s-1", Some("ada@example.com"), true)));

        assert!(matches!(
            come_back(&h, &state, &other).await,
            CallbackOutcome::NoFlow
        ));
        let no_cookie = h
            .services
            .social
            .callback(
                &state,
                None,
                Err("access_denied".into()),
                None,
                &ClientInfo::default(),
            )
            .await
            .unwrap();
        assert!(matches!(no_cookie, CallbackOutcome::NoFlow));
        // The flow is still its own browser's.
        assert!(param(&come_back(&h, &state, &binding).await, "code").is_some());
        // Replayed: used.
        h.providers
            .answer(Ok(identity("s-1", Some("ada@example.com"), true)));
        assert!(matches!(
            come_back(&h, &state, &binding).await,
            CallbackOutcome::NoFlow
        ));
        // Late: expired.
        let (state, binding) = started(&h, None).await;
        h.clock.advance(Duration::minutes(11));
        h.providers
            .answer(Ok(identity("s-1", Some("ada@example.com"), true)));
        assert!(matches!(
            come_back(&h, &state, &binding).await,
            CallbackOutcome::NoFlow
        ));
    }

    #[tokio::test]
    async fn a_code_expires() {
        let h = Harness::new().await;
        let outcome = sign_in(&h, identity("s-1", Some("ada@example.com"), true)).await;
        h.clock.advance(Duration::minutes(3));
        assert!(matches!(
            finish(&h, &outcome).await,
            Err(ServiceError::InvalidInput { field: "code", .. })
        ));
    }

    #[tokio::test]
    async fn provider_failures_and_errors_come_back_as_names_never_as_text() {
        let h = Harness::new().await;
        let (state, binding) = started(&h, None).await;
        h.providers
            .answer(Err(ProviderError::Rejected("wrong nonce".into())));
        assert_eq!(
            param(&come_back(&h, &state, &binding).await, "error").as_deref(),
            Some("invalid_response")
        );
        let (state, binding) = started(&h, None).await;
        h.providers
            .answer(Err(ProviderError::Unavailable("timeout".into())));
        assert_eq!(
            param(&come_back(&h, &state, &binding).await, "error").as_deref(),
            Some("temporarily_unavailable")
        );
        let (state, binding) = started(&h, None).await;
        let denied = h
            .services
            .social
            .callback(
                &state,
                Some(binding.expose()),
                Err("<b>evil</b>".into()),
                None,
                &ClientInfo::default(),
            )
            .await
            .unwrap();
        assert_eq!(param(&denied, "error").as_deref(), Some("invalid_response"));
        h.providers
            .fail_start(ProviderError::Unavailable("down".into()));
        let start = h
            .services
            .social
            .start(
                "corp",
                APP,
                None,
                None,
                Delivery::Code,
                &ClientInfo::default(),
            )
            .await;
        assert!(
            matches!(start, Err(ServiceError::Unavailable { .. })),
            "{start:?}"
        );
    }

    #[tokio::test]
    async fn a_redirect_off_the_allowed_origins_or_an_unknown_provider_is_refused() {
        let h = Harness::new().await;
        for bad in [
            "https://evil.example/",
            "https://app.example.com.evil.example/",
            "https://app.example.com@evil.example/",
            "/relative",
            "javascript:alert(1)",
        ] {
            let refused = h
                .services
                .social
                .start(
                    "corp",
                    bad,
                    None,
                    None,
                    Delivery::Code,
                    &ClientInfo::default(),
                )
                .await;
            assert!(
                matches!(
                    refused,
                    Err(ServiceError::InvalidInput {
                        field: "redirectTo",
                        ..
                    })
                ),
                "{bad}"
            );
        }
        let long = format!("{APP}?{}", "x".repeat(MAX_REDIRECT_LEN));
        assert!(
            h.services
                .social
                .start(
                    "corp",
                    &long,
                    None,
                    None,
                    Delivery::Code,
                    &ClientInfo::default()
                )
                .await
                .is_err()
        );
        let unknown = h
            .services
            .social
            .start(
                "google",
                APP,
                None,
                None,
                Delivery::Code,
                &ClientInfo::default(),
            )
            .await;
        assert!(matches!(
            unknown,
            Err(ServiceError::InvalidInput {
                field: "provider",
                ..
            })
        ));
    }

    #[tokio::test]
    async fn a_verified_email_of_a_verified_account_is_refused_and_that_address_gets_a_link() {
        let h = Harness::new().await;
        let ada = register(&h, "ada@example.com").await;
        h.stores
            .accounts
            .mark_email_verified(ada.user.id, &ada.user.email, h.clock.now())
            .await
            .unwrap();
        h.clock.advance(Duration::seconds(1));
        h.settle().await;
        let before = h.sent().len();

        let outcome = sign_in(&h, identity("s-1", Some("ada@example.com"), true)).await;

        assert_eq!(param(&outcome, "error").as_deref(), Some("ACCOUNT_EXISTS"));
        assert!(
            h.stores
                .social_identities
                .list_for_user(ada.user.id)
                .await
                .unwrap()
                .is_empty()
        );
        h.settle().await;
        let sent = h.sent();
        assert_eq!(sent.len(), before + 1);
        let mail = sent.last().unwrap();
        assert_eq!(mail.to, "ada@example.com");
        let token = mail
            .text
            .split("link-identity?token=")
            .nth(1)
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .to_owned();
        h.services
            .social
            .confirm_link(&token, &ClientInfo::default())
            .await
            .unwrap();
        assert_eq!(
            h.stores
                .social_identities
                .list_for_user(ada.user.id)
                .await
                .unwrap()
                .len(),
            1
        );
        assert!(
            h.services
                .social
                .confirm_link(&token, &ClientInfo::default())
                .await
                .is_err(),
            "used once"
        );
        let back = finish(
            &h,
            &sign_in(&h, identity("s-1", Some("ada@example.com"), true)).await,
        )
        .await
        .unwrap();
        assert_eq!(back.user.id, ada.user.id);
    }

    #[tokio::test]
    async fn an_unverified_local_account_is_replaced_and_its_sessions_end() {
        let h = Harness::new().await;
        // Mallory registered Ada's address and keeps a session on it.
        let squatter = register(&h, "ada@example.com").await;

        let outcome = sign_in(&h, identity("ada", Some("ada@example.com"), true)).await;
        let ada = finish(&h, &outcome).await.unwrap();

        assert_ne!(ada.user.id, squatter.user.id);
        assert_eq!(h.user(squatter.user.id).await, None);
        assert!(
            h.services
                .sessions
                .authenticate(&squatter.access_token.token)
                .await
                .is_err(),
            "the squatter's session ended"
        );
        let login = h
            .services
            .auth
            .login(
                Email::parse("ada@example.com").unwrap(),
                "correct horse battery".into(),
                &ClientInfo::default(),
            )
            .await;
        assert!(login.is_err(), "the squatter's password opens nothing");
    }

    #[tokio::test]
    async fn an_unverified_provider_email_of_an_existing_account_is_refused() {
        let h = Harness::new().await;
        let ada = register(&h, "ada@example.com").await;
        let outcome = sign_in(&h, identity("x", Some("ada@example.com"), false)).await;
        assert_eq!(
            param(&outcome, "error").as_deref(),
            Some("UNVERIFIED_PROVIDER_EMAIL")
        );
        assert!(h.user(ada.user.id).await.is_some(), "nothing replaced");
    }

    fn from_address(ip: &str) -> ClientInfo {
        ClientInfo {
            ip: Some(ip.parse().unwrap()),
            user_agent: None,
        }
    }

    async fn start_from(
        h: &Harness,
        binding: Option<&OpaqueToken>,
        client: &ClientInfo,
    ) -> Result<Started, ServiceError> {
        h.services
            .social
            .start(
                "corp",
                APP,
                None,
                binding.map(|b| OpaqueToken::from_client(b.expose().to_owned())),
                Delivery::Code,
                client,
            )
            .await
    }

    fn limited(result: &Result<Started, ServiceError>) -> bool {
        matches!(result, Err(ServiceError::RateLimited { retry_after_secs }) if *retry_after_secs > 0)
    }

    #[tokio::test]
    async fn starting_flows_is_limited_per_client_address() {
        let mut policies = crate::application::testing::policies();
        policies.throttle.social_per_ip = Some(crate::application::ports::Quota {
            burst: 3,
            period: std::time::Duration::from_secs(600),
        });
        let h = Harness::with(policies).await;
        let flooder = from_address("203.0.113.7");
        for _ in 0..3 {
            start_from(&h, None, &flooder).await.unwrap();
        }
        let refused = start_from(&h, None, &flooder).await;
        assert!(limited(&refused), "{refused:?}");
        // Another address keeps its own allowance.
        start_from(&h, None, &from_address("198.51.100.1"))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn flows_under_way_are_capped_per_browser_and_overall() {
        let mut policies = crate::application::testing::policies();
        policies.social.max_flows_per_binding = 2;
        policies.social.max_live_flows = 4;
        let h = Harness::with(policies).await;
        let client = ClientInfo::default();
        let first = start_from(&h, None, &client).await.unwrap();
        start_from(&h, Some(&first.binding), &client).await.unwrap();
        let refused = start_from(&h, Some(&first.binding), &client).await;
        assert!(
            limited(&refused),
            "a third flow for one browser: {refused:?}"
        );
        // A flow that ends makes room for that browser again.
        let state = first
            .authorization_url
            .split_once("state=")
            .unwrap()
            .1
            .to_owned();
        h.providers
            .answer(Ok(identity("s-cap", Some("cap@example.com"), true)));
        come_back(&h, &state, &first.binding).await;
        start_from(&h, Some(&first.binding), &client).await.unwrap();
        // Dropping the cookie (a new binding each time) still meets the global cap.
        start_from(&h, None, &client).await.unwrap();
        start_from(&h, None, &client).await.unwrap();
        let refused = start_from(&h, None, &client).await;
        assert!(limited(&refused), "past the global cap: {refused:?}");
        assert_eq!(
            h.stores
                .social_flows
                .live_flows(None, h.clock.now())
                .await
                .unwrap(),
            4,
            "nothing stored for a refused start"
        );
        // Expired flows do not count.
        h.clock.advance(Duration::minutes(11));
        start_from(&h, Some(&first.binding), &client).await.unwrap();
    }

    async fn with_second_factor(h: &Harness, trust: bool) -> (Harness, UserId) {
        let _ = h;
        let mut policies = crate::application::testing::policies();
        policies.social.trust_provider_mfa = trust;
        let h = Harness::with(policies).await;
        let created = finish(
            &h,
            &sign_in(&h, identity("s-1", Some("ada@example.com"), true)).await,
        )
        .await
        .unwrap();
        let factor = crate::domain::TotpFactor {
            user_id: created.user.id,
            sealed_secret: "sealed".into(),
            created_at: h.clock.now(),
            confirmed_at: None,
            last_step: 0,
        };
        assert!(h.stores.factors.begin_enrollment(&factor).await.unwrap());
        assert!(
            h.stores
                .factors
                .confirm(created.user.id, "sealed", 1, &[], h.clock.now())
                .await
                .unwrap()
        );
        (h, created.user.id)
    }

    #[tokio::test]
    async fn a_second_factor_is_still_asked_unless_the_provider_asserts_one_and_it_is_trusted() {
        let placeholder = Harness::new().await;
        for (trust, provider_mfa, asked) in [
            (false, false, true),
            (false, true, true),
            (true, false, true),
            (true, true, false),
        ] {
            let (h, _user) = with_second_factor(&placeholder, trust).await;
            let answer = VerifiedIdentity {
                provider_mfa,
                ..identity("s-1", Some("ada@example.com"), true)
            };
            let result = finish(&h, &sign_in(&h, answer).await).await;
            assert_eq!(
                matches!(result, Err(ServiceError::MfaRequired { .. })),
                asked,
                "trust {trust}, provider MFA {provider_mfa}: {result:?}"
            );
        }
    }

    #[tokio::test]
    async fn the_last_passkey_of_an_account_without_a_password_or_identity_stays() {
        let h = Harness::new().await;
        let created = finish(
            &h,
            &sign_in(&h, identity("s-9", Some("kim@example.com"), true)).await,
        )
        .await
        .unwrap();
        let user = h.user(created.user.id).await.unwrap();
        let passkey = |seed: u8| crate::domain::Passkey {
            id: crate::domain::PasskeyId::generate(),
            user_id: user.id,
            credential_id: crate::domain::CredentialId::from_bytes(vec![seed; 32]).unwrap(),
            credential: format!(r#"{{"cred":{{"seed":{seed}}}}}"#),
            name: crate::domain::PasskeyName::parse(&format!("Key {seed}")).unwrap(),
            created_at: h.clock.now(),
            last_used_at: None,
            sign_count: 0,
            backup_eligible: true,
            backed_up: false,
        };
        let (first, second) = (passkey(1), passkey(2));
        h.stores.passkeys.add(&first).await.unwrap();
        h.stores.passkeys.add(&second).await.unwrap();
        // A passkey is now the account's second factor: a recent proof must include one.
        let stepped_up = h
            .services
            .sessions
            .open(user.clone(), AuthMethods::Passkey, &ClientInfo::default())
            .await
            .unwrap();
        let caller = principal(&h, &stepped_up).await;
        let client = ClientInfo::default();

        // With the identity still linked, a passkey may go, and then the identity.
        h.services
            .passkeys
            .remove(&caller, first.id, &client)
            .await
            .unwrap();
        h.services
            .social
            .unlink(&caller, "corp", &client)
            .await
            .unwrap();

        let last = h
            .services
            .passkeys
            .remove(&caller, second.id, &client)
            .await;
        assert!(matches!(last, Err(ServiceError::Forbidden(_))), "{last:?}");
        assert_eq!(h.stores.passkeys.list(user.id).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn linking_needs_a_recent_sign_in_and_unlinking_keeps_the_last_way_in() {
        let h = Harness::new().await;
        let created = finish(
            &h,
            &sign_in(&h, identity("s-1", Some("ada@example.com"), true)).await,
        )
        .await
        .unwrap();
        let caller = principal(&h, &created).await;

        let last = h
            .services
            .social
            .unlink(&caller, "corp", &ClientInfo::default())
            .await;
        assert!(matches!(last, Err(ServiceError::Conflict(_))), "{last:?}");

        let bob = register(&h, "bob@example.com").await;
        let bob_caller = principal(&h, &bob).await;
        let (state, binding) = started(&h, Some(&bob_caller)).await;
        h.providers
            .answer(Ok(identity("b-1", Some("bob@corp.example"), true)));
        let linked = come_back(&h, &state, &binding).await;
        assert_eq!(param(&linked, "linked").as_deref(), Some("corp"));
        assert_eq!(
            h.stores
                .social_identities
                .list_for_user(bob.user.id)
                .await
                .unwrap()
                .len(),
            1
        );
        h.services
            .social
            .unlink(&bob_caller, "corp", &ClientInfo::default())
            .await
            .unwrap();
        assert!(
            h.stores
                .social_identities
                .list_for_user(bob.user.id)
                .await
                .unwrap()
                .is_empty()
        );

        h.clock.advance(Duration::minutes(11));
        let stale = principal(&h, &bob).await;
        let refused = h
            .services
            .social
            .start(
                "corp",
                APP,
                Some(&stale),
                None,
                Delivery::Code,
                &ClientInfo::default(),
            )
            .await;
        assert!(matches!(
            refused,
            Err(ServiceError::ReauthenticationRequired)
        ));
    }

    #[tokio::test]
    async fn an_identity_linked_to_one_account_is_refused_to_another() {
        let h = Harness::new().await;
        finish(
            &h,
            &sign_in(&h, identity("s-1", Some("ada@example.com"), true)).await,
        )
        .await
        .unwrap();
        let bob = register(&h, "bob@example.com").await;
        let bob_caller = principal(&h, &bob).await;
        let (state, binding) = started(&h, Some(&bob_caller)).await;
        h.providers
            .answer(Ok(identity("s-1", Some("ada@example.com"), true)));
        let refused = come_back(&h, &state, &binding).await;
        assert_eq!(param(&refused, "error").as_deref(), Some("IDENTITY_TAKEN"));
    }

    #[test]
    fn only_absolute_http_urls_have_an_origin() {
        assert_eq!(
            redirect_origin("https://App.Example:8443/done?x=1").as_deref(),
            Some("https://app.example:8443")
        );
        for bad in [
            "/relative",
            "//evil.example/x",
            "javascript:alert(1)",
            "https://user@evil.example",
            "https://app.example@evil.example/",
            "https:\\\\evil.example",
            "https://app.example /x",
            "https://",
            "ftp://app.example",
        ] {
            assert_eq!(redirect_origin(bad), None, "{bad}");
        }
        assert!(is_loopback_origin("http://localhost:5173"));
        assert!(is_loopback_origin("http://[::1]:80"));
        assert!(!is_loopback_origin("http://localhost.evil.example"));
    }

    #[test]
    fn query_parameters_are_added_before_the_fragment_and_encoded() {
        assert_eq!(
            with_query("https://app.example/done#top", &[("code", "a b&c")]),
            "https://app.example/done?code=a%20b%26c#top"
        );
        assert_eq!(
            with_query(
                "https://app.example/done?from=x",
                &[("error", "access_denied")]
            ),
            "https://app.example/done?from=x&error=access_denied"
        );
    }

    #[test]
    fn a_providers_error_text_never_reaches_the_redirect() {
        assert_eq!(provider_error_name("access_denied"), "access_denied");
        assert_eq!(
            provider_error_name("<script>alert(1)</script>"),
            "invalid_response"
        );
    }
}
