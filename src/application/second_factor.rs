//! The second factor: enrolling a TOTP authenticator, recovery codes, completing a sign-in
//! with a code, proving it is you again before a sensitive change, and an administrator's
//! reset.

use std::sync::Arc;

use chrono::Duration;

use crate::domain::{
    AccountStore, AccountToken, AccountTokenRepository, AuditKind, AuthMethods, OpaqueToken,
    PasskeyStore, RecoveryCode, SecondFactorStore, TokenPurpose, Totp, TotpFactor, User, UserId,
};

use super::audit::{AuditTrail, Record};
use super::caller::{ClientInfo, Principal};
use super::error::{AuthFailure, ServiceError};
use super::notices::{Notice, SecurityNotices};
use super::passwords::Confirmation;
use super::ports::{Clock, SecretSealer};
use super::sessions::{Reauthenticated, SessionService, SignedIn};
use super::throttle::Throttle;

/// What the second factor is called in authenticator apps, and how sign-ins wait for it.
#[derive(Debug, Clone)]
pub struct MfaPolicy {
    /// The issuer authenticator apps show beside the account's email.
    pub issuer: String,
    /// How long a sign-in waits for its code.
    pub ticket_lifetime: Duration,
    /// Codes tried with one ticket before it dies.
    pub ticket_attempts: u32,
}

/// A new authenticator for the caller, not active until a code from it is confirmed.
#[derive(Debug)]
pub struct Enrollment {
    /// Base32, to type into an app that cannot scan.
    pub secret: String,
    pub otpauth_uri: String,
}

/// Which kind of code was accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Accepted {
    Totp,
    RecoveryCode,
}

/// What [`MfaService`] works with.
pub struct MfaDeps {
    pub users: Arc<dyn AccountStore>,
    pub factors: Arc<dyn SecondFactorStore>,
    /// An administrator's reset removes the passkeys too.
    pub passkeys: Arc<dyn PasskeyStore>,
    pub tickets: Arc<dyn AccountTokenRepository>,
    pub sealer: Arc<dyn SecretSealer>,
    pub clock: Arc<dyn Clock>,
    pub confirmation: Arc<Confirmation>,
    pub notices: Arc<SecurityNotices>,
    pub sessions: Arc<SessionService>,
    pub throttle: Arc<Throttle>,
    pub audit: AuditTrail,
    pub policy: MfaPolicy,
}

/// The second factor: enrolment, codes, step-up, and an administrator's reset.
pub struct MfaService {
    users: Arc<dyn AccountStore>,
    factors: Arc<dyn SecondFactorStore>,
    passkeys: Arc<dyn PasskeyStore>,
    tickets: Arc<dyn AccountTokenRepository>,
    sealer: Arc<dyn SecretSealer>,
    clock: Arc<dyn Clock>,
    confirmation: Arc<Confirmation>,
    notices: Arc<SecurityNotices>,
    sessions: Arc<SessionService>,
    throttle: Arc<Throttle>,
    audit: AuditTrail,
    policy: MfaPolicy,
}

const NOT_ENROLLING: &str =
    "There is no authenticator waiting for confirmation: start with enrollTotp.";
const ALREADY_ON: &str = "A second factor is already on: disable it first to replace it.";
const NOT_ON: &str = "This account has no second factor.";
const NOTHING_TO_RESET: &str =
    "This account has no second factor: no authenticator app, no passkey.";
const OWN_FACTOR: &str = "Administrators cannot reset their own second factor: turn it off with \
                          disableTotp and a code from it (or a recovery code).";

impl MfaService {
    pub fn new(deps: MfaDeps) -> Self {
        Self {
            users: deps.users,
            factors: deps.factors,
            passkeys: deps.passkeys,
            tickets: deps.tickets,
            sealer: deps.sealer,
            clock: deps.clock,
            confirmation: deps.confirmation,
            notices: deps.notices,
            sessions: deps.sessions,
            throttle: deps.throttle,
            audit: deps.audit,
            policy: deps.policy,
        }
    }

    /// Starts an enrolment: a new secret, stored sealed and unconfirmed (replacing an earlier
    /// unconfirmed one). Needs a recent authentication.
    pub async fn enroll(&self, caller: &Principal) -> Result<Enrollment, ServiceError> {
        let user = self.account(caller.user_id).await?;
        self.sessions.require_recent(caller, &user).await?;
        if user.mfa_enabled_at.is_some() {
            return Err(ServiceError::Conflict(ALREADY_ON));
        }
        let secret = Totp::generate_secret().map_err(ServiceError::internal)?;
        let factor = TotpFactor {
            user_id: user.id,
            sealed_secret: self
                .sealer
                .seal(user.id, &secret)
                .map_err(ServiceError::internal)?,
            created_at: self.clock.now(),
            confirmed_at: None,
            last_step: 0,
        };
        if !self.factors.begin_enrollment(&factor).await? {
            return Err(ServiceError::Conflict(ALREADY_ON));
        }
        let totp = self.totp(&user, secret);
        Ok(Enrollment {
            secret: totp.secret_base32(),
            otpauth_uri: totp.otpauth_uri(),
        })
    }

    /// Turns the enrolled authenticator on with a first code from it; returns the recovery
    /// codes, shown this once. The session has now proved both factors, and every other
    /// session (signed in with the password alone) ends.
    pub async fn confirm(
        &self,
        caller: &Principal,
        code: &str,
        client: &ClientInfo,
    ) -> Result<Vec<RecoveryCode>, ServiceError> {
        let user = self.account(caller.user_id).await?;
        self.sessions.require_recent(caller, &user).await?;
        let factor = match self.factors.find(user.id).await? {
            Some(factor) if factor.confirmed_at.is_none() => factor,
            Some(_) => return Err(ServiceError::Conflict(ALREADY_ON)),
            None => return Err(ServiceError::Conflict(NOT_ENROLLING)),
        };
        self.throttle.second_factor_from(client).await?;
        self.throttle.second_factor_of(&user.email).await?;
        let now = self.clock.now();
        let secret = self.open(&user, &factor)?;
        let Some(step) = self.totp(&user, secret).matching_step(code, now) else {
            return Err(self.wrong_code(&user, client, "enrolment").await);
        };
        let codes = RecoveryCode::generate_set().map_err(ServiceError::internal)?;
        let hashes: Vec<_> = codes.iter().map(|c| c.hash(user.id)).collect();
        if !self
            .factors
            .confirm(user.id, &factor.sealed_secret, step, &hashes, now)
            .await?
        {
            return Err(ServiceError::Conflict(NOT_ENROLLING));
        }
        self.throttle.second_factor_succeeded(&user.email).await;
        self.sessions
            .reauthenticated(caller, user.clone(), AuthMethods::PasswordAndOtp)
            .await?;
        let ended = self
            .sessions
            .end_other_sessions(user.id, Some(caller.session_id))
            .await?;
        self.audit.record(
            Record::own(AuditKind::MfaEnabled, user.id, client)
                .detail(format!("other sessions ended: {ended}")),
        );
        // `now`, the factor's confirmation time: the notice's link undoes it.
        self.notices
            .send(user.id, Notice::SecondFactorEnabled, now, client)
            .await;
        Ok(codes)
    }

    /// Turns the second factor off, with a code from it (or a recovery code). Needs a recent
    /// authentication with the second factor.
    pub async fn disable(
        &self,
        caller: &Principal,
        code: &str,
        client: &ClientInfo,
    ) -> Result<(), ServiceError> {
        let user = self.account(caller.user_id).await?;
        self.sessions.require_recent(caller, &user).await?;
        self.throttle.second_factor_from(client).await?;
        self.check_code(&user, code, client).await?;
        if !self.factors.remove(user.id).await? {
            return Err(ServiceError::Conflict(NOT_ON));
        }
        self.audit
            .record(Record::own(AuditKind::MfaDisabled, user.id, client));
        self.notices
            .send(
                user.id,
                Notice::SecondFactorDisabled,
                self.clock.now(),
                client,
            )
            .await;
        Ok(())
    }

    /// New recovery codes, replacing every earlier one; shown this once. Needs a recent
    /// authentication with the second factor.
    pub async fn regenerate_recovery_codes(
        &self,
        caller: &Principal,
        client: &ClientInfo,
    ) -> Result<Vec<RecoveryCode>, ServiceError> {
        let user = self.account(caller.user_id).await?;
        if user.mfa_enabled_at.is_none() {
            return Err(ServiceError::Conflict(NOT_ON));
        }
        self.sessions.require_recent(caller, &user).await?;
        let codes = RecoveryCode::generate_set().map_err(ServiceError::internal)?;
        let hashes: Vec<_> = codes.iter().map(|c| c.hash(user.id)).collect();
        let now = self.clock.now();
        self.factors
            .replace_recovery_codes(user.id, &hashes, now)
            .await?;
        self.audit.record(Record::own(
            AuditKind::RecoveryCodesRegenerated,
            user.id,
            client,
        ));
        self.notices
            .send(user.id, Notice::RecoveryCodesRegenerated, now, client)
            .await;
        Ok(codes)
    }

    /// How many unused recovery codes the account has; `None` without a second factor.
    pub async fn recovery_codes_left(&self, user: &User) -> Result<Option<u64>, ServiceError> {
        if user.mfa_enabled_at.is_none() {
            return Ok(None);
        }
        Ok(Some(self.factors.recovery_codes_left(user.id).await?))
    }

    /// The refusal of a sign-in whose password was right, for an account with a second
    /// factor: a ticket to finish it with a code. The ticket is bound to the account as it is
    /// now (its address and credential version) and replaces any earlier one.
    pub async fn challenge(&self, user: &User) -> ServiceError {
        match self.issue_ticket(user).await {
            Ok(ticket) => ServiceError::MfaRequired { ticket },
            Err(error) => error,
        }
    }

    async fn issue_ticket(&self, user: &User) -> Result<OpaqueToken, ServiceError> {
        let ticket = OpaqueToken::generate().map_err(ServiceError::internal)?;
        let now = self.clock.now();
        let stored = AccountToken {
            hash: ticket.hash(),
            user_id: user.id,
            purpose: TokenPurpose::MfaTicket,
            email: user.email.clone(),
            credential_version: user.credential_version,
            target_email: None,
            created_at: now,
            expires_at: now + self.policy.ticket_lifetime,
        };
        if !self.tickets.issue(&stored).await? {
            // The account changed in the meantime: the sign-in starts over.
            return Err(AuthFailure::InvalidCredentials.into());
        }
        Ok(ticket)
    }

    /// Completes a sign-in with its ticket and a TOTP or recovery code. Each try counts
    /// against the ticket before the code is checked; a ticket dies once used, after a few
    /// wrong codes, when it expires, or when the account changes.
    pub async fn verify(
        &self,
        ticket: OpaqueToken,
        code: &str,
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
                self.policy.ticket_attempts,
                now,
            )
            .await?
            .ok_or(AuthFailure::InvalidMfaTicket)?;
        let user = self.account(holder.user_id).await?;
        let accepted = self.check_code(&user, code, client).await?;
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
            .open(user, AuthMethods::PasswordAndOtp, client)
            .await?;
        let detail = match accepted {
            Accepted::Totp => "second factor: authenticator code",
            Accepted::RecoveryCode => "second factor: recovery code",
        };
        self.audit.record(
            Record::own(AuditKind::LoginSucceeded, signed_in.user.id, client).detail(detail),
        );
        Ok(signed_in)
    }

    /// Proves again that the caller is who the session says, with the password and, for an
    /// account with a second factor, a code: the session's authentication time moves to now.
    pub async fn reauthenticate(
        &self,
        caller: &Principal,
        password: String,
        code: Option<&str>,
        client: &ClientInfo,
    ) -> Result<Reauthenticated, ServiceError> {
        let user = self.account(caller.user_id).await?;
        self.confirmation.password(caller, &user, password).await?;
        let methods = if user.mfa_enabled_at.is_some() {
            let code = code.ok_or(ServiceError::InvalidInput {
                field: "code",
                message: "This account has a second factor: enter a code from it.".into(),
            })?;
            self.throttle.second_factor_from(client).await?;
            self.check_code(&user, code, client).await?;
            AuthMethods::PasswordAndOtp
        } else if self.sessions.has_second_factor(&user).await? {
            // Its second factor is a passkey: the password alone would not make the session
            // recent enough for anything, so say what would.
            return Err(ServiceError::InvalidInput {
                field: "passkey",
                message: "This account's second factor is a passkey: reauthenticate with it \
                          (startPasskeyReauthentication)."
                    .into(),
            });
        } else {
            AuthMethods::Password
        };
        self.sessions.reauthenticated(caller, user, methods).await
    }

    /// An administrator removes a user's second factor (a lost device and no recovery code
    /// left) and ends every session of theirs. Needs a recent authentication of the
    /// administrator, and never applies to their own factor.
    pub async fn reset(
        &self,
        admin: &Principal,
        user_id: UserId,
        client: &ClientInfo,
    ) -> Result<User, ServiceError> {
        admin.require_admin()?;
        // Their own factor goes only with a code from it (disableTotp): otherwise a stolen
        // administrator's session and a phished password would take the account.
        if user_id == admin.user_id {
            return Err(ServiceError::Forbidden(OWN_FACTOR));
        }
        self.sessions.require_recent_admin(admin).await?;
        let user = self
            .users
            .find_by_id(user_id)
            .await?
            .ok_or(ServiceError::NotFound("There is no user with this id."))?;
        // Both go: a passkey is as much the second factor the user lost as the app is.
        let factor_removed = self.factors.remove(user.id).await?;
        let passkeys_removed = self.passkeys.remove_all(user.id).await?;
        if !factor_removed && passkeys_removed == 0 {
            return Err(ServiceError::Conflict(NOTHING_TO_RESET));
        }
        let ended = self.sessions.end_other_sessions(user.id, None).await?;
        if passkeys_removed > 0 {
            self.audit.record(Record {
                kind: AuditKind::PasskeyRemoved,
                actor: Some(admin.user_id),
                subject: Some(user.id),
                client: Some(client),
                detail: Some(format!(
                    "every passkey ({passkeys_removed}), by an administrator's reset"
                )),
            });
        }
        self.audit.record(Record {
            kind: AuditKind::MfaReset,
            actor: Some(admin.user_id),
            subject: Some(user.id),
            client: Some(client),
            detail: Some(format!("sessions ended: {ended}")),
        });
        self.notices
            .send(user.id, Notice::SecondFactorReset, self.clock.now(), client)
            .await;
        self.account(user.id).await
    }

    /// Checks a TOTP code or a recovery code of the account, throttled and counted before
    /// anything is compared (the caller has checked the address's allowance); each code is
    /// accepted once.
    async fn check_code(
        &self,
        user: &User,
        code: &str,
        client: &ClientInfo,
    ) -> Result<Accepted, ServiceError> {
        self.throttle.second_factor_of(&user.email).await?;
        let factor = self
            .factors
            .find(user.id)
            .await?
            .filter(|f| f.confirmed_at.is_some())
            .ok_or(ServiceError::Conflict(NOT_ON))?;
        let now = self.clock.now();
        self.reseal_with_current_key(user, &factor).await;
        let accepted = if let Some(recovery) = RecoveryCode::from_input(code) {
            let used = self
                .factors
                .use_recovery_code(user.id, &recovery.hash(user.id), now)
                .await?;
            used.then_some(Accepted::RecoveryCode)
        } else {
            let secret = self.open(user, &factor)?;
            match self.totp(user, secret).matching_step(code, now) {
                // The step only moves forward: a code seen before, here or on another
                // instance, is refused.
                Some(step) if step > factor.last_step => self
                    .factors
                    .accept_step(user.id, step)
                    .await?
                    .then_some(Accepted::Totp),
                _ => None,
            }
        };
        match accepted {
            Some(accepted) => {
                self.throttle.second_factor_succeeded(&user.email).await;
                if accepted == Accepted::RecoveryCode {
                    let left = self.factors.recovery_codes_left(user.id).await?;
                    self.audit.record(
                        Record::own(AuditKind::RecoveryCodeUsed, user.id, client)
                            .detail(format!("recovery codes left: {left}")),
                    );
                    self.notices
                        .send(user.id, Notice::RecoveryCodeUsed(left), now, client)
                        .await;
                }
                Ok(accepted)
            }
            None => Err(self.wrong_code(user, client, "sign-in or change").await),
        }
    }

    async fn wrong_code(&self, user: &User, client: &ClientInfo, during: &str) -> ServiceError {
        self.throttle.second_factor_failed(&user.email).await;
        self.audit.record(
            Record::own(AuditKind::MfaFailed, user.id, client)
                .detail(format!("wrong code ({during})")),
        );
        ServiceError::InvalidInput {
            field: "code",
            message: "The code is incorrect or was already used.".into(),
        }
    }

    /// A secret sealed with a previous key is sealed again with the current one while it is
    /// at hand, so the previous key can be retired once every factor has been used. Best
    /// effort: the check it serves goes on either way.
    async fn reseal_with_current_key(&self, user: &User, factor: &TotpFactor) {
        if !self.sealer.needs_reseal(&factor.sealed_secret) {
            return;
        }
        let resealed = self
            .sealer
            .open(user.id, &factor.sealed_secret)
            .and_then(|secret| self.sealer.seal(user.id, &secret));
        let outcome = match resealed {
            Ok(sealed) => self
                .factors
                .reseal(user.id, &factor.sealed_secret, &sealed)
                .await
                .map_err(|e| e.to_string()),
            Err(error) => Err(error.to_string()),
        };
        match outcome {
            Ok(_) => {
                tracing::info!(user_id = %user.id, "TOTP secret sealed again with the current key")
            }
            Err(error) => {
                tracing::warn!(user_id = %user.id, %error, "TOTP secret not sealed again")
            }
        }
    }

    fn open(&self, user: &User, factor: &TotpFactor) -> Result<Vec<u8>, ServiceError> {
        self.sealer
            .open(user.id, &factor.sealed_secret)
            .map(|secret| secret.to_vec())
            .map_err(ServiceError::internal)
    }

    fn totp(&self, user: &User, secret: Vec<u8>) -> Totp {
        Totp::new(secret, &self.policy.issuer, user.email.as_str())
    }

    async fn account(&self, id: UserId) -> Result<User, ServiceError> {
        self.users
            .find_by_id(id)
            .await?
            .ok_or_else(|| AuthFailure::SessionEnded.into())
    }
}
