//! Credentials: signing up, signing in, changing the password.

use std::sync::Arc;

use crate::domain::{
    AccountStore, AuditKind, AuthMethods, Email, HotReads, NewUser, Password, PasswordAttempt,
    Role, User, UserId,
};

use super::account::AccountService;
use super::audit::{AuditTrail, Record};
use super::caller::{ClientInfo, Principal};
use super::error::{AuthFailure, ServiceError};
use super::notices::{Notice, SecurityNotices};
use super::passwords::{Confirmation, Matched, require_strong, verify_attempt};
use super::ports::{Clock, PasswordHasher};
use super::second_factor::MfaService;
use super::sessions::{SessionService, SignedIn};
use super::throttle::Throttle;

/// Sign-up, sign-in and password changes.
pub struct AuthService {
    users: Arc<dyn AccountStore>,
    reads: Arc<dyn HotReads>,
    notices: Arc<SecurityNotices>,
    hasher: Arc<dyn PasswordHasher>,
    confirmation: Arc<Confirmation>,
    sessions: Arc<SessionService>,
    account: Arc<AccountService>,
    mfa: Arc<MfaService>,
    clock: Arc<dyn Clock>,
    audit: AuditTrail,
    throttle: Arc<Throttle>,
}

/// What [`AuthService`] works with.
pub struct AuthDeps {
    pub users: Arc<dyn AccountStore>,
    pub reads: Arc<dyn HotReads>,
    pub notices: Arc<SecurityNotices>,
    pub hasher: Arc<dyn PasswordHasher>,
    pub confirmation: Arc<Confirmation>,
    pub sessions: Arc<SessionService>,
    pub account: Arc<AccountService>,
    pub mfa: Arc<MfaService>,
    pub clock: Arc<dyn Clock>,
    pub audit: AuditTrail,
    pub throttle: Arc<Throttle>,
}

impl AuthService {
    pub fn new(deps: AuthDeps) -> Self {
        Self {
            users: deps.users,
            reads: deps.reads,
            notices: deps.notices,
            hasher: deps.hasher,
            confirmation: deps.confirmation,
            sessions: deps.sessions,
            account: deps.account,
            mfa: deps.mfa,
            clock: deps.clock,
            audit: deps.audit,
            throttle: deps.throttle,
        }
    }

    /// Creates an account, emails a link to confirm the address, and signs the account in
    /// (unless confirmed addresses are required to sign in).
    #[tracing::instrument(skip_all)]
    pub async fn register(
        &self,
        new_user: NewUser,
        client: &ClientInfo,
    ) -> Result<SignedIn, ServiceError> {
        self.throttle.register(client).await?;
        require_strong(
            &new_user.password,
            &new_user.email,
            new_user.display_name.as_ref(),
            "password",
        )
        .await?;
        let password_hash = self.hasher.hash(new_user.password).await?;
        // An address another account may be given back to is not free, like a taken one.
        self.account
            .ensure_unreserved(&new_user.email, None)
            .await?;
        let now = self.clock.now();
        let user = User::new(
            new_user.email,
            new_user.display_name,
            Role::User,
            password_hash,
            None,
            now,
        );
        // The unique index decides, so concurrent sign-ups with one email cannot both win.
        self.users
            .insert(&user)
            .await
            .map_err(ServiceError::email_conflict)?;
        tracing::info!(user_id = %user.id, "account registered");
        self.audit
            .record(Record::own(AuditKind::Registered, user.id, client));
        self.account.send_verification(user.clone());
        self.sessions
            .open(user, AuthMethods::Password, client)
            .await
    }

    /// Checks an email and password and opens a session.
    #[tracing::instrument(skip_all)]
    pub async fn login(
        &self,
        email: Email,
        password: String,
        client: &ClientInfo,
    ) -> Result<SignedIn, ServiceError> {
        // Limits first: a refused attempt costs no password hash.
        let _turn = self.throttle.login(client, &email).await?;
        let user = self.reads.user_by_email(&email).await?;
        // An over-long password matches no account; refuse it before spending a hash on it.
        let password = PasswordAttempt::parse(password).ok_or(AuthFailure::InvalidCredentials)?;
        let user = match user {
            Some(user) if !user.has_password => {
                // An account that signs in only through a provider has no password: refused
                // as a wrong one, after the same hash work, whatever its stored hash is.
                verify_attempt(self.hasher.as_ref(), &password, self.hasher.dummy_hash()).await?;
                self.throttle.password_failed(&email).await;
                return Err(self.refuse_login(Some(user.id), client, "no password"));
            }
            Some(user) => {
                if !self.password_matches(&user, &password).await? {
                    self.throttle.password_failed(&email).await;
                    return Err(self.refuse_login(Some(user.id), client, "wrong password"));
                }
                user
            }
            None => {
                // Unknown email and wrong password take the same path and the same time (as
                // many hashes: one per form of the attempt), and count toward the same lockout.
                verify_attempt(self.hasher.as_ref(), &password, self.hasher.dummy_hash()).await?;
                self.throttle.password_failed(&email).await;
                return Err(self.refuse_login(None, client, "unknown email"));
            }
        };
        self.throttle.password_succeeded(&email).await;
        if self.sessions.has_second_factor(&user).await? {
            // The password was right; the session waits for the second factor.
            self.sessions.policy().admit(&user)?;
            return Err(self.mfa.challenge(&user).await);
        }
        let id = user.id;
        match self
            .sessions
            .open(user, AuthMethods::Password, client)
            .await
        {
            Ok(signed_in) => {
                tracing::info!(user_id = %id, "signed in");
                self.audit
                    .record(Record::own(AuditKind::LoginSucceeded, id, client));
                Ok(signed_in)
            }
            Err(refused) => {
                self.audit.record(Record {
                    kind: AuditKind::LoginFailed,
                    actor: None,
                    subject: Some(id),
                    client: Some(client),
                    detail: Some(refused.to_string()),
                });
                Err(refused)
            }
        }
    }

    /// Sets a new password for the caller, who must know the current one, and ends every
    /// other session: whoever else knew the old password is signed out.
    pub async fn change_password(
        &self,
        caller: &Principal,
        current: String,
        new: Password,
        client: &ClientInfo,
    ) -> Result<(), ServiceError> {
        let user = self
            .users
            .find_by_id(caller.user_id)
            .await?
            .ok_or(AuthFailure::SessionEnded)?;
        self.confirmation
            .sensitive_change(caller, &user, current)
            .await
            .map_err(|e| match e {
                ServiceError::InvalidInput { message, .. } => ServiceError::InvalidInput {
                    field: "currentPassword",
                    message,
                },
                other => other,
            })?;
        require_strong(&new, &user.email, user.display_name.as_ref(), "newPassword").await?;
        let hash = self.hasher.hash(new).await?;
        let now = self.clock.now();
        self.users.set_password_hash(user.id, &hash, now).await?;
        let ended = self
            .sessions
            .end_other_sessions(user.id, Some(caller.session_id))
            .await?;
        tracing::info!(user_id = %user.id, ended_sessions = ended, "password changed");
        self.audit.record(
            Record::own(AuditKind::PasswordChanged, user.id, client)
                .detail(format!("other sessions ended: {ended}")),
        );
        self.notices
            .send(user.id, Notice::PasswordChanged, now, client)
            .await;
        Ok(())
    }

    /// Verifies a password, and replaces the hash while the password is at hand when it was
    /// made with outdated parameters or of the password as typed before passwords were
    /// normalised.
    async fn password_matches(
        &self,
        user: &User,
        password: &PasswordAttempt,
    ) -> Result<bool, ServiceError> {
        let matched = verify_attempt(self.hasher.as_ref(), password, &user.password_hash).await?;
        let rehash = match matched {
            Matched::No => return Ok(false),
            Matched::AsTyped => true,
            Matched::Normalised => self.hasher.needs_rehash(&user.password_hash),
        };
        if rehash {
            // Best effort: the sign-in must not fail because an upgrade could not be done now.
            match self.hasher.hash(password.normalised().clone()).await {
                Ok(hash) => {
                    self.users
                        .set_password_hash(user.id, &hash, self.clock.now())
                        .await?;
                    tracing::info!(user_id = %user.id, "password hash upgraded (parameters or normalisation)");
                }
                Err(error) => {
                    tracing::warn!(user_id = %user.id, %error, "password hash upgrade postponed")
                }
            }
        }
        Ok(true)
    }

    fn refuse_login(
        &self,
        account: Option<UserId>,
        client: &ClientInfo,
        why: &str,
    ) -> ServiceError {
        tracing::info!("sign-in refused: wrong email or password");
        self.audit.record(Record {
            kind: AuditKind::LoginFailed,
            actor: None,
            subject: account,
            client: Some(client),
            detail: Some(why.to_owned()),
        });
        AuthFailure::InvalidCredentials.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::application::Policies;
    use crate::application::SessionPolicy;
    use crate::application::testing::{CheapHasher, Harness, SESSIONS, policies};
    use crate::domain::PasswordHash;

    fn new_user(email: &str, password: &str) -> NewUser {
        NewUser {
            email: Email::parse(email).unwrap(),
            password: Password::new(password.into()).unwrap(),
            display_name: None,
        }
    }

    fn email(s: &str) -> Email {
        Email::parse(s).unwrap()
    }

    async fn registered(h: &Harness) -> SignedIn {
        h.services
            .auth
            .register(
                new_user("ada@example.com", "correct horse"),
                &ClientInfo::default(),
            )
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn register_stores_a_hashed_password_and_signs_in() {
        let h = Harness::new().await;
        let signed_in = registered(&h).await;

        let stored = h.user(signed_in.user.id).await.unwrap();
        assert_eq!(stored.email.as_str(), "ada@example.com");
        assert_eq!(stored.role, Role::User);
        assert_eq!(stored.email_verified_at, None);
        assert_ne!(stored.password_hash.as_str(), "correct horse");
        let caller = h
            .services
            .sessions
            .authenticate(&signed_in.access_token.token)
            .await
            .unwrap();
        assert_eq!(caller.principal.user_id, signed_in.user.id);
    }

    #[tokio::test]
    async fn register_emails_a_verification_link() {
        let h = Harness::new().await;
        registered(&h).await;
        assert!(h.sent().is_empty(), "sent later, not on the request");
        h.settle().await;
        let sent = h.sent().clone();
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].to, "ada@example.com");
        assert!(
            sent[0]
                .text
                .contains("https://app.example.com/verify-email?token=")
        );
    }

    #[tokio::test]
    async fn register_with_a_taken_email_is_a_conflict() {
        let h = Harness::new().await;
        registered(&h).await;
        let second = h
            .services
            .auth
            .register(
                new_user("ADA@example.com ", "another horse battery"),
                &ClientInfo::default(),
            )
            .await;
        assert!(matches!(second, Err(ServiceError::EmailTaken)));
    }

    #[tokio::test]
    async fn login_checks_the_password() {
        let h = Harness::new().await;
        registered(&h).await;
        let auth = h.services.auth.clone();

        let client = ClientInfo::default();
        assert!(
            auth.login(email("ada@example.com"), "correct horse".into(), &client)
                .await
                .is_ok()
        );
        let wrong = auth
            .login(email("ada@example.com"), "wrong horse".into(), &client)
            .await;
        assert!(matches!(
            wrong,
            Err(ServiceError::Unauthenticated(
                AuthFailure::InvalidCredentials
            ))
        ));
    }

    #[tokio::test]
    async fn unknown_email_fails_like_a_wrong_password_after_the_same_hash_work() {
        let h = Harness::new().await;
        let result = h
            .services
            .auth
            .login(
                email("nobody@example.com"),
                "whatever1".into(),
                &ClientInfo::default(),
            )
            .await;
        assert!(matches!(
            result,
            Err(ServiceError::Unauthenticated(
                AuthFailure::InvalidCredentials
            ))
        ));
        assert_eq!(h.hasher.verifications(), 1, "the dummy hash was checked");
    }

    #[tokio::test]
    async fn an_overlong_password_is_refused_without_hashing() {
        let h = Harness::new().await;
        let result = h
            .services
            .auth
            .login(
                email("nobody@example.com"),
                "x".repeat(10_000),
                &ClientInfo::default(),
            )
            .await;
        assert!(matches!(
            result,
            Err(ServiceError::Unauthenticated(
                AuthFailure::InvalidCredentials
            ))
        ));
        assert_eq!(h.hasher.verifications(), 0);
    }

    #[tokio::test]
    async fn a_saturated_hasher_sheds_load_instead_of_queueing() {
        let h = Harness::new().await;
        h.hasher.saturate();
        let result = h
            .services
            .auth
            .register(
                new_user("ada@example.com", "correct horse"),
                &ClientInfo::default(),
            )
            .await;
        assert!(matches!(result, Err(ServiceError::Overloaded { .. })));
        assert!(
            h.user_by_email("ada@example.com").await.is_none(),
            "nothing was stored"
        );
    }

    #[tokio::test]
    async fn login_upgrades_a_hash_made_with_outdated_parameters() {
        let h = Harness::new().await;
        let user = registered(&h).await.user;
        h.stores
            .accounts
            .set_password_hash(
                user.id,
                &CheapHasher::outdated_hash("correct horse"),
                h.clock.now(),
            )
            .await
            .unwrap();

        h.services
            .auth
            .login(
                email("ada@example.com"),
                "correct horse".into(),
                &ClientInfo::default(),
            )
            .await
            .unwrap();
        assert_eq!(
            h.user(user.id).await.unwrap().password_hash.as_str(),
            "current$correct horse"
        );
    }

    #[tokio::test]
    async fn unverified_accounts_cannot_sign_in_when_the_policy_requires_it() {
        let h = Harness::with(Policies {
            sessions: SessionPolicy {
                require_verified_email: true,
                ..SESSIONS
            },
            ..policies()
        })
        .await;
        let auth = h.services.auth.clone();
        let registration = auth
            .register(
                new_user("ada@example.com", "correct horse"),
                &ClientInfo::default(),
            )
            .await;
        assert!(matches!(registration, Err(ServiceError::EmailNotVerified)));
        assert!(
            h.user_by_email("ada@example.com").await.is_some(),
            "the account exists"
        );

        let login = auth
            .login(
                email("ada@example.com"),
                "correct horse".into(),
                &ClientInfo::default(),
            )
            .await;
        assert!(matches!(login, Err(ServiceError::EmailNotVerified)));
    }

    #[tokio::test]
    async fn changing_the_password_needs_the_current_one_and_ends_other_sessions() {
        let h = Harness::new().await;
        let services = &h.services;
        let first = registered(&h).await;
        let client = ClientInfo::default();
        let second = services
            .auth
            .login(email("ada@example.com"), "correct horse".into(), &client)
            .await
            .unwrap();
        let caller = services
            .sessions
            .authenticate(&second.access_token.token)
            .await
            .unwrap()
            .principal;
        let new = || Password::new("battery staple".into()).unwrap();

        let wrong = services
            .auth
            .change_password(&caller, "not it".into(), new(), &client)
            .await;
        assert!(matches!(
            wrong,
            Err(ServiceError::InvalidInput {
                field: "currentPassword",
                ..
            })
        ));

        services
            .auth
            .change_password(&caller, "correct horse".into(), new(), &client)
            .await
            .unwrap();
        assert!(
            services
                .sessions
                .authenticate(&first.access_token.token)
                .await
                .is_err(),
            "the other session ended"
        );
        assert!(
            services
                .sessions
                .authenticate(&second.access_token.token)
                .await
                .is_ok(),
            "this session stays"
        );
        assert!(
            services
                .auth
                .login(email("ada@example.com"), "battery staple".into(), &client)
                .await
                .is_ok()
        );
    }

    #[tokio::test]
    async fn register_refuses_a_common_password_before_hashing_anything() {
        let h = Harness::new().await;
        let result = h
            .services
            .auth
            .register(
                new_user("ada@example.com", "password123"),
                &ClientInfo::default(),
            )
            .await;
        let Err(ServiceError::InvalidInput { field, message }) = result else {
            panic!("{result:?}");
        };
        assert_eq!(field, "password");
        assert!(message.contains("common password"), "{message}");
        assert!(h.user_by_email("ada@example.com").await.is_none());
    }

    #[tokio::test]
    async fn change_password_refuses_a_new_password_made_of_the_accounts_email() {
        let h = Harness::new().await;
        let services = &h.services;
        let signed_in = registered(&h).await;
        let caller = services
            .sessions
            .authenticate(&signed_in.access_token.token)
            .await
            .unwrap()
            .principal;
        let result = services
            .auth
            .change_password(
                &caller,
                "correct horse".into(),
                Password::new("ada@example.com".into()).unwrap(),
                &ClientInfo::default(),
            )
            .await;
        assert!(
            matches!(
                result,
                Err(ServiceError::InvalidInput {
                    field: "newPassword",
                    ..
                })
            ),
            "{result:?}"
        );
    }

    const NFD: &str = "Cafe\u{0301} au lait, sans sucre";
    const NFC: &str = "Caf\u{00E9} au lait, sans sucre";

    #[tokio::test]
    async fn a_hash_of_a_password_stored_as_typed_before_normalisation_still_signs_in() {
        let h = Harness::new().await;
        let user = registered(&h).await.user;
        // What an account registered with a decomposed password before normalisation holds.
        h.stores
            .accounts
            .set_password_hash(
                user.id,
                &PasswordHash::new(format!("current${NFD}")),
                h.clock.now(),
            )
            .await
            .unwrap();
        let auth = h.services.auth.clone();
        let client = ClientInfo::default();

        let before = h.hasher.verifications();
        auth.login(email("ada@example.com"), NFD.into(), &client)
            .await
            .unwrap();
        assert_eq!(h.hasher.verifications() - before, 2, "NFC, then as typed");
        assert_eq!(
            h.user(user.id).await.unwrap().password_hash.as_str(),
            format!("current${NFC}"),
            "rehashed to the normalised form"
        );
        for typed in [NFC, NFD] {
            auth.login(email("ada@example.com"), typed.into(), &client)
                .await
                .unwrap();
        }
    }

    #[tokio::test]
    async fn an_account_without_a_password_refuses_every_password_like_a_wrong_one() {
        let h = Harness::new().await;
        let mut social_only = User::new(
            email("ada@example.com"),
            None,
            Role::User,
            // Even a stored hash that would match is not a password the account has.
            PasswordHash::new("current$correct horse".into()),
            None,
            h.clock.now(),
        );
        social_only.has_password = false;
        h.stores.accounts.insert(&social_only).await.unwrap();
        let auth = h.services.auth.clone();
        let client = ClientInfo::default();
        for typed in [
            "correct horse",
            "<matches nothing>",
            "Wrong pa\u{0301}ssword",
        ] {
            let before = h.hasher.verifications();
            let known = auth
                .login(email("ada@example.com"), typed.into(), &client)
                .await;
            let known_hashes = h.hasher.verifications() - before;
            let before = h.hasher.verifications();
            let unknown = auth
                .login(email("nobody@example.com"), typed.into(), &client)
                .await;
            let unknown_hashes = h.hasher.verifications() - before;
            assert!(
                matches!(
                    known,
                    Err(ServiceError::Unauthenticated(
                        AuthFailure::InvalidCredentials
                    ))
                ),
                "{typed:?}: {known:?}"
            );
            assert!(unknown.is_err());
            assert_eq!(known_hashes, unknown_hashes, "same work: {typed:?}");
        }
    }

    #[tokio::test]
    async fn an_unknown_email_costs_as_many_hashes_as_a_wrong_password_in_both_forms() {
        let h = Harness::new().await;
        registered(&h).await;
        let auth = h.services.auth.clone();
        let client = ClientInfo::default();
        for (typed, hashes) in [("Wrong pa\u{0301}ssword", 2), ("Wrong password", 1)] {
            let before = h.hasher.verifications();
            let known = auth
                .login(email("ada@example.com"), typed.into(), &client)
                .await;
            let known_hashes = h.hasher.verifications() - before;
            let before = h.hasher.verifications();
            let unknown = auth
                .login(email("nobody@example.com"), typed.into(), &client)
                .await;
            let unknown_hashes = h.hasher.verifications() - before;
            assert!(known.is_err() && unknown.is_err());
            assert_eq!(
                (known_hashes, unknown_hashes),
                (hashes, hashes),
                "{typed:?}"
            );
        }
    }
}
