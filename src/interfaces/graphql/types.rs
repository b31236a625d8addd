//! Output types shared by the feature modules.

use async_graphql::{
    Context, Enum, ID, InputValueError, InputValueResult, Interface, Object, Result, Scalar,
    ScalarType, SimpleObject, Value,
};
use chrono::{SecondsFormat, Utc};

use crate::application::ports::IssuedAccessToken;
use crate::application::{AuditPage, AuditService, Reauthenticated, SignedIn};
use crate::domain::{self, AuditFilter, Email, UserId};

use super::context::{caller, service, users};
use super::error::{graphql_error, shared_graphql_error};
use super::pagination::{Connection, IdCursor, Paged, connection, page_request, total_wanted};

pub struct User(pub domain::User);

/// A registered account.
#[Object]
impl User {
    /// Stable identifier (a UUID).
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    /// Sign-in email, trimmed and lower-cased.
    async fn email(&self) -> &str {
        self.0.email.as_str()
    }

    /// Name to show for the user, if they gave one.
    async fn display_name(&self) -> Option<&str> {
        self.0.display_name.as_ref().map(|n| n.as_str())
    }

    /// Whether the user has confirmed they own the email (by a link sent to it).
    async fn email_verified(&self) -> bool {
        self.0.email_verified_at.is_some()
    }

    /// An address the user asked to move to (`changeEmail`), until the link sent there is
    /// used (`confirmEmailChange`) or the change is cancelled; the email stays as it is
    /// until then.
    async fn pending_email(&self) -> Option<&str> {
        self.0.pending_email.as_ref().map(Email::as_str)
    }

    /// What the user is allowed to do.
    async fn role(&self) -> Role {
        self.0.role.into()
    }

    /// Whether an administrator has suspended the account (it cannot sign in meanwhile).
    async fn suspended(&self) -> bool {
        self.0.suspension.is_some()
    }

    /// Since when the account is suspended, if it is.
    async fn suspended_at(&self) -> Option<DateTime> {
        self.0.suspension.as_ref().map(|s| DateTime(s.since))
    }

    /// The administrator's reason for the suspension, if suspended.
    async fn suspension_reason(&self) -> Option<&str> {
        self.0.suspension.as_ref().map(|s| s.reason.as_str())
    }

    /// Whether signing in needs a second factor (an authenticator app's code) besides the
    /// password.
    async fn mfa_enabled(&self) -> bool {
        self.0.mfa_enabled_at.is_some()
    }

    /// The identities at OpenID providers linked to the account, oldest first. Readable by
    /// the user and by administrators.
    async fn identities(&self, ctx: &Context<'_>) -> Result<Vec<SocialIdentity>> {
        let caller = super::context::caller(ctx).await?;
        Ok(
            super::context::service::<crate::application::SocialService>(ctx)?
                .identities(&caller, self.0.id)
                .await
                .map_err(graphql_error)?
                .into_iter()
                .map(SocialIdentity::from)
                .collect(),
        )
    }

    /// Unused recovery codes of the second factor; only for the user themselves (`null` for
    /// anyone else, and without a second factor).
    async fn recovery_codes_remaining(&self, ctx: &Context<'_>) -> Result<Option<i32>> {
        let caller = super::context::caller(ctx).await?;
        if caller.user_id != self.0.id {
            return Ok(None);
        }
        let left = super::context::service::<crate::application::MfaService>(ctx)?
            .recovery_codes_left(&self.0)
            .await
            .map_err(graphql_error)?;
        Ok(left.map(|n| i32::try_from(n).unwrap_or(i32::MAX)))
    }

    /// The user's passkeys, oldest first; only for the user themselves and administrators
    /// (empty for anyone else).
    async fn passkeys(&self, ctx: &Context<'_>) -> Result<Vec<Passkey>> {
        let caller = super::context::caller(ctx).await?;
        if caller.user_id != self.0.id && !caller.is_admin() {
            return Ok(Vec::new());
        }
        Ok(
            super::context::service::<crate::application::PasskeyService>(ctx)?
                .list(self.0.id)
                .await
                .map_err(graphql_error)?
                .into_iter()
                .map(Passkey)
                .collect(),
        )
    }

    /// Security events by or about this user, newest first (sign-ins, password and email
    /// changes, …). Readable by the user and by administrators.
    #[graphql(complexity = "super::pagination::page_cost(first, last, child_complexity)")]
    async fn audit_events(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Items after this cursor (page forwards, with `first`).")] after: Option<
            String,
        >,
        #[graphql(desc = "Items before this cursor (page backwards, with `last`).")] before: Option<
            String,
        >,
        #[graphql(
            desc = "How many items from the start, or after `after` (0 to 100; 20 by default)."
        )]
        first: Option<i32>,
        #[graphql(desc = "How many items from the end, or before `before` (0 to 100).")]
        last: Option<i32>,
        #[graphql(desc = "Only events of this kind.")] kind: Option<AuditEventKind>,
    ) -> Result<AuditEventConnection> {
        let kind = kind.map(Into::into);
        // The first page goes through a batch loader, so a list of users showing each one's
        // latest events costs the same few queries however long it is. Paging on from a
        // cursor is one user at a time.
        if after.is_none() && before.is_none() && last.is_none() {
            let first = super::pagination::first_page_size(first).map_err(graphql_error)?;
            let key = super::context::AuditPageKey {
                user: self.0.id,
                kind,
                first,
            };
            let page = super::context::audit_pages(ctx)
                .await?
                .load_one(key)
                .await
                .map_err(|e| shared_graphql_error(&e))?
                .unwrap_or_else(|| crate::application::AuditPage {
                    page: crate::domain::Page {
                        items: Vec::new(),
                        has_previous: false,
                        has_next: false,
                    },
                    total: Some(0),
                });
            return audit_connection_of(ctx, page).await;
        }
        let filter = AuditFilter {
            user: Some(self.0.id),
            kind,
        };
        audit_connection(ctx, filter, after, before, first, last).await
    }

    /// When the account was created.
    async fn created_at(&self) -> DateTime {
        DateTime(self.0.created_at)
    }

    /// When the account was last changed.
    async fn updated_at(&self) -> DateTime {
        DateTime(self.0.updated_at)
    }
}

impl Paged for User {
    const CONNECTION: &'static str = "UserConnection";
    const EDGE: &'static str = "UserEdge";
}

pub struct Session {
    pub session: domain::Session,
    pub current: bool,
}

/// A signed-in device or browser: one sign-in and the tokens refreshed from it.
#[Object]
impl Session {
    /// Stable identifier (a UUID); pass it to `revokeSession`.
    async fn id(&self) -> ID {
        ID(self.session.id.to_string())
    }

    /// Whether this is the session of the access token making this request.
    async fn current(&self) -> bool {
        self.current
    }

    /// When the user signed in.
    async fn created_at(&self) -> DateTime {
        DateTime(self.session.created_at)
    }

    /// When the session last signed in or refreshed its tokens.
    async fn last_used_at(&self) -> DateTime {
        DateTime(self.session.last_used_at)
    }

    /// When the session ends unless it is used (refreshed) before then.
    async fn expires_at(&self) -> DateTime {
        DateTime(self.session.expires_at)
    }

    /// The browser or app that signed in, as it named itself (`User-Agent`).
    async fn user_agent(&self) -> Option<&str> {
        self.session.user_agent.as_deref()
    }

    /// The IP address the session signed in from.
    async fn ip(&self) -> Option<&str> {
        self.session.ip.as_deref()
    }
}

impl Paged for Session {
    const CONNECTION: &'static str = "SessionConnection";
    const EDGE: &'static str = "SessionEdge";
}

/// A user's level of access.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum Role {
    /// A regular account: manages only itself.
    User,
    /// An administrator: manages every account.
    Admin,
}

impl From<domain::Role> for Role {
    fn from(role: domain::Role) -> Self {
        match role {
            domain::Role::User => Role::User,
            domain::Role::Admin => Role::Admin,
        }
    }
}

impl From<Role> for domain::Role {
    fn from(role: Role) -> Self {
        match role {
            Role::User => domain::Role::User,
            Role::Admin => domain::Role::Admin,
        }
    }
}

/// An object with a globally unique `id`, which `node(id:)` fetches again (Relay's Global
/// Object Identification). Ids are UUIDs, unique across every type.
#[derive(Interface)]
#[graphql(field(name = "id", ty = "ID", desc = "Globally unique identifier."))]
pub enum Node {
    User(User),
}

/// Tokens for a session, and the signed-in user.
#[derive(SimpleObject)]
pub struct AuthPayload {
    /// Short-lived JWT: send it as `Authorization: Bearer <accessToken>`. `null` when the
    /// server keeps the session in HttpOnly cookies (a browser on an allowed origin, with
    /// cookie sessions on): the access cookie carries it, and any script in the page could
    /// read a token in the body and use it elsewhere.
    access_token: Option<String>,
    /// Long-lived opaque token: exchange it with `refreshToken` for new tokens when the
    /// access token expires. It works once: keep the new one each refresh returns. Store it
    /// as securely as a password. `null` when the server keeps the session in an HttpOnly
    /// cookie instead (a browser on an allowed origin, with cookie sessions on), and from
    /// `reauthenticate`, which keeps the session's refresh token as it is.
    refresh_token: Option<String>,
    /// Always `Bearer`.
    token_type: &'static str,
    /// Seconds until the access token (with cookie sessions: the access cookie) expires.
    expires_in: i32,
    /// The signed-in user.
    user: User,
}

impl AuthPayload {
    /// Both tokens in the body, for clients that keep them.
    pub fn with_tokens(signed_in: SignedIn) -> Self {
        let refresh_token = signed_in.refresh_token.expose().to_owned();
        Self {
            access_token: Some(signed_in.access_token.token.clone()),
            refresh_token: Some(refresh_token),
            ..Self::in_cookies(&signed_in.access_token, signed_in.user)
        }
    }

    /// A session that proved its user again, for a client that keeps its tokens: a new
    /// access token; the refresh token is unchanged, so none is returned.
    pub fn reauthenticated(reauthenticated: Reauthenticated) -> Self {
        Self {
            access_token: Some(reauthenticated.access_token.token.clone()),
            ..Self::in_cookies(&reauthenticated.access_token, reauthenticated.user)
        }
    }

    /// The tokens went into cookies that scripts cannot read, so they stay out of the body,
    /// which scripts can.
    pub fn in_cookies(access_token: &IssuedAccessToken, user: domain::User) -> Self {
        Self {
            access_token: None,
            refresh_token: None,
            token_type: "Bearer",
            expires_in: i32::try_from(access_token.expires_in.as_secs()).unwrap_or(i32::MAX),
            user: User(user),
        }
    }
}

pub struct Passkey(pub domain::Passkey);

/// A passkey of the user: a credential on a device or in a password manager that signs in
/// without a password.
#[Object]
impl Passkey {
    /// Stable identifier (a UUID).
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    /// The name the user gave it.
    async fn name(&self) -> &str {
        self.0.name.as_str()
    }

    /// When it was added.
    async fn created_at(&self) -> DateTime {
        DateTime(self.0.created_at)
    }

    /// When it last signed in or confirmed the user; null if never.
    async fn last_used_at(&self) -> Option<DateTime> {
        self.0.last_used_at.map(DateTime)
    }

    /// Whether it is backed up (synced to the user's other devices by a password manager),
    /// as the authenticator last reported.
    async fn backed_up(&self) -> bool {
        self.0.backed_up
    }
}

pub struct DateTime(pub chrono::DateTime<Utc>);

/// An instant, as an RFC 3339 string in UTC with microseconds, e.g.
/// `2026-11-25T19:21:36.123456Z`.
#[Scalar(
    name = "DateTime",
    specified_by_url = "https://www.rfc-editor.org/rfc/rfc3339"
)]
impl ScalarType for DateTime {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::String(s) => chrono::DateTime::parse_from_rfc3339(s)
                .map(|t| DateTime(t.with_timezone(&Utc)))
                .map_err(|_| InputValueError::custom("expected an RFC 3339 date-time")),
            _ => Err(InputValueError::expected_type(value)),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.to_rfc3339_opts(SecondsFormat::Micros, true))
    }
}

// `remote` derives the conversions to and from the domain's kind, so a kind missing here (or
// there) fails to compile. (A doc comment here would change the schema's description.)
/// A security event.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "domain::AuditKind")]
pub enum AuditEventKind {
    /// An account was created.
    Registered,
    /// A sign-in succeeded.
    LoginSucceeded,
    /// A sign-in failed (wrong password, unknown email, suspended or unconfirmed account).
    LoginFailed,
    /// One session, or all of them, signed out.
    LoggedOut,
    /// The user ended one of their sessions.
    SessionRevoked,
    /// A refresh token was used twice; its session was ended as possibly stolen.
    RefreshTokenReused,
    /// The user changed their password.
    PasswordChanged,
    /// A password-reset link was sent.
    PasswordResetRequested,
    /// The password was set through a reset link.
    PasswordReset,
    /// The account moved to another email (its link was used).
    EmailChanged,
    /// The email was confirmed.
    EmailVerified,
    /// The display name changed.
    ProfileUpdated,
    /// An administrator (or the operator) changed the role.
    RoleChanged,
    /// An administrator suspended the account.
    Suspended,
    /// An administrator lifted the suspension.
    Unsuspended,
    /// The user deleted their account.
    AccountDeleted,
    /// The user asked to move the account to another email, which must confirm it.
    EmailChangeRequested,
    /// Before this release: the old address's link cancelled an email change, or undid a
    /// completed one; every session ended. Now recorded as `ACCOUNT_SECURED`.
    EmailChangeCancelled,
    /// The user turned a second factor (an authenticator app) on; other sessions ended.
    MfaEnabled,
    /// The user turned the second factor off.
    MfaDisabled,
    /// An administrator removed the user's second factor; every session ended.
    MfaReset,
    /// A wrong second-factor code was entered.
    MfaFailed,
    /// A recovery code was used (the detail says how many are left).
    RecoveryCodeUsed,
    /// The user replaced their recovery codes.
    RecoveryCodesRegenerated,
    /// A "this wasn't me" link (an email change's cancel link, or a security notice's) gave
    /// the account back to its address: sessions ended, later changes undone, a password
    /// reset required.
    AccountSecured,
    /// The user added a passkey (the detail is its name, and how many other sessions ended:
    /// those that proved the password alone, when it is the account's first second factor).
    PasskeyAdded,
    /// The user renamed a passkey.
    PasskeyRenamed,
    /// The user removed a passkey (or every passkey went with an administrator's reset).
    PasskeyRemoved,
    /// A passkey's assertion was refused for a sign of a cloned or replayed credential (its
    /// counter went backwards, its backup eligibility changed) or did not verify.
    PasskeyRefused,
    /// A security notice was emailed to the account's address (the detail says about what).
    SecurityNoticeSent,
    /// Signed in with an identity at an OpenID provider.
    SocialSignIn,
    /// A sign-in through an OpenID provider was refused (the account exists, an unverified
    /// provider email, a suspended account).
    SocialSignInRefused,
    /// An account was created by a sign-in through an OpenID provider.
    SocialAccountCreated,
    /// An unverified account with the address a provider vouched for was replaced by its
    /// owner's (pre-hijacking), its sessions ended.
    SocialAccountReplaced,
    /// An identity at an OpenID provider was linked to the account.
    IdentityLinked,
    /// An identity at an OpenID provider was unlinked from the account.
    IdentityUnlinked,
    /// The claims hook gave no usable answer before a token was signed (the detail says why,
    /// and for which event); with `CLAIMS_HOOK_FAILURE=closed` the sign-in was refused.
    ClaimsHookFailed,
}

pub struct AuditEvent(domain::AuditEvent);

/// An entry of the audit trail. It names accounts by id; `actor` and `subject` resolve the
/// accounts that still exist and that the caller may see.
#[Object]
impl AuditEvent {
    /// Stable identifier (a UUIDv7: ids sort in the order events happened).
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    /// What happened.
    async fn kind(&self) -> AuditEventKind {
        self.0.kind.into()
    }

    /// When it happened.
    async fn occurred_at(&self) -> DateTime {
        DateTime(self.0.occurred_at)
    }

    /// Id of the account that did it; null for an anonymous caller or the command line, and,
    /// for a user who is not an administrator, for an administrator acting on their account
    /// (the kind tells that one did; who and from where is theirs to know).
    async fn actor_id(&self) -> Option<ID> {
        self.0.actor.map(|id| ID(id.to_string()))
    }

    /// Id of the account it concerns; null when no account matched (a failed sign-in).
    async fn subject_id(&self) -> Option<ID> {
        self.0.subject.map(|id| ID(id.to_string()))
    }

    /// The account that did it, if it still exists and the caller may see it.
    async fn actor(&self, ctx: &Context<'_>) -> Result<Option<User>> {
        load(ctx, self.0.actor).await
    }

    /// The account it concerns, if it still exists and the caller may see it.
    async fn subject(&self, ctx: &Context<'_>) -> Result<Option<User>> {
        load(ctx, self.0.subject).await
    }

    /// The IP address of the request.
    async fn ip(&self) -> Option<&str> {
        self.0.ip.as_deref()
    }

    /// The `User-Agent` of the request.
    async fn user_agent(&self) -> Option<&str> {
        self.0.user_agent.as_deref()
    }

    /// A short detail, e.g. `user -> admin`, a suspension reason, or why a sign-in failed.
    async fn detail(&self) -> Option<&str> {
        self.0.detail.as_deref()
    }
}

async fn load(ctx: &Context<'_>, id: Option<UserId>) -> Result<Option<User>> {
    let Some(id) = id else { return Ok(None) };
    let user = users(ctx)
        .await?
        .load_one(id)
        .await
        .map_err(|e| shared_graphql_error(&e))?;
    Ok(user.map(User))
}

impl Paged for AuditEvent {
    const CONNECTION: &'static str = "AuditEventConnection";
    const EDGE: &'static str = "AuditEventEdge";
}

pub type AuditEventConnection = Connection<AuditEvent>;

/// A page of the audit trail for the caller.
pub async fn audit_connection(
    ctx: &Context<'_>,
    filter: AuditFilter,
    after: Option<String>,
    before: Option<String>,
    first: Option<i32>,
    last: Option<i32>,
) -> Result<AuditEventConnection> {
    let caller = caller(ctx).await?;
    let request =
        page_request::<IdCursor, _>(after, before, first, last, |c| c.0).map_err(graphql_error)?;
    let listed = service::<AuditService>(ctx)?
        .list(&caller, filter, &request, total_wanted(ctx))
        .await
        .map_err(graphql_error)?;
    audit_connection_of(ctx, listed).await
}

/// The connection of a page of events, with the accounts they mention loaded in one batch.
pub async fn audit_connection_of(
    ctx: &Context<'_>,
    listed: AuditPage,
) -> Result<AuditEventConnection> {
    // Load every account the page mentions in one batch, if the selection asks for them; the
    // items' `actor` and `subject` then come from the loader's cache.
    let node = ctx.look_ahead().field("edges").field("node");
    if node.field("actor").exists() || node.field("subject").exists() {
        let mut ids: Vec<UserId> = Vec::with_capacity(listed.page.items.len() * 2);
        for event in &listed.page.items {
            ids.extend(event.actor);
            ids.extend(event.subject);
        }
        users(ctx)
            .await?
            .load_many(ids)
            .await
            .map_err(|e| shared_graphql_error(&e))?;
    }
    Ok(connection(listed.page, listed.total, |event| {
        (IdCursor(event.id), AuditEvent(event))
    }))
}

/// An identity at a provider, linked to the account.
#[derive(SimpleObject)]
pub struct SocialIdentity {
    /// The provider's id.
    provider: String,
    /// The provider's identifier of the user (with the provider's issuer, what the identity
    /// is keyed on; never the email).
    subject: String,
    /// The address the provider gave when it was linked, if any.
    email: Option<String>,
    /// When it was linked.
    linked_at: DateTime,
}

impl From<domain::SocialIdentity> for SocialIdentity {
    fn from(identity: domain::SocialIdentity) -> Self {
        Self {
            provider: identity.provider.to_string(),
            subject: identity.key.subject().to_owned(),
            email: identity.email.map(|e| e.as_str().to_owned()),
            linked_at: DateTime(identity.linked_at),
        }
    }
}
