//! Email-link flows: `requestPasswordReset`, `resetPassword`, `verifyEmail`,
//! `resendVerificationEmail`, `confirmEmailChange`, `cancelEmailChange`.

use async_graphql::{Context, InputObject, Object, Result};

use crate::application::{AccountService, ServiceError};
use crate::domain::{Email, OpaqueToken, Password};

use super::browser_session;
use super::context::{client, service};
use super::error::graphql_error;
use super::types::{AuthPayload, User};

#[derive(Default)]
pub struct AccountMutation;

/// Whose password to reset.
#[derive(InputObject)]
pub struct RequestPasswordResetInput {
    /// The account's email.
    email: String,
}

/// A new password, authorised by a reset link.
#[derive(InputObject)]
pub struct ResetPasswordInput {
    /// The `token` parameter of the emailed link.
    token: String,
    /// The new password: 8 to 128 characters, not easy to guess (common passwords and ones
    /// built from the account's email or name are refused).
    new_password: String,
}

/// Proof of an email address.
#[derive(InputObject)]
pub struct VerifyEmailInput {
    /// The `token` parameter of the emailed link.
    token: String,
}

/// The link of an email change.
#[derive(InputObject)]
pub struct EmailChangeLinkInput {
    /// The `token` parameter of the emailed link.
    token: String,
}

/// A "this wasn't me" link.
#[derive(InputObject)]
pub struct SecureAccountInput {
    /// The `token` parameter of the emailed link.
    token: String,
}

/// Where to send a new verification link.
#[derive(InputObject)]
pub struct ResendVerificationEmailInput {
    /// The account's email.
    email: String,
}

fn email(raw: &str) -> Result<Email> {
    Email::parse(raw).map_err(|e| graphql_error(ServiceError::invalid("email", e)))
}

#[Object]
impl AccountMutation {
    /// Emails a link to reset the password, valid for 30 minutes; a newer request replaces
    /// it. Always returns `true`, whether or not an account has this email.
    async fn request_password_reset(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "What the operation needs.")] input: RequestPasswordResetInput,
    ) -> Result<bool> {
        service::<AccountService>(ctx)?
            .request_password_reset(email(&input.email)?, &client(ctx)?)
            .await
            .map_err(graphql_error)?;
        Ok(true)
    }

    /// Sets a new password with the token of a reset link, signs out every session, and signs
    /// in anew. An unknown, used or expired token is `BAD_USER_INPUT` on `token`.
    async fn reset_password(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "What the operation needs.")] input: ResetPasswordInput,
    ) -> Result<AuthPayload> {
        let new_password = Password::new(input.new_password)
            .map_err(|e| graphql_error(ServiceError::invalid("newPassword", e)))?;
        let signed_in = service::<AccountService>(ctx)?
            .reset_password(
                OpaqueToken::from_client(input.token),
                new_password,
                &client(ctx)?,
            )
            .await
            .map_err(graphql_error)?;
        browser_session::new_session(ctx, signed_in).await
    }

    /// Confirms the email address with the token of a verification link. An unknown, used or
    /// expired token is `BAD_USER_INPUT` on `token`.
    async fn verify_email(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "What the operation needs.")] input: VerifyEmailInput,
    ) -> Result<User> {
        let user = service::<AccountService>(ctx)?
            .verify_email(OpaqueToken::from_client(input.token), &client(ctx)?)
            .await
            .map_err(graphql_error)?;
        Ok(User(user))
    }

    /// Completes an email change with the token of the link sent to the new address: the
    /// account moves there (confirmed), and links issued before stop working. An unknown,
    /// used or expired token is `BAD_USER_INPUT` on `token`; an address another account took
    /// meanwhile is `CONFLICT`.
    async fn confirm_email_change(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "What the operation needs.")] input: EmailChangeLinkInput,
    ) -> Result<User> {
        let user = service::<AccountService>(ctx)?
            .confirm_email_change(OpaqueToken::from_client(input.token), &client(ctx)?)
            .await
            .map_err(graphql_error)?;
        Ok(User(user))
    }

    /// With the token of the link an email change sent to the old address: the same as
    /// `secureAccount` (the account goes back to that address, even after later changes).
    async fn cancel_email_change(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "What the operation needs.")] input: EmailChangeLinkInput,
    ) -> Result<bool> {
        secure_account(ctx, input.token).await
    }

    /// "This wasn't me", with the token of the link in a security notice (or an email
    /// change's cancel link): gives the account back to the address the link was sent to,
    /// for the link's whole window and whatever changed since. Every session ends, every
    /// link issued since dies, a second factor or recovery codes set up since are removed,
    /// and the password stops working: a reset link goes to that address. An unknown, used
    /// or expired token is `BAD_USER_INPUT` on `token`; an address another account took
    /// meanwhile is `CONFLICT`.
    async fn secure_account(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "What the operation needs.")] input: SecureAccountInput,
    ) -> Result<bool> {
        secure_account(ctx, input.token).await
    }

    /// Emails a new verification link (earlier ones stop working). Always returns `true`,
    /// whether or not an unconfirmed account has this email.
    async fn resend_verification_email(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "What the operation needs.")] input: ResendVerificationEmailInput,
    ) -> Result<bool> {
        service::<AccountService>(ctx)?
            .resend_verification(email(&input.email)?, &client(ctx)?)
            .await
            .map_err(graphql_error)?;
        Ok(true)
    }
}

async fn secure_account(ctx: &Context<'_>, token: String) -> Result<bool> {
    service::<AccountService>(ctx)?
        .secure_account(OpaqueToken::from_client(token), &client(ctx)?)
        .await
        .map_err(graphql_error)?;
    Ok(true)
}
