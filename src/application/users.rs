//! Accounts: self-service changes, and administration. Every method takes the caller and
//! checks here what they may do, so any delivery path (GraphQL, CLI, jobs) gets the same rules.

use std::sync::Arc;

use crate::domain::{
    AccountStore, AuditKind, DisplayName, EXACT_TOTAL_UP_TO, Email, GuardedChange, HotReads, Page,
    PageRequest, Password, Role, Suspension, SuspensionReason, User, UserCursor, UserDirectory,
    UserFilter, UserId, UserOrder,
};

use super::account::AccountService;
use super::audit::{AuditTrail, Record};
use super::caller::{ClientInfo, Principal};
use super::error::ServiceError;
use super::notices::{Notice, SecurityNotices};
use super::passwords::Confirmation;
use super::ports::{Clock, PasswordHasher};
use super::sessions::SessionService;
use super::throttle::Throttle;

/// What `make_admin` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminMade {
    Created,
    Promoted { sessions_ended: u64 },
    AlreadyAdmin,
}

/// A page of users.
#[derive(Debug)]
pub struct UserPage {
    pub page: Page<User>,
    /// How many users pass the filter (see [`UserDirectory::count`]), when it was asked for.
    pub total: Option<u64>,
}

/// Account reads and changes, always on behalf of a caller.
pub struct UserService {
    users: Arc<dyn AccountStore>,
    reads: Arc<dyn HotReads>,
    notices: Arc<SecurityNotices>,
    directory: Arc<dyn UserDirectory>,
    hasher: Arc<dyn PasswordHasher>,
    confirmation: Arc<Confirmation>,
    sessions: Arc<SessionService>,
    account: Arc<AccountService>,
    clock: Arc<dyn Clock>,
    audit: AuditTrail,
    throttle: Arc<Throttle>,
}

/// What [`UserService`] works with.
pub struct UserDeps {
    pub users: Arc<dyn AccountStore>,
    pub reads: Arc<dyn HotReads>,
    pub notices: Arc<SecurityNotices>,
    pub directory: Arc<dyn UserDirectory>,
    pub hasher: Arc<dyn PasswordHasher>,
    pub confirmation: Arc<Confirmation>,
    pub sessions: Arc<SessionService>,
    pub account: Arc<AccountService>,
    pub clock: Arc<dyn Clock>,
    pub audit: AuditTrail,
    pub throttle: Arc<Throttle>,
}

const NO_SUCH_USER: &str = "There is no user with this id.";

impl UserService {
    pub fn new(deps: UserDeps) -> Self {
        Self {
            users: deps.users,
            reads: deps.reads,
            notices: deps.notices,
            directory: deps.directory,
            hasher: deps.hasher,
            confirmation: deps.confirmation,
            sessions: deps.sessions,
            account: deps.account,
            clock: deps.clock,
            audit: deps.audit,
            throttle: deps.throttle,
        }
    }

    /// Sets the caller's display name (`None` clears it).
    pub async fn update_profile(
        &self,
        caller: &Principal,
        display_name: Option<DisplayName>,
        client: &ClientInfo,
    ) -> Result<User, ServiceError> {
        self.users
            .set_display_name(caller.user_id, display_name.as_ref(), self.clock.now())
            .await?;
        self.audit.record(Record::own(
            AuditKind::ProfileUpdated,
            caller.user_id,
            client,
        ));
        self.existing(caller.user_id).await
    }

    /// Asks to move the caller's account to another email: nothing changes until the link
    /// sent there is used, and the old address gets a link that cancels (or undoes) it. Needs
    /// the password. The answer is the same whether or not the address has an account.
    pub async fn change_email(
        &self,
        caller: &Principal,
        new_email: Email,
        password: String,
        client: &ClientInfo,
    ) -> Result<User, ServiceError> {
        self.throttle.email(client, &new_email).await?;
        let user = self.existing(caller.user_id).await?;
        self.confirmation
            .sensitive_change(caller, &user, password)
            .await?;
        if new_email == user.email {
            return Ok(user);
        }
        let now = self.clock.now();
        self.users
            .request_email_change(user.id, &new_email, now)
            .await?;
        self.account
            .send_email_change(user.clone(), new_email, now, client)
            .await;
        self.audit.record(Record::own(
            AuditKind::EmailChangeRequested,
            user.id,
            client,
        ));
        self.existing(user.id).await
    }

    /// Deletes the caller's account with its sessions and tokens. Needs the password. The
    /// audit trail keeps the account's id (never its email) so past events stay coherent.
    pub async fn delete_account(
        &self,
        caller: &Principal,
        password: String,
        client: &ClientInfo,
    ) -> Result<(), ServiceError> {
        let user = self.existing(caller.user_id).await?;
        self.confirmation
            .sensitive_change(caller, &user, password)
            .await?;
        self.guarded(self.users.delete(user.id, self.clock.now()).await?)?;
        tracing::info!(user_id = %user.id, "account deleted");
        self.audit
            .record(Record::own(AuditKind::AccountDeleted, user.id, client));
        Ok(())
    }

    /// One user: any for an administrator, only themselves for anyone else. Others are
    /// refused without a lookup, so the answer tells nothing about whether the id exists.
    pub async fn get(&self, caller: &Principal, id: UserId) -> Result<User, ServiceError> {
        if !caller.is_admin() && id != caller.user_id {
            return Err(ServiceError::Forbidden(
                "Only administrators may read other users.",
            ));
        }
        self.existing(id).await
    }

    /// The users among `ids` the caller may see (for batch loading).
    pub async fn visible(
        &self,
        caller: &Principal,
        ids: &[UserId],
    ) -> Result<Vec<User>, ServiceError> {
        let ids: Vec<UserId> = if caller.is_admin() {
            ids.to_vec()
        } else {
            ids.iter()
                .copied()
                .filter(|id| *id == caller.user_id)
                .collect()
        };
        Ok(self.users.find_many(&ids).await?)
    }

    /// Users that pass `filter`, for administrators, and how many they are when `count` asks
    /// (exact up to [`EXACT_TOTAL_UP_TO`], an estimate past it).
    pub async fn list(
        &self,
        caller: &Principal,
        filter: &UserFilter,
        order: UserOrder,
        page: &PageRequest<UserCursor>,
        count: bool,
    ) -> Result<UserPage, ServiceError> {
        caller.require_admin()?;
        let cursor = match page {
            PageRequest::Forward { after, .. } => after,
            PageRequest::Backward { before, .. } => before,
        };
        if cursor.as_ref().is_some_and(|c| c.field() != order.field) {
            return Err(ServiceError::InvalidInput {
                field: "after",
                message: "This cursor belongs to another ordering; start again without it.".into(),
            });
        }
        let total = async {
            match count {
                true => Some(self.directory.count(filter, EXACT_TOTAL_UP_TO).await).transpose(),
                false => Ok(None),
            }
        };
        let (page, total) = tokio::try_join!(self.directory.list(filter, order, page), total)?;
        Ok(UserPage { page, total })
    }

    /// Makes a user an administrator or a regular user, and ends their sessions when the role
    /// changes. The last active administrator cannot be demoted. Needs a recent authentication of the administrator.
    pub async fn set_role(
        &self,
        caller: &Principal,
        id: UserId,
        role: Role,
        client: &ClientInfo,
    ) -> Result<User, ServiceError> {
        self.sessions.require_recent_admin(caller).await?;
        let before = self.existing(id).await?;
        let now = self.clock.now();
        self.guarded(self.directory.set_role(id, role, now).await?)?;
        self.audit.record(Record {
            kind: AuditKind::RoleChanged,
            actor: Some(caller.user_id),
            subject: Some(id),
            client: Some(client),
            detail: Some(format!("{} -> {}", before.role.as_str(), role.as_str())),
        });
        if before.role != role {
            // Tokens already issued say the old role (an engine's claims too): the
            // sessions end, so no token grants the old rights past this moment to a
            // verifier that checks the session (introspection, Hasura's webhook), nor past
            // one access-token lifetime to one that does not.
            let ended = self.sessions.end_other_sessions(id, None).await?;
            tracing::info!(user_id = %id, ended_sessions = ended, "role changed: sessions ended");
            self.notices
                .send(id, Notice::RoleChanged(role), now, client)
                .await;
        }
        self.existing(id).await
    }

    /// Suspends an account: it cannot sign in or refresh, and its sessions end at once. The
    /// last active administrator cannot be suspended. Needs a recent authentication of the
    /// administrator.
    pub async fn suspend(
        &self,
        caller: &Principal,
        id: UserId,
        reason: SuspensionReason,
        client: &ClientInfo,
    ) -> Result<User, ServiceError> {
        self.sessions.require_recent_admin(caller).await?;
        let suspension = Suspension {
            since: self.clock.now(),
            reason,
        };
        let detail = suspension.reason.as_str().to_owned();
        self.guarded(
            self.directory
                .set_suspension(id, Some(&suspension), suspension.since)
                .await?,
        )?;
        let ended = self.sessions.end_other_sessions(id, None).await?;
        tracing::info!(user_id = %id, ended_sessions = ended, "account suspended");
        self.audit.record(Record {
            kind: AuditKind::Suspended,
            actor: Some(caller.user_id),
            subject: Some(id),
            client: Some(client),
            detail: Some(detail),
        });
        self.existing(id).await
    }

    /// Lifts a suspension. Needs a recent authentication of the administrator.
    pub async fn unsuspend(
        &self,
        caller: &Principal,
        id: UserId,
        client: &ClientInfo,
    ) -> Result<User, ServiceError> {
        self.sessions.require_recent_admin(caller).await?;
        self.guarded(
            self.directory
                .set_suspension(id, None, self.clock.now())
                .await?,
        )?;
        self.audit.record(Record {
            kind: AuditKind::Unsuspended,
            actor: Some(caller.user_id),
            subject: Some(id),
            client: Some(client),
            detail: None,
        });
        self.existing(id).await
    }

    /// For the operator at the command line: makes the account with this email an
    /// administrator, creating it (its email taken as confirmed) if there is none. An existing
    /// account is promoted only when `password` is its password: whoever registered the
    /// address first must not become an administrator through the operator's command.
    /// Promoting ends the account's sessions, so every later token carries the new role from
    /// a sign-in with the proven password.
    pub async fn make_admin(
        &self,
        email: Email,
        password: Password,
    ) -> Result<AdminMade, ServiceError> {
        let Some(user) = self.reads.user_by_email(&email).await? else {
            return self
                .create_admin(email, password)
                .await
                .map(|_| AdminMade::Created);
        };
        if !self.hasher.verify(password, &user.password_hash).await? {
            return Err(ServiceError::Forbidden(
                "An account with this email already exists and the password given is not its \
                 password, so it was not made an administrator. Give that account's password, \
                 or choose another email.",
            ));
        }
        if user.role == Role::Admin {
            return Ok(AdminMade::AlreadyAdmin);
        }
        let now = self.clock.now();
        self.guarded(self.directory.set_role(user.id, Role::Admin, now).await?)?;
        let ended = self.sessions.end_other_sessions(user.id, None).await?;
        self.audit.record(Record {
            kind: AuditKind::RoleChanged,
            actor: None,
            subject: Some(user.id),
            client: None,
            detail: Some(format!(
                "{} -> admin (command line); sessions ended: {ended}",
                user.role.as_str()
            )),
        });
        Ok(AdminMade::Promoted {
            sessions_ended: ended,
        })
    }

    /// For the operator at the command line: whether an account has this email.
    pub async fn exists(&self, email: &Email) -> Result<bool, ServiceError> {
        Ok(self.reads.user_by_email(email).await?.is_some())
    }

    async fn create_admin(&self, email: Email, password: Password) -> Result<User, ServiceError> {
        let now = self.clock.now();
        let password_hash = self.hasher.hash(password).await?;
        let user = User::new(email, None, Role::Admin, password_hash, Some(now), now);
        self.users
            .insert(&user)
            .await
            .map_err(ServiceError::email_conflict)?;
        self.audit.record(Record {
            kind: AuditKind::Registered,
            actor: None,
            subject: Some(user.id),
            client: None,
            detail: Some("administrator (command line)".into()),
        });
        Ok(user)
    }

    async fn existing(&self, id: UserId) -> Result<User, ServiceError> {
        self.users
            .find_by_id(id)
            .await?
            .ok_or(ServiceError::NotFound(NO_SUCH_USER))
    }

    fn guarded(&self, change: GuardedChange) -> Result<(), ServiceError> {
        match change {
            GuardedChange::Applied => Ok(()),
            GuardedChange::UnknownUser => Err(ServiceError::NotFound(NO_SUCH_USER)),
            GuardedChange::LastAdmin => Err(ServiceError::LastAdmin),
        }
    }
}
