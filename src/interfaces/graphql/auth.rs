//! `register`, `login` and `changePassword`.

use async_graphql::{Context, InputObject, Object, Result};

use crate::application::{AuthService, ServiceError};
use crate::domain::{DisplayName, Email, NewUser, Password};

use super::browser_session;
use super::context::{caller, client, service};
use super::error::graphql_error;
use super::types::AuthPayload;

#[derive(Default)]
pub struct AuthMutation;

/// A new account.
#[derive(InputObject)]
pub struct RegisterInput {
    /// Sign-in email; trimmed and lower-cased, must be unique.
    email: String,
    /// 8 to 128 characters; any characters, no composition rules, not easy to guess (common
    /// passwords and ones built from the email or display name are refused).
    password: String,
    /// Name to show for the user; up to 100 characters.
    display_name: Option<String>,
}

impl RegisterInput {
    fn into_new_user(self) -> Result<NewUser, ServiceError> {
        Ok(NewUser {
            email: Email::parse(&self.email).map_err(|e| ServiceError::invalid("email", e))?,
            password: Password::new(self.password)
                .map_err(|e| ServiceError::invalid("password", e))?,
            display_name: match self.display_name {
                Some(name) => DisplayName::parse(&name)
                    .map_err(|e| ServiceError::invalid("displayName", e))?,
                None => None,
            },
        })
    }
}

/// Credentials of an existing account.
#[derive(InputObject)]
pub struct LoginInput {
    /// The account's email (case and surrounding spaces do not matter).
    email: String,
    /// The account's password.
    password: String,
}

/// A new password for the signed-in user.
#[derive(InputObject)]
pub struct ChangePasswordInput {
    /// The password the user has now.
    current_password: String,
    /// The new password: 8 to 128 characters, not easy to guess (common passwords and ones
    /// built from the account's email or name are refused).
    new_password: String,
}

#[Object]
impl AuthMutation {
    /// Creates an account, emails a link to confirm the address, and signs it in. Fails with
    /// `CONFLICT` when the email is taken and `BAD_USER_INPUT` (with `extensions.field`) when
    /// an input is invalid. When the server requires confirmed emails, the account is created
    /// but the call fails with `FORBIDDEN` (`extensions.reason: EMAIL_NOT_VERIFIED`): show
    /// "check your inbox".
    async fn register(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "What the operation needs.")] input: RegisterInput,
    ) -> Result<AuthPayload> {
        let new_user = input.into_new_user().map_err(graphql_error)?;
        let signed_in = service::<AuthService>(ctx)?
            .register(new_user, &client(ctx)?)
            .await
            .map_err(graphql_error)?;
        browser_session::new_session(ctx, signed_in).await
    }

    /// Signs in with email and password, opening a new session. A wrong password and an
    /// unknown email fail the same way, with `UNAUTHENTICATED`.
    async fn login(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "What the operation needs.")] input: LoginInput,
    ) -> Result<AuthPayload> {
        let email = Email::parse(&input.email)
            .map_err(|e| graphql_error(ServiceError::invalid("email", e)))?;
        let signed_in = service::<AuthService>(ctx)?
            .login(email, input.password, &client(ctx)?)
            .await
            .map_err(graphql_error)?;
        browser_session::new_session(ctx, signed_in).await
    }

    /// Changes the signed-in user's password and signs out every other session (this one
    /// stays). A wrong current password is `BAD_USER_INPUT` on `currentPassword`.
    async fn change_password(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "What the operation needs.")] input: ChangePasswordInput,
    ) -> Result<bool> {
        let caller = caller(ctx).await?;
        let new_password = Password::new(input.new_password)
            .map_err(|e| graphql_error(ServiceError::invalid("newPassword", e)))?;
        service::<AuthService>(ctx)?
            .change_password(&caller, input.current_password, new_password, &client(ctx)?)
            .await
            .map_err(graphql_error)?;
        Ok(true)
    }
}
