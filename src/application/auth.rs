//! Signing up, signing in, and recognising the caller behind an access token.

use std::net::IpAddr;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::domain::{
    Email, NewUser, Password, RefreshToken, RepositoryError, Role, Session, SessionId,
    SessionRepository, User, UserId, UserRepository,
};

use super::error::{AuthFailure, ServiceError};
use super::ports::{
    AccessClaims, AccessTokens, Clock, IssuedAccessToken, PasswordHasher, TokenError,
};

/// How long sessions live.
#[derive(Debug, Clone, Copy)]
pub struct SessionPolicy {
    /// A session unused for this long ends.
    pub idle_timeout: chrono::Duration,
    /// No session outlives this, however often it is used.
    pub max_age: chrono::Duration,
}

impl SessionPolicy {
    /// When a session created at `created_at` and last used at `used_at` ends.
    fn expiry(&self, created_at: DateTime<Utc>, used_at: DateTime<Utc>) -> DateTime<Utc> {
        (used_at + self.idle_timeout).min(created_at + self.max_age)
    }
}

/// Where a request came from, recorded on the session it opens.
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    pub user_agent: Option<String>,
    pub ip: Option<IpAddr>,
}

impl ClientInfo {
    /// User agents are attacker-controlled; keep what is useful to recognise a device.
    const MAX_USER_AGENT_CHARS: usize = 512;

    fn user_agent(&self) -> Option<String> {
        self.user_agent
            .as_deref()
            .map(|ua| ua.chars().take(Self::MAX_USER_AGENT_CHARS).collect())
    }
}

/// The authenticated caller of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Principal {
    pub user_id: UserId,
    pub session_id: SessionId,
}

/// The outcome of signing up or in: a new session and its tokens.
#[derive(Debug)]
pub struct SignedIn {
    pub user: User,
    pub access_token: IssuedAccessToken,
    pub refresh_token: RefreshToken,
}

/// Sign-up, sign-in and access-token authentication.
pub struct AuthService {
    users: Arc<dyn UserRepository>,
    sessions: Arc<dyn SessionRepository>,
    hasher: Arc<dyn PasswordHasher>,
    tokens: Arc<dyn AccessTokens>,
    clock: Arc<dyn Clock>,
    policy: SessionPolicy,
}

impl AuthService {
    pub fn new(
        users: Arc<dyn UserRepository>,
        sessions: Arc<dyn SessionRepository>,
        hasher: Arc<dyn PasswordHasher>,
        tokens: Arc<dyn AccessTokens>,
        clock: Arc<dyn Clock>,
        policy: SessionPolicy,
    ) -> Self {
        Self {
            users,
            sessions,
            hasher,
            tokens,
            clock,
            policy,
        }
    }

    /// Creates an account and signs it in.
    #[tracing::instrument(skip_all)]
    pub async fn register(
        &self,
        new_user: NewUser,
        client: ClientInfo,
    ) -> Result<SignedIn, ServiceError> {
        let password_hash = self.hasher.hash(new_user.password).await?;
        let now = self.clock.now();
        let user = User {
            id: UserId::generate(),
            email: new_user.email,
            display_name: new_user.display_name,
            role: Role::User,
            password_hash,
            created_at: now,
            updated_at: now,
        };
        // The unique index decides, so concurrent sign-ups with one email cannot both win.
        self.users.insert(&user).await.map_err(|e| match e {
            RepositoryError::Conflict => ServiceError::EmailTaken,
            other => other.into(),
        })?;
        tracing::info!(user_id = %user.id, "account registered");
        self.open_session(user, client).await
    }

    /// Checks an email and password and opens a session.
    #[tracing::instrument(skip_all)]
    pub async fn login(
        &self,
        email: Email,
        password: String,
        client: ClientInfo,
    ) -> Result<SignedIn, ServiceError> {
        let user = self.users.find_by_email(&email).await?;
        // An over-long password matches no account; refuse it before spending a hash on it.
        let password = Password::candidate(password).ok_or(AuthFailure::InvalidCredentials)?;
        // Unknown email and wrong password take the same path and the same time.
        let hash = user
            .as_ref()
            .map_or(self.hasher.dummy_hash(), |u| &u.password_hash);
        let matches = self.hasher.verify(password, hash).await?;
        let user = match user {
            Some(user) if matches => user,
            _ => {
                tracing::info!("sign-in refused: wrong email or password");
                return Err(AuthFailure::InvalidCredentials.into());
            }
        };
        tracing::info!(user_id = %user.id, "signed in");
        self.open_session(user, client).await
    }

    /// The caller behind an access token, if the token is genuine and its session still open.
    /// Checking the session on every request is what makes revocation take effect at once.
    pub async fn authenticate(&self, access_token: &str) -> Result<Principal, ServiceError> {
        let claims = self.tokens.verify(access_token).map_err(|e| match e {
            TokenError::Expired => AuthFailure::ExpiredToken,
            TokenError::Invalid => AuthFailure::InvalidToken,
        })?;
        let session = self
            .sessions
            .find(claims.session_id)
            .await?
            .ok_or(AuthFailure::SessionEnded)?;
        if session.user_id != claims.user_id {
            return Err(AuthFailure::InvalidToken.into());
        }
        if !session.is_active_at(self.clock.now()) {
            return Err(AuthFailure::SessionEnded.into());
        }
        Ok(Principal {
            user_id: claims.user_id,
            session_id: claims.session_id,
        })
    }

    async fn open_session(&self, user: User, client: ClientInfo) -> Result<SignedIn, ServiceError> {
        let now = self.clock.now();
        let session = Session {
            id: SessionId::generate(),
            user_id: user.id,
            created_at: now,
            last_used_at: now,
            expires_at: self.policy.expiry(now, now),
            revoked_at: None,
            user_agent: client.user_agent(),
            ip: client.ip.map(|ip| ip.to_string()),
        };
        let refresh_token = RefreshToken::generate().map_err(ServiceError::internal)?;
        self.sessions
            .create(&session, &refresh_token.hash())
            .await?;
        let access_token = self
            .tokens
            .issue(
                AccessClaims {
                    user_id: user.id,
                    session_id: session.id,
                },
                now,
            )
            .map_err(ServiceError::internal)?;
        Ok(SignedIn {
            user,
            access_token,
            refresh_token,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::application::fakes::{self, Fakes};

    fn new_user(email: &str, password: &str) -> NewUser {
        NewUser {
            email: Email::parse(email).unwrap(),
            password: Password::new(password.into()).unwrap(),
            display_name: None,
        }
    }

    #[tokio::test]
    async fn register_stores_a_hashed_password_and_signs_in() {
        let fakes = Fakes::new();
        let signed_in = fakes
            .auth()
            .register(
                new_user("ada@example.com", "correct horse"),
                ClientInfo::default(),
            )
            .await
            .unwrap();

        let stored = fakes.users.get(signed_in.user.id).unwrap();
        assert_eq!(stored.email.as_str(), "ada@example.com");
        assert_eq!(stored.role, Role::User);
        assert_ne!(stored.password_hash.as_str(), "correct horse");
        let principal = fakes
            .auth()
            .authenticate(&signed_in.access_token.token)
            .await
            .unwrap();
        assert_eq!(principal.user_id, signed_in.user.id);
    }

    #[tokio::test]
    async fn register_with_a_taken_email_is_a_conflict() {
        let fakes = Fakes::new();
        let auth = fakes.auth();
        auth.register(
            new_user("ada@example.com", "password-1"),
            ClientInfo::default(),
        )
        .await
        .unwrap();
        let second = auth
            .register(
                new_user("ADA@example.com ", "password-2"),
                ClientInfo::default(),
            )
            .await;
        assert!(matches!(second, Err(ServiceError::EmailTaken)));
    }

    #[tokio::test]
    async fn login_checks_the_password() {
        let fakes = Fakes::new();
        let auth = fakes.auth();
        auth.register(
            new_user("ada@example.com", "correct horse"),
            ClientInfo::default(),
        )
        .await
        .unwrap();

        let email = Email::parse("ada@example.com").unwrap();
        assert!(
            auth.login(email.clone(), "correct horse".into(), ClientInfo::default())
                .await
                .is_ok()
        );
        let wrong = auth
            .login(email, "wrong horse".into(), ClientInfo::default())
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
        let fakes = Fakes::new();
        let result = fakes
            .auth()
            .login(
                Email::parse("nobody@example.com").unwrap(),
                "whatever1".into(),
                ClientInfo::default(),
            )
            .await;
        assert!(matches!(
            result,
            Err(ServiceError::Unauthenticated(
                AuthFailure::InvalidCredentials
            ))
        ));
        assert_eq!(
            fakes.hasher.verifications(),
            1,
            "the dummy hash was checked"
        );
    }

    #[tokio::test]
    async fn an_overlong_password_is_refused_without_hashing() {
        let fakes = Fakes::new();
        let result = fakes
            .auth()
            .login(
                Email::parse("nobody@example.com").unwrap(),
                "x".repeat(10_000),
                ClientInfo::default(),
            )
            .await;
        assert!(matches!(
            result,
            Err(ServiceError::Unauthenticated(
                AuthFailure::InvalidCredentials
            ))
        ));
        assert_eq!(fakes.hasher.verifications(), 0);
    }

    #[tokio::test]
    async fn a_saturated_hasher_sheds_load_instead_of_queueing() {
        let fakes = Fakes::new();
        fakes.hasher.saturate();
        let result = fakes
            .auth()
            .register(
                new_user("ada@example.com", "correct horse"),
                ClientInfo::default(),
            )
            .await;
        assert!(matches!(result, Err(ServiceError::Overloaded { .. })));
        assert!(fakes.users.is_empty(), "nothing was stored");
    }

    #[tokio::test]
    async fn the_session_records_the_client_and_expires_by_policy() {
        let fakes = Fakes::new();
        let client = ClientInfo {
            user_agent: Some("x".repeat(2_000)),
            ip: Some("203.0.113.7".parse().unwrap()),
        };
        let signed_in = fakes
            .auth()
            .register(new_user("ada@example.com", "correct horse"), client)
            .await
            .unwrap();
        let principal = fakes
            .auth()
            .authenticate(&signed_in.access_token.token)
            .await
            .unwrap();
        let session = fakes.sessions.get(principal.session_id).unwrap();
        assert_eq!(session.ip.as_deref(), Some("203.0.113.7"));
        assert_eq!(session.user_agent.unwrap().len(), 512);
        assert_eq!(
            session.expires_at,
            fakes.clock.now() + fakes::POLICY.idle_timeout
        );
    }

    #[tokio::test]
    async fn authentication_fails_once_the_session_has_ended() {
        let fakes = Fakes::new();
        let signed_in = fakes
            .auth()
            .register(
                new_user("ada@example.com", "correct horse"),
                ClientInfo::default(),
            )
            .await
            .unwrap();
        let token = signed_in.access_token.token;

        fakes.clock.advance(fakes::POLICY.idle_timeout);
        let result = fakes.auth().authenticate(&token).await;
        assert!(matches!(
            result,
            Err(ServiceError::Unauthenticated(AuthFailure::SessionEnded))
        ));
    }

    #[tokio::test]
    async fn a_token_naming_another_users_session_is_invalid() {
        let fakes = Fakes::new();
        let auth = fakes.auth();
        let ada = auth
            .register(
                new_user("ada@example.com", "correct horse"),
                ClientInfo::default(),
            )
            .await
            .unwrap();
        let ada_session = auth
            .authenticate(&ada.access_token.token)
            .await
            .unwrap()
            .session_id;
        let forged = fakes::token_for(UserId::generate(), ada_session);
        assert!(matches!(
            auth.authenticate(&forged).await,
            Err(ServiceError::Unauthenticated(AuthFailure::InvalidToken))
        ));
    }
}
