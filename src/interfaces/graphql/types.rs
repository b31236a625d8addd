//! Output types shared by the feature modules.

use async_graphql::{Enum, ID, Object, SimpleObject};
use chrono::{DateTime, Utc};

use crate::application::SignedIn;
use crate::domain;

/// A registered account.
pub struct User(pub domain::User);

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

    /// What the user is allowed to do.
    async fn role(&self) -> Role {
        self.0.role.into()
    }

    /// When the account was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// When the account was last changed.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
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

/// Tokens for a new session, and the signed-in user.
#[derive(SimpleObject)]
pub struct AuthPayload {
    /// Short-lived JWT: send it as `Authorization: Bearer <accessToken>`.
    access_token: String,
    /// Long-lived opaque token: exchange it with `refreshToken` for new tokens when the
    /// access token expires. Store it as securely as a password.
    refresh_token: String,
    /// Always `Bearer`.
    token_type: &'static str,
    /// Seconds until the access token expires.
    expires_in: i32,
    /// The signed-in user.
    user: User,
}

impl From<SignedIn> for AuthPayload {
    fn from(signed_in: SignedIn) -> Self {
        Self {
            access_token: signed_in.access_token.token,
            refresh_token: signed_in.refresh_token.expose().to_owned(),
            token_type: "Bearer",
            expires_in: i32::try_from(signed_in.access_token.expires_in.as_secs())
                .unwrap_or(i32::MAX),
            user: User(signed_in.user),
        }
    }
}
