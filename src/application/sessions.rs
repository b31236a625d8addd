//! Sessions: opening them, recognising the caller behind an access token, refresh-token
//! rotation with reuse detection, and ending them.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::domain::{
    AccountStore, AuditKind, AuthMethods, Authentication, EXACT_TOTAL_UP_TO, HotReads, OpaqueToken,
    Page, PageRequest, PasskeyStore, RefreshChain, RefreshTokenExchange, RefreshVerdict, Session,
    SessionId, SessionRepository, SiblingAdded, User, UserId,
};

use super::audit::{AuditTrail, Record};
use super::caller::{Caller, ClientInfo, Principal};
use super::claims::TokenClaims;
use super::error::{AuthFailure, ServiceError};
use super::ports::{
    AccessClaims, AccessTokens, Clock, CustomClaims, IssuedAccessToken, TokenError, TokenEvent,
};
use super::throttle::Throttle;

/// How long sessions live and how refresh tokens are checked.
#[derive(Debug, Clone, Copy)]
pub struct SessionPolicy {
    /// A session unused for this long ends.
    pub idle_timeout: chrono::Duration,
    /// No session outlives this, however often it is used.
    pub max_age: chrono::Duration,
    /// How long after an exchange the same refresh token may be exchanged again without being
    /// taken for stolen. A browser that fires two refreshes at once (two tabs, a retry after a
    /// dropped response) sends the same token twice within moments; a thief replays it later.
    pub reuse_grace: chrono::Duration,
    /// Whether an account must have confirmed its email to sign in.
    pub require_verified_email: bool,
    /// How recent a session's proof of its user must be for a sensitive change (a factor,
    /// the password, the email, deleting the account).
    pub reauthentication_window: chrono::Duration,
}

impl SessionPolicy {
    /// When a session created at `created_at` and last used at `used_at` ends.
    fn expiry(&self, created_at: DateTime<Utc>, used_at: DateTime<Utc>) -> DateTime<Utc> {
        (used_at + self.idle_timeout).min(created_at + self.max_age)
    }

    /// Refuses accounts that may not hold a session.
    pub fn admit(&self, user: &User) -> Result<(), ServiceError> {
        if user.suspension.is_some() {
            return Err(ServiceError::AccountSuspended);
        }
        if self.require_verified_email && user.email_verified_at.is_none() {
            return Err(ServiceError::EmailNotVerified);
        }
        Ok(())
    }
}

/// The outcome of signing in or refreshing: a session's new tokens, and its user.
#[derive(Debug)]
pub struct SignedIn {
    pub user: User,
    pub access_token: IssuedAccessToken,
    pub refresh_token: OpaqueToken,
    /// How long the session lasts unless it is used again; a browser cookie holding the
    /// refresh token lives as long.
    pub session_expires_in: std::time::Duration,
}

/// A session that proved its user again: a new access token, and the user.
#[derive(Debug)]
pub struct Reauthenticated {
    pub user: User,
    pub access_token: IssuedAccessToken,
}

/// An access token that still grants something, as a resource server is told of it
/// (introspection, Hasura's webhook): the account and session as they are now.
#[derive(Debug)]
pub struct LiveToken {
    pub user: User,
    pub session_id: SessionId,
    pub authenticated: Authentication,
    /// The preset's claims for the account as it is now (a role changed since the token
    /// was signed shows here).
    pub claims: CustomClaims,
}

/// A page of the caller's sessions.
#[derive(Debug)]
pub struct SessionPage {
    pub page: Page<Session>,
    /// How many active sessions (at most [`EXACT_TOTAL_UP_TO`] + 1), when asked for.
    pub total: Option<u64>,
}

/// Opens, checks, refreshes and ends sessions.
pub struct SessionService {
    sessions: Arc<dyn SessionRepository>,
    users: Arc<dyn AccountStore>,
    passkeys: Arc<dyn PasskeyStore>,
    reads: Arc<dyn HotReads>,
    tokens: Arc<dyn AccessTokens>,
    claims: Arc<TokenClaims>,
    clock: Arc<dyn Clock>,
    audit: AuditTrail,
    throttle: Arc<Throttle>,
    policy: SessionPolicy,
}

/// What [`SessionService`] works with.
pub struct SessionDeps {
    pub sessions: Arc<dyn SessionRepository>,
    pub users: Arc<dyn AccountStore>,
    /// To tell whether an account has a passkey (a second factor as much as TOTP is).
    pub passkeys: Arc<dyn PasskeyStore>,
    pub reads: Arc<dyn HotReads>,
    pub tokens: Arc<dyn AccessTokens>,
    /// What tokens say beyond the registered claims.
    pub claims: Arc<TokenClaims>,
    pub clock: Arc<dyn Clock>,
    pub audit: AuditTrail,
    pub throttle: Arc<Throttle>,
    pub policy: SessionPolicy,
}

impl SessionService {
    pub fn new(deps: SessionDeps) -> Self {
        Self {
            sessions: deps.sessions,
            users: deps.users,
            passkeys: deps.passkeys,
            reads: deps.reads,
            tokens: deps.tokens,
            claims: deps.claims,
            clock: deps.clock,
            audit: deps.audit,
            throttle: deps.throttle,
            policy: deps.policy,
        }
    }

    pub fn policy(&self) -> &SessionPolicy {
        &self.policy
    }

    /// What tokens say beyond the registered claims, and the hook's figures.
    pub fn claims(&self) -> &TokenClaims {
        &self.claims
    }

    /// Opens a session for a user whose credentials (`methods`) were just checked.
    pub async fn open(
        &self,
        user: User,
        methods: AuthMethods,
        client: &ClientInfo,
    ) -> Result<SignedIn, ServiceError> {
        self.policy.admit(&user)?;
        let now = self.clock.now();
        let authenticated = Authentication { at: now, methods };
        let id = SessionId::generate();
        // Before the session is stored: a hook that fails closed leaves nothing behind.
        let custom = self
            .claims
            .for_token(&user, id, authenticated, TokenEvent::SignIn)
            .await?;
        let session = Session {
            id,
            user_id: user.id,
            created_at: now,
            last_used_at: now,
            expires_at: self.policy.expiry(now, now),
            revoked_at: None,
            user_agent: client.user_agent(),
            ip: client.ip.map(|ip| ip.to_string()),
            authenticated,
        };
        let refresh_token = OpaqueToken::generate()?;
        self.sessions
            .create(&session, &refresh_token.hash())
            .await?;
        self.signed_in(
            user,
            (session.id, authenticated),
            &custom,
            refresh_token,
            session.expires_at,
            now,
        )
    }

    /// The caller behind an access token, if the token is genuine and its session still open.
    /// Checking the session on every request is what makes revocation take effect at once;
    /// the account is read in the same query, so roles and suspensions apply at once too.
    pub async fn authenticate(&self, access_token: &str) -> Result<Caller, ServiceError> {
        let claims = self
            .tokens
            .verify(access_token, self.clock.now())
            .map_err(|e| match e {
                TokenError::Expired => AuthFailure::ExpiredToken,
                TokenError::Invalid => AuthFailure::InvalidToken,
            })?;
        let (session, user) = self
            .reads
            .session_with_user(claims.session_id)
            .await?
            .ok_or(AuthFailure::SessionEnded)?;
        if session.user_id != claims.user_id {
            return Err(AuthFailure::InvalidToken.into());
        }
        if !session.is_active_at(self.clock.now()) {
            return Err(AuthFailure::SessionEnded.into());
        }
        self.policy.admit(&user)?;
        Ok(Caller {
            principal: Principal {
                user_id: user.id,
                session_id: session.id,
                role: user.role,
                authenticated: session.authenticated,
            },
            user,
        })
    }

    /// What a resource server should believe of `access_token` now: `None` when it grants
    /// nothing (malformed, forged, expired, its session ended, the account suspended or
    /// gone), so the answer never depends on which.
    pub async fn live(&self, access_token: &str) -> Result<Option<LiveToken>, ServiceError> {
        match self.authenticate(access_token).await {
            Ok(caller) => Ok(Some(LiveToken {
                claims: self.claims.preset_claims(&caller.user),
                session_id: caller.principal.session_id,
                authenticated: caller.principal.authenticated,
                user: caller.user,
            })),
            Err(
                ServiceError::Unauthenticated(_)
                | ServiceError::AccountSuspended
                | ServiceError::EmailNotVerified,
            ) => Ok(None),
            Err(other) => Err(other),
        }
    }

    /// Exchanges a refresh token for new tokens, by the rule of [`RefreshChain::judge`]: a
    /// current token moves the chain on; the immediate predecessor, within the grace window,
    /// gets a sibling of the current token (two tabs raced), a bounded number of times;
    /// anything else is reuse, and ends the session.
    #[tracing::instrument(skip_all)]
    pub async fn refresh(
        &self,
        presented: OpaqueToken,
        client: &ClientInfo,
    ) -> Result<SignedIn, ServiceError> {
        self.throttle.refresh(client).await?;
        let presented = presented.hash();
        let successor = OpaqueToken::generate()?;
        // Each lost race means the chain moved; a few rounds settle any honest race.
        for _ in 0..4 {
            let found = self
                .sessions
                .find_by_refresh_token(&presented)
                .await?
                .ok_or(AuthFailure::InvalidRefreshToken)?;
            let session = &found.session;
            let now = self.clock.now();
            if !session.is_active_at(now) {
                return Err(AuthFailure::SessionEnded.into());
            }
            let user = self
                .users
                .find_by_id(session.user_id)
                .await?
                .ok_or(AuthFailure::SessionEnded)?;
            self.policy.admit(&user)?;
            let exchange = RefreshTokenExchange {
                session: session.id,
                presented: &presented,
                successor: &successor.hash(),
                generation: found.chain.generation,
                now,
                expires_at: self.policy.expiry(session.created_at, now),
            };
            let verdict = found
                .chain
                .judge(found.generation, now, self.policy.reuse_grace);
            // Before the exchange is written, and only for a token the chain accepts: a
            // hook that fails closed leaves the presented token usable, and a replayed one
            // never reaches the hook.
            let custom = match verdict {
                RefreshVerdict::Rotate | RefreshVerdict::Sibling => {
                    self.claims
                        .for_token(
                            &user,
                            session.id,
                            session.authenticated,
                            TokenEvent::Refresh,
                        )
                        .await?
                }
                RefreshVerdict::Reuse => CustomClaims::new(),
            };
            let exchanged = match verdict {
                RefreshVerdict::Rotate => self.sessions.rotate_refresh_token(&exchange).await?,
                RefreshVerdict::Sibling => match self
                    .sessions
                    .add_sibling(&exchange, RefreshChain::MAX_SIBLINGS)
                    .await?
                {
                    SiblingAdded::Added => true,
                    SiblingAdded::Moved => false,
                    SiblingAdded::Exhausted => return Err(self.reused(session, client).await?),
                },
                RefreshVerdict::Reuse => return Err(self.reused(session, client).await?),
            };
            if exchanged {
                return self.signed_in(
                    user,
                    (session.id, session.authenticated),
                    &custom,
                    successor,
                    exchange.expires_at,
                    now,
                );
            }
        }
        // The chain kept moving under this request: its session is being refreshed from
        // several places at once, faster than any honest client does.
        Err(ServiceError::RateLimited {
            retry_after_secs: 1,
        })
    }

    /// A refresh token was presented that its chain no longer allows: the session ends.
    async fn reused(
        &self,
        session: &Session,
        client: &ClientInfo,
    ) -> Result<ServiceError, ServiceError> {
        self.sessions.revoke(session.id, self.clock.now()).await?;
        tracing::warn!(
            user_id = %session.user_id,
            session_id = %session.id,
            "refresh token reused: session ended"
        );
        self.audit.record(Record {
            kind: AuditKind::RefreshTokenReused,
            actor: None,
            subject: Some(session.user_id),
            client: Some(client),
            detail: Some(format!("session {} ended", session.id)),
        });
        Ok(AuthFailure::RefreshTokenReused.into())
    }

    /// Ends the session a refresh token belongs to.
    pub async fn logout(
        &self,
        token: OpaqueToken,
        client: &ClientInfo,
    ) -> Result<(), ServiceError> {
        let session = self
            .sessions
            .find_by_refresh_token(&token.hash())
            .await?
            .ok_or(AuthFailure::InvalidRefreshToken)?
            .session;
        if self.sessions.revoke(session.id, self.clock.now()).await? {
            self.audit
                .record(Record::own(AuditKind::LoggedOut, session.user_id, client));
        }
        Ok(())
    }

    /// Ends every session of the caller, the current one included; returns how many ended.
    pub async fn logout_all(
        &self,
        caller: &Principal,
        client: &ClientInfo,
    ) -> Result<u64, ServiceError> {
        let ended = self
            .sessions
            .revoke_all(caller.user_id, None, self.clock.now())
            .await?;
        self.audit.record(
            Record::own(AuditKind::LoggedOut, caller.user_id, client)
                .detail(format!("all sessions ({ended})")),
        );
        Ok(ended)
    }

    /// Ends every session of a user except `keep`.
    pub async fn end_other_sessions(
        &self,
        user: UserId,
        keep: Option<SessionId>,
    ) -> Result<u64, ServiceError> {
        Ok(self
            .sessions
            .revoke_all(user, keep, self.clock.now())
            .await?)
    }

    /// The caller's active sessions, newest first, and how many they are when `count` asks.
    pub async fn list(
        &self,
        caller: &Principal,
        page: &PageRequest<SessionId>,
        count: bool,
    ) -> Result<SessionPage, ServiceError> {
        let now = self.clock.now();
        let total = async {
            match count {
                true => Some(
                    self.sessions
                        .count_active(caller.user_id, now, EXACT_TOTAL_UP_TO)
                        .await,
                )
                .transpose(),
                false => Ok(None),
            }
        };
        let (page, total) =
            tokio::try_join!(self.sessions.list_active(caller.user_id, now, page), total)?;
        Ok(SessionPage { page, total })
    }

    /// Ends one of the caller's sessions.
    pub async fn revoke(
        &self,
        caller: &Principal,
        id: SessionId,
        client: &ClientInfo,
    ) -> Result<(), ServiceError> {
        let now = self.clock.now();
        let owned_and_active = self
            .sessions
            .find(id)
            .await?
            .is_some_and(|s| s.user_id == caller.user_id && s.is_active_at(now));
        if !owned_and_active || !self.sessions.revoke(id, now).await? {
            return Err(ServiceError::NotFound(
                "You have no active session with this id.",
            ));
        }
        self.audit.record(
            Record::own(AuditKind::SessionRevoked, caller.user_id, client)
                .detail(format!("session {id}")),
        );
        Ok(())
    }

    /// Records that the caller's session proved its user again just now (`methods`), and
    /// gives it an access token that says so.
    pub async fn reauthenticated(
        &self,
        caller: &Principal,
        user: User,
        methods: AuthMethods,
    ) -> Result<Reauthenticated, ServiceError> {
        let now = self.clock.now();
        let authenticated = Authentication { at: now, methods };
        let custom = self
            .claims
            .for_token(&user, caller.session_id, authenticated, TokenEvent::StepUp)
            .await?;
        if !self
            .sessions
            .reauthenticate(caller.session_id, authenticated)
            .await?
        {
            return Err(AuthFailure::SessionEnded.into());
        }
        let access_token =
            self.access_token(&user, caller.session_id, authenticated, &custom, now)?;
        Ok(Reauthenticated { user, access_token })
    }

    /// Whether the account has a second factor: an authenticator app (TOTP) or a passkey.
    /// Every question "must this account prove a second factor" asks this.
    pub async fn has_second_factor(&self, user: &User) -> Result<bool, ServiceError> {
        if user.mfa_enabled_at.is_some() {
            return Ok(true);
        }
        Ok(!self.passkeys.list(user.id).await?.is_empty())
    }

    /// Refuses a sensitive change unless the caller's session proved its user within the
    /// reauthentication window, with the second factor if the account has one.
    pub async fn require_recent(
        &self,
        caller: &Principal,
        user: &User,
    ) -> Result<(), ServiceError> {
        let recent = caller.authenticated.is_recent(
            self.clock.now(),
            self.policy.reauthentication_window,
            self.has_second_factor(user).await?,
        );
        if recent {
            Ok(())
        } else {
            Err(ServiceError::ReauthenticationRequired)
        }
    }

    /// Refuses an administrator's change to accounts unless the caller is an administrator
    /// whose session proved them within the reauthentication window (with their second factor
    /// if they have one), as their own sensitive changes need: a stolen administrator's
    /// session must not be enough to take over other accounts, or their own.
    pub async fn require_recent_admin(&self, caller: &Principal) -> Result<(), ServiceError> {
        caller.require_admin()?;
        let admin = self
            .users
            .find_by_id(caller.user_id)
            .await?
            .ok_or(AuthFailure::SessionEnded)?;
        self.require_recent(caller, &admin).await
    }

    fn access_token(
        &self,
        user: &User,
        session_id: SessionId,
        authenticated: Authentication,
        custom: &CustomClaims,
        now: DateTime<Utc>,
    ) -> Result<IssuedAccessToken, ServiceError> {
        self.tokens
            .issue(
                AccessClaims {
                    user_id: user.id,
                    session_id,
                    authenticated,
                },
                custom,
                now,
            )
            .map_err(ServiceError::internal)
    }

    /// Deletes ended sessions; returns how many.
    pub async fn delete_ended(&self) -> Result<u64, ServiceError> {
        Ok(self.sessions.delete_ended(self.clock.now()).await?)
    }

    /// The outcome of a sign-in or refresh: a fresh access token beside the refresh token.
    fn signed_in(
        &self,
        user: User,
        (session_id, authenticated): (SessionId, Authentication),
        custom: &CustomClaims,
        refresh_token: OpaqueToken,
        session_expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<SignedIn, ServiceError> {
        let access_token = self.access_token(&user, session_id, authenticated, custom, now)?;
        Ok(SignedIn {
            user,
            access_token,
            refresh_token,
            session_expires_in: (session_expires_at - now).to_std().unwrap_or_default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::application::testing::{Harness, SESSIONS};
    use crate::domain::{Email, NewUser, Password};

    async fn sign_up(h: &Harness) -> SignedIn {
        h.services
            .auth
            .register(
                NewUser {
                    email: Email::parse("ada@example.com").unwrap(),
                    password: Password::new("correct horse".into()).unwrap(),
                    display_name: None,
                },
                &ClientInfo {
                    user_agent: Some("x".repeat(2_000)),
                    ip: Some("203.0.113.7".parse().unwrap()),
                },
            )
            .await
            .unwrap()
    }

    fn token(signed_in: &SignedIn) -> OpaqueToken {
        OpaqueToken::from_client(signed_in.refresh_token.expose().to_owned())
    }

    fn is_auth_failure(
        result: &Result<impl std::fmt::Debug, ServiceError>,
        failure: AuthFailure,
    ) -> bool {
        matches!(result, Err(ServiceError::Unauthenticated(f)) if *f == failure)
    }

    #[tokio::test]
    async fn a_session_records_the_client_and_expires_by_policy() {
        let h = Harness::new().await;
        let signed_in = sign_up(&h).await;
        let principal = h
            .services
            .sessions
            .authenticate(&signed_in.access_token.token)
            .await
            .unwrap()
            .principal;
        let session = h.session(principal.session_id).await.unwrap();
        assert_eq!(session.ip.as_deref(), Some("203.0.113.7"));
        assert_eq!(session.user_agent.unwrap().len(), 512);
        assert_eq!(session.expires_at, h.clock.now() + SESSIONS.idle_timeout);
    }

    #[tokio::test]
    async fn refreshing_rotates_the_refresh_token_and_extends_the_session() {
        let h = Harness::new().await;
        let sessions = h.services.sessions.clone();
        let first = sign_up(&h).await;
        h.clock.advance(chrono::Duration::days(20));

        let second = sessions
            .refresh(token(&first), &ClientInfo::default())
            .await
            .unwrap();
        assert_ne!(second.refresh_token.expose(), first.refresh_token.expose());
        let principal = sessions
            .authenticate(&second.access_token.token)
            .await
            .unwrap()
            .principal;
        let session = h.session(principal.session_id).await.unwrap();
        assert_eq!(session.last_used_at, h.clock.now());
        assert_eq!(session.expires_at, h.clock.now() + SESSIONS.idle_timeout);

        // The new token works in turn.
        assert!(
            sessions
                .refresh(token(&second), &ClientInfo::default())
                .await
                .is_ok()
        );
    }

    #[tokio::test]
    async fn no_refresh_outlives_the_absolute_session_age() {
        let h = Harness::new().await;
        let sessions = h.services.sessions.clone();
        let mut latest = sign_up(&h).await;
        for _ in 0..3 {
            h.clock.advance(chrono::Duration::days(29));
            latest = sessions
                .refresh(token(&latest), &ClientInfo::default())
                .await
                .unwrap();
        }
        h.clock.advance(chrono::Duration::days(4)); // 91 days in
        let result = sessions
            .refresh(token(&latest), &ClientInfo::default())
            .await;
        assert!(is_auth_failure(&result, AuthFailure::SessionEnded));
    }

    #[tokio::test]
    async fn a_reused_refresh_token_ends_the_session_after_the_grace_window() {
        let h = Harness::new().await;
        let sessions = h.services.sessions.clone();
        let first = sign_up(&h).await;
        let second = sessions
            .refresh(token(&first), &ClientInfo::default())
            .await
            .unwrap();

        h.clock
            .advance(SESSIONS.reuse_grace + chrono::Duration::seconds(1));
        let replay = sessions
            .refresh(token(&first), &ClientInfo::default())
            .await;
        assert!(is_auth_failure(&replay, AuthFailure::RefreshTokenReused));

        let after = sessions.authenticate(&second.access_token.token).await;
        assert!(is_auth_failure(&after, AuthFailure::SessionEnded));
        let refresh = sessions
            .refresh(token(&second), &ClientInfo::default())
            .await;
        assert!(is_auth_failure(&refresh, AuthFailure::SessionEnded));
    }

    #[tokio::test]
    async fn a_double_submit_within_the_grace_window_gets_its_own_tokens() {
        let h = Harness::new().await;
        let sessions = h.services.sessions.clone();
        let first = sign_up(&h).await;
        let a = sessions
            .refresh(token(&first), &ClientInfo::default())
            .await
            .unwrap();
        h.clock.advance(chrono::Duration::seconds(2));
        let b = sessions
            .refresh(token(&first), &ClientInfo::default())
            .await
            .unwrap();

        assert_ne!(a.refresh_token.expose(), b.refresh_token.expose());
        // Whichever answer the client kept, it can go on refreshing.
        assert!(
            sessions
                .refresh(token(&a), &ClientInfo::default())
                .await
                .is_ok()
        );
        assert!(
            sessions
                .refresh(token(&b), &ClientInfo::default())
                .await
                .is_ok()
        );
    }

    #[tokio::test]
    async fn an_unknown_refresh_token_is_refused() {
        let h = Harness::new().await;
        let result = h
            .services
            .sessions
            .refresh(
                OpaqueToken::from_client("made-up".into()),
                &ClientInfo::default(),
            )
            .await;
        assert!(is_auth_failure(&result, AuthFailure::InvalidRefreshToken));
    }

    #[tokio::test]
    async fn logout_ends_only_that_session() {
        let h = Harness::new().await;
        let services = &h.services;
        let first = sign_up(&h).await;
        let second = sign_in(&h).await;

        services
            .sessions
            .logout(token(&first), &ClientInfo::default())
            .await
            .unwrap();
        let ended = services
            .sessions
            .authenticate(&first.access_token.token)
            .await;
        assert!(is_auth_failure(&ended, AuthFailure::SessionEnded));
        assert!(
            services
                .sessions
                .authenticate(&second.access_token.token)
                .await
                .is_ok()
        );
    }

    #[tokio::test]
    async fn revoking_needs_an_active_session_of_the_caller() {
        let h = Harness::new().await;
        let sessions = h.services.sessions.clone();
        let signed_in = sign_up(&h).await;
        let caller = sessions
            .authenticate(&signed_in.access_token.token)
            .await
            .unwrap()
            .principal;
        let stranger = Principal {
            user_id: UserId::generate(),
            session_id: SessionId::generate(),
            role: crate::domain::Role::User,
            ..caller
        };

        let foreign = sessions
            .revoke(&stranger, caller.session_id, &ClientInfo::default())
            .await;
        assert!(matches!(foreign, Err(ServiceError::NotFound(_))));
        sessions
            .revoke(&caller, caller.session_id, &ClientInfo::default())
            .await
            .unwrap();
        let again = sessions
            .revoke(&caller, caller.session_id, &ClientInfo::default())
            .await;
        assert!(matches!(again, Err(ServiceError::NotFound(_))));
    }

    #[tokio::test]
    async fn a_token_naming_another_users_session_is_invalid() {
        let h = Harness::new().await;
        let sessions = h.services.sessions.clone();
        let ada = sign_up(&h).await;
        let ada_session = sessions
            .authenticate(&ada.access_token.token)
            .await
            .unwrap()
            .principal
            .session_id;
        // Genuinely signed, but naming a session of someone else.
        let forged = h
            .tokens
            .issue(
                AccessClaims {
                    user_id: UserId::generate(),
                    session_id: ada_session,
                    authenticated: Authentication {
                        at: h.clock.now(),
                        methods: AuthMethods::Password,
                    },
                },
                &CustomClaims::new(),
                h.clock.now(),
            )
            .unwrap();
        let result = sessions.authenticate(&forged.token).await;
        assert!(is_auth_failure(&result, AuthFailure::InvalidToken));
    }

    #[tokio::test]
    async fn listing_pages_through_active_sessions_newest_first() {
        let h = Harness::new().await;
        let sessions = h.services.sessions.clone();
        let first = sign_up(&h).await;
        for _ in 0..4 {
            sign_in(&h).await;
        }
        sessions
            .logout(token(&first), &ClientInfo::default())
            .await
            .unwrap();
        let current = sign_in(&h).await;
        let caller = sessions
            .authenticate(&current.access_token.token)
            .await
            .unwrap()
            .principal;

        let page = sessions
            .list(
                &caller,
                &PageRequest::Forward {
                    after: None,
                    first: 3,
                },
                true,
            )
            .await
            .unwrap();
        assert_eq!(
            page.total,
            Some(5),
            "four more sign-ins and this one; the first ended"
        );
        assert_eq!(page.page.items.len(), 3);
        assert_eq!(page.page.items[0].id, caller.session_id, "newest first");
        assert!(page.page.has_next && !page.page.has_previous);

        let rest = sessions
            .list(
                &caller,
                &PageRequest::Forward {
                    after: page.page.items.last().map(|s| s.id),
                    first: 3,
                },
                false,
            )
            .await
            .unwrap();
        assert_eq!(rest.total, None, "not asked for, not counted");
        assert_eq!(rest.page.items.len(), 2);
        assert!(!rest.page.has_next && rest.page.has_previous);
    }

    async fn sign_in(h: &Harness) -> SignedIn {
        h.services
            .auth
            .login(
                Email::parse("ada@example.com").unwrap(),
                "correct horse".into(),
                &ClientInfo::default(),
            )
            .await
            .unwrap()
    }
}
