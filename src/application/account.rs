//! Proving control of the email address: password reset and email verification, both by a
//! one-time link sent through the `Mailer`.

use std::sync::Arc;

use chrono::Duration;

use crate::domain::{
    AccountRecoveryStore, AccountStore, AccountToken, AccountTokenRepository, AuditKind,
    AuthMethods, Email, HotReads, OpaqueToken, Password, TokenPurpose, UsedToken, User, UserId,
};

use super::audit::{AuditTrail, Record};
use super::caller::ClientInfo;
use super::error::ServiceError;
use super::links::AccountLinks;
use super::notices::{Notice, SecurityNotices};
use super::passwords::require_strong;
use super::ports::{Clock, Deferred, Mailer, OutgoingEmail, PasswordHasher};
use super::second_factor::MfaService;
use super::sessions::{SessionService, SignedIn};
use super::throttle::Throttle;

/// Issues links and emails them; what deferred jobs run, so it owns what they need.
#[derive(Clone)]
struct LinkMail {
    reads: Arc<dyn HotReads>,
    tokens: Arc<dyn AccountTokenRepository>,
    mailer: Arc<dyn Mailer>,
    clock: Arc<dyn Clock>,
    links: Arc<AccountLinks>,
}

impl LinkMail {
    /// `secured`: the account was just given back to its owner, whose password it no longer
    /// takes.
    async fn password_reset(self, user: User, secured: bool) -> Result<(), ServiceError> {
        let ttl = self.links.password_reset_ttl;
        let (why, otherwise) = if secured {
            (
                "Your account is back at this address: it was signed out everywhere, and \
                 its password no longer works.",
                "If the link has expired, ask for a new one from the sign-in page \
                 (\"Forgot your password?\").",
            )
        } else {
            (
                "Someone asked to reset the password of your account.",
                "If it was not you, ignore this email: your password stays as it is.",
            )
        };
        let sent = self
            .send_link(
                &user,
                TokenPurpose::PasswordReset,
                ttl,
                None,
                "reset-password",
                |link| OutgoingEmail {
                    to: user.email.as_str().to_owned(),
                    subject: "Reset your password".into(),
                    text: format!(
                        "{why}\n\nTo choose a new password, open this link within {} \
                         minutes:\n\n{link}\n\n{otherwise}\n",
                        ttl.num_minutes()
                    ),
                },
            )
            .await?;
        if sent {
            tracing::info!(user_id = %user.id, "password reset link sent");
        }
        Ok(())
    }

    async fn verification(self, user: User) -> Result<(), ServiceError> {
        let ttl = self.links.email_verification_ttl;
        self.send_link(
            &user,
            TokenPurpose::EmailVerification,
            ttl,
            None,
            "verify-email",
            |link| OutgoingEmail {
                to: user.email.as_str().to_owned(),
                subject: "Confirm your email address".into(),
                text: format!(
                    "Welcome! Confirm that this is your email address by opening this link \
                     within {} hours:\n\n{link}\n\nIf you did not create an account, ignore \
                     this email.\n",
                    ttl.num_hours()
                ),
            },
        )
        .await?;
        Ok(())
    }

    /// The link of an email change to the new address: one that completes it (or, when that
    /// address has an account already or is held by another account's recovery link, a
    /// notice and nothing else, so the answer to the request told nobody which addresses are
    /// taken). The old address was told at once, with a link that undoes the change
    /// (`Notice::EmailChangeRequested`).
    async fn email_change(
        self,
        user: User,
        new: Email,
        recovery: Arc<dyn AccountRecoveryStore>,
    ) -> Result<(), ServiceError> {
        let taken = self.reads.user_by_email(&new).await?.is_some()
            || recovery
                .is_reserved(&new, Some(user.id), self.clock.now())
                .await?;
        if taken {
            self.mailer
                .send(OutgoingEmail {
                    to: new.as_str().to_owned(),
                    subject: "Someone tried to use your address".into(),
                    text: "Someone asked to move another account to this email address, which \
                           already has an account. Nothing was changed, and you need not do \
                           anything.\n"
                        .into(),
                })
                .await;
            return Ok(());
        }
        let ttl = self.links.email_verification_ttl;
        let confirm = |link: &str| OutgoingEmail {
            to: new.as_str().to_owned(),
            subject: "Confirm your new email address".into(),
            text: format!(
                "To make this the email address of your account, open this link within {} \
                 hours:\n\n{link}\n\nIf you did not ask for this, ignore this email: \
                 nothing changes.\n",
                ttl.num_hours()
            ),
        };
        let path = "confirm-email-change";
        self.send_link(
            &user,
            TokenPurpose::EmailChange,
            ttl,
            Some(&new),
            path,
            confirm,
        )
        .await?;
        Ok(())
    }

    /// Issues a link for `user` (see `issue`) and emails it as `email` writes it; `false`,
    /// sending nothing, when the account changed meanwhile.
    async fn send_link(
        &self,
        user: &User,
        purpose: TokenPurpose,
        ttl: Duration,
        target: Option<&Email>,
        path: &str,
        email: impl FnOnce(&str) -> OutgoingEmail,
    ) -> Result<bool, ServiceError> {
        let Some(token) = self.issue(user, purpose, ttl, target).await? else {
            return Ok(false);
        };
        self.mailer
            .send(email(&self.links.link(path, &token)))
            .await;
        Ok(true)
    }

    /// A link for `user` as read, bound to its address and credential version; `None` when
    /// the account changed since it was read (the link would be void: nothing is sent).
    async fn issue(
        &self,
        user: &User,
        purpose: TokenPurpose,
        ttl: Duration,
        target: Option<&Email>,
    ) -> Result<Option<OpaqueToken>, ServiceError> {
        let token = OpaqueToken::generate()?;
        let now = self.clock.now();
        let issued = self
            .tokens
            .issue(&AccountToken {
                hash: token.hash(),
                user_id: user.id,
                purpose,
                email: user.email.clone(),
                credential_version: user.credential_version,
                target_email: target.cloned(),
                created_at: now,
                expires_at: now + ttl,
            })
            .await?;
        if !issued {
            tracing::info!(user_id = %user.id, "the account changed before its link was issued: none sent");
        }
        Ok(issued.then_some(token))
    }
}

/// Password reset, email verification and change, and giving an account back to its owner.
pub struct AccountService {
    users: Arc<dyn AccountStore>,
    reads: Arc<dyn HotReads>,
    tokens: Arc<dyn AccountTokenRepository>,
    recovery: Arc<dyn AccountRecoveryStore>,
    notices: Arc<SecurityNotices>,
    hasher: Arc<dyn PasswordHasher>,
    sessions: Arc<SessionService>,
    mfa: Arc<MfaService>,
    clock: Arc<dyn Clock>,
    audit: AuditTrail,
    throttle: Arc<Throttle>,
    mail: LinkMail,
    deferred: Arc<dyn Deferred>,
}

/// What [`AccountService`] works with.
pub struct AccountDeps {
    pub users: Arc<dyn AccountStore>,
    pub reads: Arc<dyn HotReads>,
    pub tokens: Arc<dyn AccountTokenRepository>,
    pub recovery: Arc<dyn AccountRecoveryStore>,
    pub notices: Arc<SecurityNotices>,
    pub hasher: Arc<dyn PasswordHasher>,
    pub sessions: Arc<SessionService>,
    pub mfa: Arc<MfaService>,
    pub mailer: Arc<dyn Mailer>,
    pub deferred: Arc<dyn Deferred>,
    pub clock: Arc<dyn Clock>,
    pub audit: AuditTrail,
    pub throttle: Arc<Throttle>,
    pub links: Arc<AccountLinks>,
}

impl AccountService {
    pub fn new(deps: AccountDeps) -> Self {
        let AccountDeps {
            users,
            reads,
            tokens,
            recovery,
            notices,
            hasher,
            sessions,
            mfa,
            mailer,
            deferred,
            clock,
            audit,
            throttle,
            links,
        } = deps;
        Self {
            mail: LinkMail {
                reads: reads.clone(),
                tokens: tokens.clone(),
                mailer,
                clock: clock.clone(),
                links,
            },
            users,
            reads,
            tokens,
            recovery,
            notices,
            hasher,
            sessions,
            mfa,
            clock,
            audit,
            throttle,
            deferred,
        }
    }

    /// Emails a password-reset link if an account has this email. The answer is the same
    /// either way, and so is the work on the request's path: the link is stored and sent
    /// later, so neither the answer nor its timing tells which emails have accounts.
    #[tracing::instrument(skip_all)]
    pub async fn request_password_reset(
        &self,
        email: Email,
        client: &ClientInfo,
    ) -> Result<(), ServiceError> {
        // Limited the same whether or not the email has an account.
        self.throttle.password_reset(client, Some(&email)).await?;
        let Some(user) = self.reads.user_by_email(&email).await? else {
            return Ok(());
        };
        self.audit.record(Record {
            kind: AuditKind::PasswordResetRequested,
            actor: None,
            subject: Some(user.id),
            client: Some(client),
            detail: None,
        });
        self.defer(
            "password-reset link",
            self.mail.clone().password_reset(user, false),
        );
        Ok(())
    }

    /// Sets a new password with a reset link's token, ends every session, and signs in.
    /// Receiving the link also proves the email address.
    #[tracing::instrument(skip_all)]
    pub async fn reset_password(
        &self,
        token: OpaqueToken,
        new_password: Password,
        client: &ClientInfo,
    ) -> Result<SignedIn, ServiceError> {
        self.throttle.password_reset(client, None).await?;
        // The new password is checked against the account's own email and name before the
        // link is spent, so a refused choice leaves the link usable for a better one; an
        // unusable link is refused here without any estimate or hash.
        let holder = self
            .tokens
            .peek(&token.hash(), TokenPurpose::PasswordReset, self.clock.now())
            .await?
            .ok_or_else(|| invalid_link(TokenPurpose::PasswordReset))?;
        let account = self
            .users
            .find_by_id(holder.user_id)
            .await?
            .ok_or_else(|| invalid_link(TokenPurpose::PasswordReset))?;
        require_strong(
            &new_password,
            &account.email,
            account.display_name.as_ref(),
            "newPassword",
        )
        .await?;
        // Hash first: if hashing is saturated the link stays usable for another try.
        let hash = self.hasher.hash(new_password).await?;
        let now = self.clock.now();
        let used = self
            .use_link(&token, TokenPurpose::PasswordReset, now)
            .await?;
        let user_id = used.user_id;
        // The new password moves the credential version on: every other link dies.
        self.users.set_password_hash(user_id, &hash, now).await?;
        // The link proved the address it was sent to, and only that one.
        self.users
            .mark_email_verified(user_id, &used.email, now)
            .await?;
        let ended = self.sessions.end_other_sessions(user_id, None).await?;
        let user = self
            .users
            .find_by_id(user_id)
            .await?
            .ok_or_else(|| invalid_link(TokenPurpose::PasswordReset))?;
        tracing::info!(user_id = %user.id, ended_sessions = ended, "password reset");
        self.audit.record(
            Record::own(AuditKind::PasswordReset, user.id, client)
                .detail(format!("sessions ended: {ended}")),
        );
        self.notices
            .send(user.id, Notice::PasswordReset, now, client)
            .await;
        if self.sessions.has_second_factor(&user).await? {
            // The link proves the mailbox, not the second factor: the password is set, and
            // signing in waits for a code as at any sign-in.
            self.sessions.policy().admit(&user)?;
            return Err(self.mfa.challenge(&user).await);
        }
        self.sessions
            .open(user, AuthMethods::Password, client)
            .await
    }

    /// Marks the email of a verification link's account as confirmed.
    #[tracing::instrument(skip_all)]
    pub async fn verify_email(
        &self,
        token: OpaqueToken,
        client: &ClientInfo,
    ) -> Result<User, ServiceError> {
        let now = self.clock.now();
        let used = self
            .use_link(&token, TokenPurpose::EmailVerification, now)
            .await?;
        let user_id = used.user_id;
        if !self
            .users
            .mark_email_verified(user_id, &used.email, now)
            .await?
        {
            return Err(invalid_link(TokenPurpose::EmailVerification));
        }
        tracing::info!(%user_id, "email verified");
        self.audit
            .record(Record::own(AuditKind::EmailVerified, user_id, client));
        self.users
            .find_by_id(user_id)
            .await?
            .ok_or_else(|| invalid_link(TokenPurpose::EmailVerification))
    }

    /// Emails a new verification link if an account has this email and has not confirmed it.
    /// The answer is the same either way; limited per client address and per recipient.
    pub async fn resend_verification(
        &self,
        email: Email,
        client: &ClientInfo,
    ) -> Result<(), ServiceError> {
        self.throttle.email(client, &email).await?;
        match self.reads.user_by_email(&email).await? {
            Some(user) if user.email_verified_at.is_none() => {
                self.send_verification(user);
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Emails (later) a link that confirms the user's address; earlier links stop working.
    pub fn send_verification(&self, user: User) {
        self.defer("verification link", self.mail.clone().verification(user));
    }

    /// Tells `user`'s address at once of the change to `new` asked `at`, with the link that
    /// undoes it, and emails (later) the link that completes it to `new`.
    pub async fn send_email_change(
        &self,
        user: User,
        new: Email,
        at: chrono::DateTime<chrono::Utc>,
        client: &ClientInfo,
    ) {
        let notice = Notice::EmailChangeRequested(new.clone());
        let prepared = self.notices.prepare(&user, notice, at).await;
        self.notices.deliver(prepared, client);
        self.defer(
            "email-change link",
            self.mail
                .clone()
                .email_change(user, new, self.recovery.clone()),
        );
    }

    /// Refuses an address that another account's recovery link holds: that account may come
    /// back to it (see `AccountRecoveryStore::is_reserved`). The answer is the one for an
    /// address that has an account.
    pub async fn ensure_unreserved(
        &self,
        email: &Email,
        for_account: Option<UserId>,
    ) -> Result<(), ServiceError> {
        if self
            .recovery
            .is_reserved(email, for_account, self.clock.now())
            .await?
        {
            return Err(ServiceError::EmailTaken);
        }
        Ok(())
    }

    /// Completes an email change with the link sent to the new address: the account moves
    /// there, confirmed, and every link issued before dies. The old address is told, with a
    /// link that gives the account back to it.
    #[tracing::instrument(skip_all)]
    pub async fn confirm_email_change(
        &self,
        token: OpaqueToken,
        client: &ClientInfo,
    ) -> Result<User, ServiceError> {
        let now = self.clock.now();
        let used = self
            .use_link(&token, TokenPurpose::EmailChange, now)
            .await?;
        let target = used
            .target_email
            .clone()
            .ok_or_else(|| invalid_link(TokenPurpose::EmailChange))?;
        self.ensure_unreserved(&target, Some(used.user_id)).await?;
        let before = self
            .users
            .find_by_id(used.user_id)
            .await?
            .filter(|user| user.credential_version == used.credential_version)
            .ok_or_else(|| invalid_link(TokenPurpose::EmailChange))?;
        // The old address's link is stored while the account is still there, so it is bound
        // to the state the move leaves.
        let notice = self
            .notices
            .prepare(&before, Notice::EmailChanged(target.clone()), now)
            .await;
        // Only from the state the link was used in: a recovery that won the race stays.
        let moved = self
            .users
            .change_email(used.user_id, &target, used.credential_version, now)
            .await
            .map_err(ServiceError::email_conflict)?;
        if !moved {
            return Err(invalid_link(TokenPurpose::EmailChange));
        }
        self.notices.deliver(notice, client);
        tracing::info!(user_id = %used.user_id, "email changed");
        self.audit
            .record(Record::own(AuditKind::EmailChanged, used.user_id, client));
        self.users
            .find_by_id(used.user_id)
            .await?
            .ok_or_else(|| invalid_link(TokenPurpose::EmailChange))
    }

    /// "This wasn't me", with a recovery link (an email change's cancel link, or a security
    /// notice's): the account goes back to the address the link was sent to, and everything
    /// an intruder holding the password could have done since is undone (see
    /// `AccountRecoveryStore::secure`). The password no longer works: a reset link goes to
    /// the address.
    #[tracing::instrument(skip_all)]
    pub async fn secure_account(
        &self,
        token: OpaqueToken,
        client: &ClientInfo,
    ) -> Result<(), ServiceError> {
        let now = self.clock.now();
        // No password matches the dummy hash, and checking one costs what any check costs.
        let locked = self.hasher.dummy_hash().clone();
        let secured = self
            .recovery
            .secure(&token.hash(), &locked, now)
            .await
            .map_err(ServiceError::email_conflict)?
            .ok_or_else(|| invalid_link(TokenPurpose::SecureAccount))?;
        tracing::warn!(
            user_id = %secured.user_id,
            ended_sessions = secured.sessions_ended,
            factor_removed = secured.factor_removed,
            "account secured by its owner's link"
        );
        self.audit.record(
            Record::own(AuditKind::AccountSecured, secured.user_id, client).detail(format!(
                "sessions ended: {}; links voided: {}; second factor removed: {}; recovery \
                 codes removed: {}; passkeys removed: {}",
                secured.sessions_ended,
                secured.links_voided,
                secured.factor_removed,
                secured.recovery_codes_removed,
                secured.passkeys_removed
            )),
        );
        if let Some(user) = self.users.find_by_id(secured.user_id).await? {
            self.defer(
                "password-reset link",
                self.mail.clone().password_reset(user, true),
            );
        }
        Ok(())
    }

    /// Deletes used and expired links; returns how many.
    pub async fn delete_spent_tokens(&self) -> Result<u64, ServiceError> {
        Ok(self.tokens.delete_spent(self.clock.now()).await?)
    }

    /// Uses a link once (see `AccountTokenRepository::consume`), or refuses it.
    async fn use_link(
        &self,
        token: &OpaqueToken,
        purpose: TokenPurpose,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<UsedToken, ServiceError> {
        self.tokens
            .consume(&token.hash(), purpose, now)
            .await?
            .ok_or_else(|| invalid_link(purpose))
    }

    fn defer(
        &self,
        what: &'static str,
        job: impl std::future::Future<Output = Result<(), ServiceError>> + Send + 'static,
    ) {
        self.deferred.defer(
            what,
            Box::pin(async move {
                if let Err(error) = job.await {
                    tracing::error!(%error, job = what, "a deferred job failed");
                }
            }),
        );
    }
}

/// The refusal of a link that cannot be used, whatever the reason (the answer does not say
/// which: unknown, used, expired, or issued for an account state that has changed).
fn invalid_link(purpose: TokenPurpose) -> ServiceError {
    let kind = match purpose {
        TokenPurpose::PasswordReset => "password-reset",
        TokenPurpose::EmailVerification => "verification",
        TokenPurpose::EmailChange => "email-change",
        TokenPurpose::SecureAccount => "recovery",
        TokenPurpose::MfaTicket => "sign-in",
    };
    ServiceError::InvalidInput {
        field: "token",
        message: format!(
            "This {kind} link is invalid, was already used, or has expired; ask for a new one."
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::application::AuthFailure;
    use crate::application::Policies;
    use crate::application::testing::{Harness, policies};
    use crate::domain::NewUser;

    const EMAIL: &str = "ada@example.com";

    async fn sign_up(h: &Harness) -> SignedIn {
        h.services
            .auth
            .register(
                NewUser {
                    email: Email::parse(EMAIL).unwrap(),
                    password: Password::new("correct horse".into()).unwrap(),
                    display_name: None,
                },
                &ClientInfo::default(),
            )
            .await
            .unwrap()
    }

    fn password(s: &str) -> Password {
        Password::new(s.into()).unwrap()
    }

    fn is_invalid_token(result: &Result<impl std::fmt::Debug, ServiceError>) -> bool {
        matches!(
            result,
            Err(ServiceError::InvalidInput { field: "token", .. })
        )
    }

    async fn request_reset(h: &Harness) -> OpaqueToken {
        h.services
            .account
            .request_password_reset(Email::parse(EMAIL).unwrap(), &ClientInfo::default())
            .await
            .unwrap();
        OpaqueToken::from_client(h.last_link_token(EMAIL).await)
    }

    #[tokio::test]
    async fn a_reset_link_sets_the_password_ends_sessions_and_signs_in() {
        let h = Harness::new().await;
        let services = &h.services;
        let before = sign_up(&h).await;
        let token = request_reset(&h).await;
        let text = h.sent().last().unwrap().text.clone();
        assert!(text.contains("https://app.example.com/reset-password?token="));

        let signed_in = services
            .account
            .reset_password(token, password("battery staple"), &ClientInfo::default())
            .await
            .unwrap();
        let old = services
            .sessions
            .authenticate(&before.access_token.token)
            .await;
        assert!(matches!(
            old,
            Err(ServiceError::Unauthenticated(AuthFailure::SessionEnded))
        ));
        assert!(
            services
                .sessions
                .authenticate(&signed_in.access_token.token)
                .await
                .is_ok()
        );
        assert!(
            signed_in.user.email_verified_at.is_some(),
            "the link proved the email"
        );
        assert!(
            services
                .auth
                .login(
                    Email::parse(EMAIL).unwrap(),
                    "battery staple".into(),
                    &ClientInfo::default()
                )
                .await
                .is_ok()
        );
    }

    #[tokio::test]
    async fn a_reset_gives_an_account_without_a_password_one() {
        let h = Harness::new().await;
        let mut social_only = User::new(
            Email::parse(EMAIL).unwrap(),
            None,
            crate::domain::Role::User,
            h.hasher.dummy_hash().clone(),
            Some(h.clock.now()),
            h.clock.now(),
        );
        social_only.has_password = false;
        h.stores.accounts.insert(&social_only).await.unwrap();
        let token = request_reset(&h).await;

        h.services
            .account
            .reset_password(token, password("battery staple"), &ClientInfo::default())
            .await
            .unwrap();

        assert!(h.user(social_only.id).await.unwrap().has_password);
        assert!(
            h.services
                .auth
                .login(
                    Email::parse(EMAIL).unwrap(),
                    "battery staple".into(),
                    &ClientInfo::default()
                )
                .await
                .is_ok()
        );
    }

    #[tokio::test]
    async fn a_guessable_new_password_is_refused_and_the_reset_link_stays_usable() {
        let h = Harness::new().await;
        let account = h.services.account.clone();
        sign_up(&h).await;
        let token = request_reset(&h).await;
        let again = OpaqueToken::from_client(token.expose().to_owned());
        for weak in ["ada@example.com", "password123"] {
            let refused = account
                .reset_password(
                    OpaqueToken::from_client(token.expose().to_owned()),
                    password(weak),
                    &ClientInfo::default(),
                )
                .await;
            assert!(
                matches!(
                    refused,
                    Err(ServiceError::InvalidInput {
                        field: "newPassword",
                        ..
                    })
                ),
                "{weak}: {refused:?}"
            );
        }
        account
            .reset_password(again, password("battery staple"), &ClientInfo::default())
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_reset_link_works_once_expires_and_is_replaced_by_a_newer_one() {
        let h = Harness::new().await;
        let account = h.services.account.clone();
        sign_up(&h).await;
        let client = ClientInfo::default();

        let used = request_reset(&h).await;
        let used_again = OpaqueToken::from_client(used.expose().to_owned());
        account
            .reset_password(used, password("new password 1"), &client)
            .await
            .unwrap();
        let reuse = account
            .reset_password(used_again, password("new password 2"), &client)
            .await;
        assert!(is_invalid_token(&reuse));

        let superseded = request_reset(&h).await;
        let newest = request_reset(&h).await;
        let old_link = account
            .reset_password(superseded, password("new password 3"), &client)
            .await;
        assert!(is_invalid_token(&old_link));

        h.clock.advance(Duration::minutes(31));
        let expired = account
            .reset_password(newest, password("new password 4"), &client)
            .await;
        assert!(is_invalid_token(&expired));
    }

    #[tokio::test]
    async fn a_reset_request_for_an_unknown_email_looks_the_same_and_sends_nothing() {
        use crate::application::ports::Quota;
        use crate::application::throttle::ThrottlePolicy;
        let h = Harness::with(Policies {
            throttle: ThrottlePolicy {
                password_reset_per_account: Some(Quota {
                    burst: 1,
                    period: std::time::Duration::from_secs(3600),
                }),
                ..ThrottlePolicy::default()
            },
            ..policies()
        })
        .await;
        sign_up(&h).await;
        h.settle().await;
        let mails_before = h.sent().len();
        let account = h.services.account.clone();
        let ask = |email: &str| {
            let account = account.clone();
            let email = Email::parse(email).unwrap();
            async move {
                account
                    .request_password_reset(email, &ClientInfo::default())
                    .await
            }
        };

        let known = ask(EMAIL).await;
        let unknown = ask("nobody@example.com").await;
        assert!(matches!(known, Ok(())), "{known:?}");
        assert!(matches!(unknown, Ok(())), "{unknown:?}");
        // The answer never waits for the mail, so its timing cannot tell the two apart.
        assert_eq!(h.sent().len(), mails_before);
        assert_eq!(h.hasher.verifications(), 0);
        // An unknown address is limited exactly as a known one.
        for email in [EMAIL, "nobody@example.com"] {
            let again = ask(email).await;
            assert!(
                matches!(
                    again,
                    Err(ServiceError::RateLimited {
                        retry_after_secs: 3600
                    })
                ),
                "{email}: {again:?}"
            );
        }

        h.settle().await;
        let sent = h.sent();
        assert!(sent.iter().all(|e| e.to != "nobody@example.com"));
        assert_eq!(
            sent.iter().filter(|e| e.to == EMAIL).count(),
            mails_before + 1,
            "the known address got its link"
        );
    }

    #[tokio::test]
    async fn the_verification_link_confirms_the_email_once() {
        let h = Harness::new().await;
        let account = h.services.account.clone();
        let user = sign_up(&h).await.user;
        let token = h.last_link_token(EMAIL).await;

        let verified = account
            .verify_email(
                OpaqueToken::from_client(token.clone()),
                &ClientInfo::default(),
            )
            .await
            .unwrap();
        assert_eq!(verified.id, user.id);
        assert_eq!(verified.email_verified_at, Some(h.clock.now()));
        let again = account
            .verify_email(OpaqueToken::from_client(token), &ClientInfo::default())
            .await;
        assert!(is_invalid_token(&again));
    }

    #[tokio::test]
    async fn resending_replaces_the_link_and_stops_once_verified() {
        let h = Harness::new().await;
        let account = h.services.account.clone();
        sign_up(&h).await;
        let first = h.last_link_token(EMAIL).await;
        account
            .resend_verification(Email::parse(EMAIL).unwrap(), &ClientInfo::default())
            .await
            .unwrap();
        let second = h.last_link_token(EMAIL).await;
        assert_ne!(first, second);
        assert!(is_invalid_token(
            &account
                .verify_email(OpaqueToken::from_client(first), &ClientInfo::default())
                .await
        ));
        account
            .verify_email(OpaqueToken::from_client(second), &ClientInfo::default())
            .await
            .unwrap();

        let sent = h.sent().len();
        account
            .resend_verification(Email::parse(EMAIL).unwrap(), &ClientInfo::default())
            .await
            .unwrap();
        h.settle().await;
        assert_eq!(h.sent().len(), sent, "nothing to confirm");
    }
}
