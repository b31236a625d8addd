//! Passkeys (WebAuthn): enrolling them and signing in with one, no password or email typed.
//!
//! The state of a ceremony lives in the database (any instance finishes what another
//! started), bound to what started it (the session of an enrolment; nothing for a sign-in,
//! which is unauthenticated and so throttled per address), and it is taken, once, by one
//! conditional delete before its response is verified: webauthn-rs verifies the same state
//! twice, so single use is ours.

use std::sync::Arc;

use chrono::Duration;
use serde_json::Value;

use crate::domain::{
    AccountStore, AccountTokenRepository, AuditKind, AuthMethods, Ceremony, CeremonyBinding,
    CeremonyId, CeremonyPurpose, CredentialId, OpaqueToken, Passkey, PasskeyId, PasskeyName,
    PasskeyRemoval, PasskeyStore, PasskeyUse, RepositoryError, SocialIdentityStore, TokenPurpose,
    User, UserId, ValidationError,
};

use super::audit::{AuditTrail, Record};
use super::caller::{ClientInfo, Principal};
use super::error::{AuthFailure, ServiceError};
use super::notices::{Notice, SecurityNotices};
use super::passkey_ports::{PasskeyAccount, PasskeyCeremonies, PasskeyFailure};
use super::ports::Clock;
use super::second_factor::MfaPolicy;
use super::sessions::{Reauthenticated, SessionService, SignedIn};
use super::throttle::Throttle;

/// How long a ceremony waits for its response, and how many passkeys an account may hold.
#[derive(Debug, Clone, Copy)]
pub struct PasskeyPolicy {
    pub ceremony_lifetime: Duration,
    pub max_per_account: usize,
}

impl Default for PasskeyPolicy {
    fn default() -> Self {
        Self {
            ceremony_lifetime: Duration::minutes(5),
            max_per_account: 20,
        }
    }
}

/// A started ceremony: what the browser is handed.
#[derive(Debug, Clone)]
pub struct PasskeyChallenge {
    pub id: CeremonyId,
    /// `PublicKeyCredentialCreationOptions` or `…RequestOptions`, as the browser's JSON.
    pub options: Value,
}

/// What [`PasskeyService`] works with.
pub struct PasskeyDeps {
    pub passkeys: Arc<dyn PasskeyStore>,
    /// The account's identities at OpenID providers: another way to sign in.
    pub identities: Arc<dyn SocialIdentityStore>,
    pub users: Arc<dyn AccountStore>,
    pub ceremonies: Arc<dyn PasskeyCeremonies>,
    pub sessions: Arc<SessionService>,
    pub clock: Arc<dyn Clock>,
    pub audit: AuditTrail,
    pub throttle: Arc<Throttle>,
    pub notices: Arc<SecurityNotices>,
    /// The MFA tickets a passkey completes as a second factor.
    pub tickets: Arc<dyn AccountTokenRepository>,
    /// How long tickets live and how many tries each allows.
    pub mfa: MfaPolicy,
    pub policy: PasskeyPolicy,
}

/// Enrols passkeys and signs in with them.
pub struct PasskeyService {
    passkeys: Arc<dyn PasskeyStore>,
    identities: Arc<dyn SocialIdentityStore>,
    users: Arc<dyn AccountStore>,
    ceremonies: Arc<dyn PasskeyCeremonies>,
    sessions: Arc<SessionService>,
    clock: Arc<dyn Clock>,
    audit: AuditTrail,
    throttle: Arc<Throttle>,
    notices: Arc<SecurityNotices>,
    tickets: Arc<dyn AccountTokenRepository>,
    mfa: MfaPolicy,
    policy: PasskeyPolicy,
}

const TOO_MANY: &str = "This account holds as many passkeys as it may; remove one first.";
const TAKEN: &str = "This passkey is registered already.";
const NO_SUCH_PASSKEY: &str = "You have no passkey with this id.";
const NO_PASSKEY: &str = "This account has no passkey.";
const LAST_WAY_IN: &str =
    "This passkey is the last way to sign in to this account: add another first.";
const CEREMONY_GONE: &str =
    "This passkey ceremony has expired or was finished already; start it again.";

impl PasskeyService {
    pub fn new(deps: PasskeyDeps) -> Self {
        Self {
            passkeys: deps.passkeys,
            identities: deps.identities,
            users: deps.users,
            ceremonies: deps.ceremonies,
            sessions: deps.sessions,
            clock: deps.clock,
            audit: deps.audit,
            throttle: deps.throttle,
            notices: deps.notices,
            tickets: deps.tickets,
            mfa: deps.mfa,
            policy: deps.policy,
        }
    }

    /// The user's passkeys, oldest first.
    pub async fn list(&self, user: UserId) -> Result<Vec<Passkey>, ServiceError> {
        Ok(self.passkeys.list(user).await?)
    }

    /// Starts an enrolment for the caller (recent authentication needed): the options ask for
    /// a discoverable, user-verified credential other than the ones the account holds.
    pub async fn start_registration(
        &self,
        caller: &Principal,
    ) -> Result<PasskeyChallenge, ServiceError> {
        let user = self.account(caller.user_id).await?;
        self.sessions.require_recent(caller, &user).await?;
        let existing = self.passkeys.list(user.id).await?;
        if existing.len() >= self.policy.max_per_account {
            return Err(ServiceError::Conflict(TOO_MANY));
        }
        let excluded: Vec<CredentialId> = existing.into_iter().map(|p| p.credential_id).collect();
        let display_name = user
            .display_name
            .as_ref()
            .map_or(user.email.as_str(), |name| name.as_str());
        let started = self
            .ceremonies
            .start_registration(
                PasskeyAccount {
                    id: user.id,
                    name: user.email.as_str(),
                    display_name,
                },
                &excluded,
            )
            .map_err(ServiceError::internal)?;
        self.save(
            CeremonyPurpose::Registration,
            Some(user.id),
            CeremonyBinding::Session(caller.session_id),
            started.state,
            started.options,
        )
        .await
    }

    /// Finishes an enrolment with the browser's credential and stores the passkey as `name`.
    /// A credential registered to any account already is `CONFLICT`.
    pub async fn finish_registration(
        &self,
        caller: &Principal,
        challenge: CeremonyId,
        name: &str,
        credential: &Value,
        client: &ClientInfo,
    ) -> Result<Passkey, ServiceError> {
        let name = PasskeyName::parse(name).map_err(|e| ServiceError::invalid("name", e))?;
        // Taken first: whatever is refused next, the state is spent.
        let ceremony = self
            .take(
                challenge,
                CeremonyPurpose::Registration,
                &CeremonyBinding::Session(caller.session_id),
            )
            .await?;
        let user = self.account(caller.user_id).await?;
        self.sessions.require_recent(caller, &user).await?;
        if ceremony.user_id != Some(user.id) {
            return Err(gone());
        }
        if self.passkeys.list(user.id).await?.len() >= self.policy.max_per_account {
            return Err(ServiceError::Conflict(TOO_MANY));
        }
        let first_factor = !self.sessions.has_second_factor(&user).await?;
        let made = self
            .ceremonies
            .finish_registration(&ceremony.state, credential)
            .map_err(|failure| match failure {
                PasskeyFailure::Internal(message) => ServiceError::internal(message),
                refused => ServiceError::InvalidInput {
                    field: "credential",
                    message: format!("The passkey was refused: {refused}."),
                },
            })?;
        let passkey = Passkey {
            id: PasskeyId::generate(),
            user_id: user.id,
            credential_id: made.credential_id,
            credential: made.credential,
            name,
            created_at: self.clock.now(),
            last_used_at: None,
            sign_count: made.sign_count,
            backup_eligible: made.backup_eligible,
            backed_up: made.backed_up,
        };
        self.passkeys.add(&passkey).await.map_err(|e| match e {
            RepositoryError::Conflict => ServiceError::Conflict(TAKEN),
            other => other.into(),
        })?;
        // The account's first second factor: as when an authenticator app is turned on, the
        // other sessions proved the password alone, and end (an intruder's among them).
        let ended = if first_factor {
            self.sessions
                .end_other_sessions(user.id, Some(caller.session_id))
                .await?
        } else {
            0
        };
        tracing::info!(user_id = %user.id, passkey = %passkey.id, ended, "passkey added");
        self.audit.record(
            Record::own(AuditKind::PasskeyAdded, user.id, client).detail(format!(
                "{}; other sessions ended: {ended}",
                passkey.name.as_str()
            )),
        );
        // Someone holding the password and a fresh session could add a passkey of theirs:
        // the address is told, with a link whose window covers this passkey.
        self.notices
            .send(
                user.id,
                Notice::PasskeyAdded(passkey.name.clone()),
                passkey.created_at,
                client,
            )
            .await;
        Ok(passkey)
    }

    /// Starts a sign-in with a discoverable passkey: no account named, so the browser offers
    /// every passkey it holds for this site (or autofills one). Unauthenticated and storing a
    /// row, so limited per address like a sign-in.
    pub async fn start_sign_in(
        &self,
        client: &ClientInfo,
    ) -> Result<PasskeyChallenge, ServiceError> {
        self.throttle.passkey_sign_in(client).await?;
        let started = self
            .ceremonies
            .start_sign_in()
            .map_err(ServiceError::internal)?;
        self.save(
            CeremonyPurpose::SignIn,
            None,
            CeremonyBinding::Unbound,
            started.state,
            started.options,
        )
        .await
    }

    /// Finishes a passkey sign-in and opens a session (`amr` `["webauthn"]`). A user-verified
    /// passkey is two factors: never `MFA_REQUIRED`. An unknown credential or an assertion
    /// that does not verify is `UNAUTHENTICATED`, like a wrong password.
    pub async fn finish_sign_in(
        &self,
        challenge: CeremonyId,
        credential: &Value,
        client: &ClientInfo,
    ) -> Result<SignedIn, ServiceError> {
        self.throttle.passkey_sign_in(client).await?;
        let ceremony = self
            .take(
                challenge,
                CeremonyPurpose::SignIn,
                &CeremonyBinding::Unbound,
            )
            .await?;
        let claimed = self
            .ceremonies
            .claimed(credential)
            .map_err(|failure| self.refused(failure, None, client))?;
        let Some(stored) = self
            .passkeys
            .find_by_credential(&claimed.credential_id)
            .await?
        else {
            return Err(self.refuse_login(None, client, "unknown passkey"));
        };
        if claimed
            .user_handle
            .is_some_and(|user| user != stored.user_id)
        {
            return Err(self.refuse_login(Some(stored.user_id), client, "passkey of another user"));
        }
        let Some(user) = self.users.find_by_id(stored.user_id).await? else {
            return Err(self.refuse_login(None, client, "unknown passkey"));
        };
        self.sessions.policy().admit(&user).inspect_err(|refused| {
            self.audit.record(Record {
                kind: AuditKind::LoginFailed,
                actor: None,
                subject: Some(user.id),
                client: Some(client),
                detail: Some(refused.to_string()),
            });
        })?;
        self.verify(&ceremony, credential, &stored, client).await?;
        let id = user.id;
        let signed_in = self
            .sessions
            .open(user, AuthMethods::Passkey, client)
            .await?;
        tracing::info!(user_id = %id, "signed in with a passkey");
        self.audit
            .record(Record::own(AuditKind::LoginSucceeded, id, client).detail("passkey"));
        Ok(signed_in)
    }

    /// Deletes the ceremonies that expired unfinished; returns how many.
    pub async fn delete_expired_ceremonies(&self) -> Result<u64, ServiceError> {
        Ok(self
            .passkeys
            .delete_expired_ceremonies(self.clock.now())
            .await?)
    }

    /// Renames one of the caller's passkeys (recent authentication needed).
    pub async fn rename(
        &self,
        caller: &Principal,
        id: PasskeyId,
        name: &str,
        client: &ClientInfo,
    ) -> Result<Passkey, ServiceError> {
        let name = PasskeyName::parse(name).map_err(|e| ServiceError::invalid("name", e))?;
        let user = self.account(caller.user_id).await?;
        self.sessions.require_recent(caller, &user).await?;
        if !self.passkeys.rename(user.id, id, &name).await? {
            return Err(ServiceError::NotFound(NO_SUCH_PASSKEY));
        }
        self.audit
            .record(Record::own(AuditKind::PasskeyRenamed, user.id, client).detail(name.as_str()));
        self.passkeys
            .list(user.id)
            .await?
            .into_iter()
            .find(|p| p.id == id)
            .ok_or(ServiceError::NotFound(NO_SUCH_PASSKEY))
    }

    /// Removes one of the caller's passkeys (recent authentication needed); the address is
    /// told. Every account has a password today, so a passkey is never its last way to sign
    /// in, and nothing requires a second factor, so the last one may go.
    pub async fn remove(
        &self,
        caller: &Principal,
        id: PasskeyId,
        client: &ClientInfo,
    ) -> Result<(), ServiceError> {
        let user = self.account(caller.user_id).await?;
        self.sessions.require_recent(caller, &user).await?;
        let Some(passkey) = self
            .passkeys
            .list(user.id)
            .await?
            .into_iter()
            .find(|p| p.id == id)
        else {
            return Err(ServiceError::NotFound(NO_SUCH_PASSKEY));
        };
        // An account with neither a password nor an identity at a provider keeps its last
        // passkey: it would have no way to sign in but a password reset.
        let keep_last =
            !user.has_password && self.identities.list_for_user(user.id).await?.is_empty();
        match self.passkeys.remove(user.id, id, keep_last).await? {
            PasskeyRemoval::Removed => {}
            PasskeyRemoval::NotFound => return Err(ServiceError::NotFound(NO_SUCH_PASSKEY)),
            PasskeyRemoval::LastPasskey => return Err(ServiceError::Forbidden(LAST_WAY_IN)),
        }
        tracing::info!(user_id = %user.id, passkey = %id, "passkey removed");
        self.audit.record(
            Record::own(AuditKind::PasskeyRemoved, user.id, client).detail(passkey.name.as_str()),
        );
        self.notices
            .send(
                user.id,
                Notice::PasskeyRemoved(passkey.name),
                self.clock.now(),
                client,
            )
            .await;
        Ok(())
    }

    /// Starts a passkey as the second factor of a sign-in that proved the password: the
    /// ceremony is bound to the sign-in's ticket (its hash), lists the account's passkeys, and
    /// lives no longer than a ticket does. Each start counts as a try on the ticket.
    pub async fn start_mfa(
        &self,
        ticket: OpaqueToken,
        client: &ClientInfo,
    ) -> Result<PasskeyChallenge, ServiceError> {
        self.throttle.second_factor_from(client).await?;
        let ticket = ticket.hash();
        let holder = self
            .tickets
            .attempt(
                &ticket,
                TokenPurpose::MfaTicket,
                self.mfa.ticket_attempts,
                self.clock.now(),
            )
            .await?
            .ok_or(AuthFailure::InvalidMfaTicket)?;
        let allowed = self.allowed(holder.user_id).await?;
        let started = self
            .ceremonies
            .start_authentication(&allowed)
            .map_err(ServiceError::internal)?;
        self.save_for(
            CeremonyPurpose::Mfa,
            Some(holder.user_id),
            CeremonyBinding::Ticket(ticket),
            started.state,
            started.options,
            self.mfa.ticket_lifetime,
        )
        .await
    }

    /// Completes a sign-in with its ticket and a passkey of the ticket's account: the try is
    /// counted on the ticket first, the ceremony (bound to that ticket) is taken once, the
    /// assertion verified against the stored passkey, then the ticket is claimed. The session's
    /// `amr` is `["pwd","webauthn"]`.
    pub async fn verify_mfa(
        &self,
        ticket: OpaqueToken,
        challenge: CeremonyId,
        credential: &Value,
        client: &ClientInfo,
    ) -> Result<SignedIn, ServiceError> {
        self.throttle.second_factor_from(client).await?;
        let now = self.clock.now();
        let ticket = ticket.hash();
        let holder = self
            .tickets
            .attempt(
                &ticket,
                TokenPurpose::MfaTicket,
                self.mfa.ticket_attempts,
                now,
            )
            .await?
            .ok_or(AuthFailure::InvalidMfaTicket)?;
        let user = self.account(holder.user_id).await?;
        self.throttle.second_factor_of(&user.email).await?;
        let ceremony = self
            .take(
                challenge,
                CeremonyPurpose::Mfa,
                &CeremonyBinding::Ticket(ticket.clone()),
            )
            .await?;
        if ceremony.user_id != Some(user.id) {
            return Err(gone());
        }
        let stored = self.owned(&user, credential, client).await?;
        self.verify_factor(&user, &ceremony, credential, &stored, client)
            .await?;
        // The claim: of concurrent completions of one ticket, one signs in.
        if self
            .tickets
            .consume(&ticket, TokenPurpose::MfaTicket, now)
            .await?
            .is_none()
        {
            return Err(AuthFailure::InvalidMfaTicket.into());
        }
        let signed_in = self
            .sessions
            .open(user, AuthMethods::PasswordAndPasskey, client)
            .await?;
        self.audit.record(
            Record::own(AuditKind::LoginSucceeded, signed_in.user.id, client)
                .detail("second factor: passkey"),
        );
        Ok(signed_in)
    }

    /// Starts proving the signed-in user again with one of their passkeys (step-up), bound to
    /// the caller's session.
    pub async fn start_reauthentication(
        &self,
        caller: &Principal,
        client: &ClientInfo,
    ) -> Result<PasskeyChallenge, ServiceError> {
        self.throttle.second_factor_from(client).await?;
        let user = self.account(caller.user_id).await?;
        let allowed = self.allowed(user.id).await?;
        let started = self
            .ceremonies
            .start_authentication(&allowed)
            .map_err(ServiceError::internal)?;
        self.save(
            CeremonyPurpose::Reauthentication,
            Some(user.id),
            CeremonyBinding::Session(caller.session_id),
            started.state,
            started.options,
        )
        .await
    }

    /// Proves the signed-in user again with a passkey of theirs (user-verified: two factors),
    /// in the session that started the ceremony; the session's authentication moves to now,
    /// as `webauthn`.
    pub async fn reauthenticate(
        &self,
        caller: &Principal,
        challenge: CeremonyId,
        credential: &Value,
        client: &ClientInfo,
    ) -> Result<Reauthenticated, ServiceError> {
        self.throttle.second_factor_from(client).await?;
        let ceremony = self
            .take(
                challenge,
                CeremonyPurpose::Reauthentication,
                &CeremonyBinding::Session(caller.session_id),
            )
            .await?;
        let user = self.account(caller.user_id).await?;
        if ceremony.user_id != Some(user.id) {
            return Err(gone());
        }
        self.throttle.second_factor_of(&user.email).await?;
        let stored = self.owned(&user, credential, client).await?;
        self.verify_factor(&user, &ceremony, credential, &stored, client)
            .await?;
        self.sessions
            .reauthenticated(caller, user, AuthMethods::Passkey)
            .await
    }

    /// The account's credential ids, for an authentication's options; `CONFLICT` if it has
    /// no passkey.
    async fn allowed(&self, user: UserId) -> Result<Vec<CredentialId>, ServiceError> {
        let allowed: Vec<CredentialId> = self
            .passkeys
            .list(user)
            .await?
            .into_iter()
            .map(|p| p.credential_id)
            .collect();
        if allowed.is_empty() {
            return Err(ServiceError::Conflict(NO_PASSKEY));
        }
        Ok(allowed)
    }

    /// The stored passkey an assertion claims to be, which must be `user`'s: another
    /// account's credential, or an unknown one, is refused (and counted as a wrong code).
    async fn owned(
        &self,
        user: &User,
        credential: &Value,
        client: &ClientInfo,
    ) -> Result<Passkey, ServiceError> {
        let claimed = self
            .ceremonies
            .claimed(credential)
            .map_err(|failure| self.refused(failure, Some(user.id), client))?;
        let stored = self
            .passkeys
            .find_by_credential(&claimed.credential_id)
            .await?
            .filter(|p| p.user_id == user.id)
            .filter(|_| claimed.user_handle.is_none_or(|h| h == user.id));
        match stored {
            Some(stored) => Ok(stored),
            None => {
                self.throttle.second_factor_failed(&user.email).await;
                self.audit.record(
                    Record::own(AuditKind::MfaFailed, user.id, client)
                        .detail("a passkey not of this account"),
                );
                Err(AuthFailure::InvalidCredentials.into())
            }
        }
    }

    /// `verify` as a second factor: a refusal counts toward the account's code lockout, a
    /// success forgives the wrong tries so far.
    async fn verify_factor(
        &self,
        user: &User,
        ceremony: &Ceremony,
        credential: &Value,
        stored: &Passkey,
        client: &ClientInfo,
    ) -> Result<(), ServiceError> {
        match self.verify(ceremony, credential, stored, client).await {
            Ok(()) => {
                self.throttle.second_factor_succeeded(&user.email).await;
                Ok(())
            }
            Err(refused) => {
                self.throttle.second_factor_failed(&user.email).await;
                Err(refused)
            }
        }
    }

    /// Verifies an assertion against the stored passkey as it is now and records its use;
    /// a counter that went backwards, a flipped backup eligibility or a use that lost the
    /// race with another (the stored counter moved meanwhile) is refused and audited.
    async fn verify(
        &self,
        ceremony: &Ceremony,
        credential: &Value,
        stored: &Passkey,
        client: &ClientInfo,
    ) -> Result<(), ServiceError> {
        let used = self
            .ceremonies
            .finish_authentication(&ceremony.state, credential, stored)
            .map_err(|failure| self.refused(failure, Some(stored.user_id), client))?;
        let recorded = self
            .passkeys
            .record_use(&PasskeyUse {
                passkey: stored.id,
                user: stored.user_id,
                credential: &used.credential,
                sign_count: used.sign_count,
                backup_eligible: used.backup_eligible,
                backed_up: used.backed_up,
                at: self.clock.now(),
            })
            .await?;
        if !recorded {
            return Err(self.refused(
                PasskeyFailure::CounterWentBackwards,
                Some(stored.user_id),
                client,
            ));
        }
        Ok(())
    }

    async fn save(
        &self,
        purpose: CeremonyPurpose,
        user_id: Option<UserId>,
        binding: CeremonyBinding,
        state: String,
        options: Value,
    ) -> Result<PasskeyChallenge, ServiceError> {
        self.save_for(
            purpose,
            user_id,
            binding,
            state,
            options,
            self.policy.ceremony_lifetime,
        )
        .await
    }

    /// Saves a ceremony living `at_most` (or its usual lifetime, if shorter).
    async fn save_for(
        &self,
        purpose: CeremonyPurpose,
        user_id: Option<UserId>,
        binding: CeremonyBinding,
        state: String,
        options: Value,
        at_most: Duration,
    ) -> Result<PasskeyChallenge, ServiceError> {
        let now = self.clock.now();
        let ceremony = Ceremony {
            id: CeremonyId::generate().map_err(ServiceError::internal)?,
            purpose,
            user_id,
            binding,
            state,
            created_at: now,
            expires_at: now + self.policy.ceremony_lifetime.min(at_most),
        };
        self.passkeys.save_ceremony(&ceremony).await?;
        Ok(PasskeyChallenge {
            id: ceremony.id,
            options,
        })
    }

    /// Takes the ceremony (once: the delete that takes it must be the one to remove it).
    async fn take(
        &self,
        id: CeremonyId,
        purpose: CeremonyPurpose,
        binding: &CeremonyBinding,
    ) -> Result<Ceremony, ServiceError> {
        self.passkeys
            .take_ceremony(id, purpose, binding, self.clock.now())
            .await?
            .ok_or_else(gone)
    }

    async fn account(&self, id: UserId) -> Result<User, ServiceError> {
        self.users
            .find_by_id(id)
            .await?
            .ok_or(ServiceError::Unauthenticated(AuthFailure::SessionEnded))
    }

    /// A credential the ceremony refuses: `UNAUTHENTICATED` for a sign-in's assertion, invalid
    /// input for an enrolment's; the authenticator's tell-tales of a cloned credential are
    /// audited.
    fn refused(
        &self,
        failure: PasskeyFailure,
        user: Option<UserId>,
        client: &ClientInfo,
    ) -> ServiceError {
        tracing::info!(?user, %failure, "passkey refused");
        if let Some(user) = user {
            self.audit.record(Record {
                kind: AuditKind::PasskeyRefused,
                actor: None,
                subject: Some(user),
                client: Some(client),
                detail: Some(failure.to_string()),
            });
        }
        match failure {
            PasskeyFailure::Internal(message) => ServiceError::internal(message),
            _ => AuthFailure::InvalidCredentials.into(),
        }
    }

    fn refuse_login(&self, user: Option<UserId>, client: &ClientInfo, why: &str) -> ServiceError {
        self.audit.record(Record {
            kind: AuditKind::LoginFailed,
            actor: None,
            subject: user,
            client: Some(client),
            detail: Some(why.to_owned()),
        });
        AuthFailure::InvalidCredentials.into()
    }
}

fn gone() -> ServiceError {
    ServiceError::invalid("challengeId", ValidationError(CEREMONY_GONE.into()))
}
