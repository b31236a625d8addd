//! Accounts: `me`, `user`, `users`, `node`, and the profile and administration mutations.

use async_graphql::connection::CursorType;
use async_graphql::{Context, Enum, ID, InputObject, Object, Result};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::SecondsFormat;

use crate::application::{ServiceError, UserService};
use crate::domain::{
    self, Direction, DisplayName, Email, SuspensionReason, UserCursor, UserFilter, UserId,
    UserOrder, UserOrderField,
};

use super::browser_session;
use super::context::{caller, caller_account, client, service};
use super::error::graphql_error;
use super::pagination::{Connection, connection, page_request, total_wanted};
use super::types::{Node, Role, User};

#[derive(Default)]
pub struct UserQuery;

#[derive(Default)]
pub struct UserMutation;

/// How to sort users.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum UserOrderBy {
    /// By when the account was created.
    CreatedAt,
    /// By email, alphabetically.
    Email,
}

/// Sort direction.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum OrderDirection {
    /// Smallest first: oldest, or A to Z.
    Asc,
    /// Largest first: newest, or Z to A.
    Desc,
}

/// The order of a user list; ties are broken by id, so every ordering is total and stable.
#[derive(InputObject)]
pub struct UserOrderInput {
    /// What to sort by.
    field: UserOrderBy,
    /// Which way.
    direction: OrderDirection,
}

/// Which users to list; every condition given must hold.
#[derive(InputObject, Default)]
pub struct UserFilterInput {
    /// A part of the email, case-insensitive.
    email_contains: Option<String>,
    /// Users with this role.
    role: Option<Role>,
    /// Whether the email is confirmed.
    verified: Option<bool>,
    /// Whether the account is suspended.
    suspended: Option<bool>,
}

pub type UserConnection = Connection<User>;

/// A position in a user list: the sort key and id of a user, opaque to clients.
pub struct UserCursorToken(UserCursor);

impl CursorType for UserCursorToken {
    type Error = &'static str;

    fn decode_cursor(s: &str) -> Result<Self, Self::Error> {
        let bytes = URL_SAFE_NO_PAD.decode(s).map_err(|_| "malformed cursor")?;
        let text = String::from_utf8(bytes).map_err(|_| "malformed cursor")?;
        let mut parts = text.splitn(3, '|');
        let (kind, id, key) = match (parts.next(), parts.next(), parts.next()) {
            (Some(kind), Some(id), Some(key)) => (kind, id, key),
            _ => return Err("malformed cursor"),
        };
        let id = UserId::from_uuid(id.parse().map_err(|_| "malformed cursor")?);
        match kind {
            "c" => chrono::DateTime::parse_from_rfc3339(key)
                .map(|at| UserCursorToken(UserCursor::CreatedAt(at.to_utc(), id)))
                .map_err(|_| "malformed cursor"),
            "e" => Ok(UserCursorToken(UserCursor::Email(key.to_owned(), id))),
            _ => Err("malformed cursor"),
        }
    }

    fn encode_cursor(&self) -> String {
        let text = match &self.0 {
            UserCursor::CreatedAt(at, id) => {
                format!("c|{id}|{}", at.to_rfc3339_opts(SecondsFormat::AutoSi, true))
            }
            UserCursor::Email(email, id) => format!("e|{id}|{email}"),
        };
        URL_SAFE_NO_PAD.encode(text)
    }
}

/// A profile change.
#[derive(InputObject)]
pub struct UpdateProfileInput {
    /// The new display name; empty or null clears it.
    display_name: Option<String>,
}

/// A new email for the signed-in user.
#[derive(InputObject)]
pub struct ChangeEmailInput {
    /// The new email; it must be confirmed again through the link sent to it.
    new_email: String,
    /// The current password.
    password: String,
}

/// Confirmation of an account deletion.
#[derive(InputObject)]
pub struct DeleteAccountInput {
    /// The current password.
    password: String,
}

/// A role to give a user.
#[derive(InputObject)]
pub struct SetUserRoleInput {
    /// The user's id.
    user_id: ID,
    /// The role to give.
    role: Role,
}

/// A user to suspend.
#[derive(InputObject)]
pub struct SuspendUserInput {
    /// The user's id.
    user_id: ID,
    /// Why; shown to administrators and to the user.
    reason: String,
}

/// A user to reinstate.
#[derive(InputObject)]
pub struct UnsuspendUserInput {
    /// The user's id.
    user_id: ID,
}

/// A user id from a client; one that is no UUID names nobody.
fn user_id(id: &ID) -> Result<UserId> {
    id.parse::<uuid::Uuid>()
        .map(UserId::from_uuid)
        .map_err(|_| graphql_error(ServiceError::NotFound("There is no user with this id.")))
}

#[Object]
impl UserQuery {
    /// The signed-in user. Needs `Authorization: Bearer <accessToken>`; fails with
    /// `UNAUTHENTICATED` when the token is missing, invalid, expired or its session ended.
    async fn me(&self, ctx: &Context<'_>) -> Result<User> {
        Ok(User(caller_account(ctx).await?))
    }

    /// A user by id: any user for administrators (`NOT_FOUND` when there is none), only
    /// themselves for anyone else (`FORBIDDEN` for another id).
    async fn user(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The user's id.")] id: ID,
    ) -> Result<User> {
        let caller = caller(ctx).await?;
        let user = service::<UserService>(ctx)?
            .get(&caller, user_id(&id)?)
            .await
            .map_err(graphql_error)?;
        Ok(User(user))
    }

    /// Fetches any object by its global id (Relay). Null when nothing with that id exists or
    /// the caller may not see it.
    async fn node(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "A global id, as any `Node.id`.")] id: ID,
    ) -> Result<Option<Node>> {
        let caller = caller(ctx).await?;
        let Ok(id) = user_id(&id) else {
            return Ok(None);
        };
        match service::<UserService>(ctx)?.get(&caller, id).await {
            Ok(user) => Ok(Some(Node::User(User(user)))),
            Err(ServiceError::NotFound(_) | ServiceError::Forbidden(_)) => Ok(None),
            Err(other) => Err(graphql_error(other)),
        }
    }

    /// Every user, for administrators (`FORBIDDEN` for anyone else). Newest first unless
    /// `orderBy` says otherwise; page with `first`/`after` or `last`/`before` (at most 100).
    /// Cursors stay valid while users are added or removed.
    #[graphql(complexity = "super::pagination::page_cost(first, last, child_complexity)")]
    #[allow(clippy::too_many_arguments)] // Relay's four, a filter and an order
    async fn users(
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
        #[graphql(desc = "Only the users that pass this filter.")] filter: Option<UserFilterInput>,
        #[graphql(desc = "The order (newest first by default).")] order_by: Option<UserOrderInput>,
    ) -> Result<UserConnection> {
        let caller = caller(ctx).await?;
        let request = page_request::<UserCursorToken, _>(after, before, first, last, |c| c.0)
            .map_err(graphql_error)?;
        let filter = filter.unwrap_or_default();
        let filter = UserFilter {
            email_contains: filter.email_contains.filter(|s| !s.trim().is_empty()),
            role: filter.role.map(Into::into),
            verified: filter.verified,
            suspended: filter.suspended,
        };
        let order = order_by.map_or_else(UserOrder::default, |o| UserOrder {
            field: match o.field {
                UserOrderBy::CreatedAt => UserOrderField::CreatedAt,
                UserOrderBy::Email => UserOrderField::Email,
            },
            direction: match o.direction {
                OrderDirection::Asc => Direction::Ascending,
                OrderDirection::Desc => Direction::Descending,
            },
        });
        let listed = service::<UserService>(ctx)?
            .list(&caller, &filter, order, &request, total_wanted(ctx))
            .await
            .map_err(graphql_error)?;
        Ok(connection(listed.page, listed.total, |user| {
            (
                UserCursorToken(UserCursor::of(&user, order.field)),
                User(user),
            )
        }))
    }
}

#[Object]
impl UserMutation {
    /// Changes the signed-in user's display name.
    async fn update_profile(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "What the operation needs.")] input: UpdateProfileInput,
    ) -> Result<User> {
        let caller = caller(ctx).await?;
        let display_name = match input.display_name {
            Some(name) => DisplayName::parse(&name)
                .map_err(|e| graphql_error(ServiceError::invalid("displayName", e)))?,
            None => None,
        };
        let user = service::<UserService>(ctx)?
            .update_profile(&caller, display_name, &client(ctx)?)
            .await
            .map_err(graphql_error)?;
        Ok(User(user))
    }

    /// Asks to move the signed-in user to another email. Nothing changes until the link
    /// sent to that address is used (`confirmEmailChange`); until then `pendingEmail` shows
    /// it. The old address gets a link that cancels the change, or undoes it for
    /// `EMAIL_CHANGE_REVERT_WINDOW` after it completed (`cancelEmailChange`). The answer is the
    /// same whether or not the new address has an account (if it has, its owner is told and
    /// nothing changes). A wrong password is `BAD_USER_INPUT` on `password`.
    async fn change_email(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "What the operation needs.")] input: ChangeEmailInput,
    ) -> Result<User> {
        let caller = caller(ctx).await?;
        let email = Email::parse(&input.new_email)
            .map_err(|e| graphql_error(ServiceError::invalid("newEmail", e)))?;
        let user = service::<UserService>(ctx)?
            .change_email(&caller, email, input.password, &client(ctx)?)
            .await
            .map_err(graphql_error)?;
        Ok(User(user))
    }

    /// Deletes the signed-in user's account, its sessions and tokens, for good. The audit
    /// trail keeps the account's id (not its email). The last active administrator cannot
    /// delete themselves (`CONFLICT`).
    async fn delete_account(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "What the operation needs.")] input: DeleteAccountInput,
    ) -> Result<bool> {
        let caller = caller(ctx).await?;
        service::<UserService>(ctx)?
            .delete_account(&caller, input.password, &client(ctx)?)
            .await
            .map_err(graphql_error)?;
        browser_session::session_ended(ctx)?;
        Ok(true)
    }

    /// Gives a user a role (administrators only); a change of role ends the user's sessions,
    /// so no token issued before it keeps the old rights. The last active administrator
    /// cannot be demoted (`CONFLICT`). Needs a recent authentication (`FORBIDDEN` with
    /// `extensions.reason: REAUTHENTICATION_REQUIRED`: call `reauthenticate`, then retry).
    async fn set_user_role(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "What the operation needs.")] input: SetUserRoleInput,
    ) -> Result<User> {
        let caller = caller(ctx).await?;
        let user = service::<UserService>(ctx)?
            .set_role(
                &caller,
                user_id(&input.user_id)?,
                domain::Role::from(input.role),
                &client(ctx)?,
            )
            .await
            .map_err(graphql_error)?;
        Ok(User(user))
    }

    /// Suspends a user (administrators only): they cannot sign in or refresh, and their
    /// sessions end at once. The last active administrator cannot be suspended (`CONFLICT`).
    /// Needs a recent authentication (`FORBIDDEN` with `extensions.reason:
    /// REAUTHENTICATION_REQUIRED`: call `reauthenticate`, then retry).
    async fn suspend_user(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "What the operation needs.")] input: SuspendUserInput,
    ) -> Result<User> {
        let caller = caller(ctx).await?;
        let reason = SuspensionReason::parse(&input.reason)
            .map_err(|e| graphql_error(ServiceError::invalid("reason", e)))?;
        let user = service::<UserService>(ctx)?
            .suspend(&caller, user_id(&input.user_id)?, reason, &client(ctx)?)
            .await
            .map_err(graphql_error)?;
        Ok(User(user))
    }

    /// Lifts a suspension (administrators only). Needs a recent authentication (`FORBIDDEN`
    /// with `extensions.reason: REAUTHENTICATION_REQUIRED`: call `reauthenticate`, then retry).
    async fn unsuspend_user(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "What the operation needs.")] input: UnsuspendUserInput,
    ) -> Result<User> {
        let caller = caller(ctx).await?;
        let user = service::<UserService>(ctx)?
            .unsuspend(&caller, user_id(&input.user_id)?, &client(ctx)?)
            .await
            .map_err(graphql_error)?;
        Ok(User(user))
    }
}
