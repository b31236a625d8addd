//! The second factor: `enrollTotp`, `confirmTotp`, `disableTotp`, `regenerateRecoveryCodes`,
//! `verifyMfa` (finishing a sign-in), `reauthenticate`, and the administrators' `resetUserMfa`.

use async_graphql::{Context, ID, InputObject, Object, Result, SimpleObject};
use qrcode::QrCode;
use qrcode::render::svg;

use crate::application::{MfaService, PasskeyService, ServiceError};
use crate::domain::{OpaqueToken, UserId, ValidationError};

use super::browser_session;
use super::context::{caller, client, service};
use super::error::graphql_error;
use super::passkeys::{PasskeyAssertionInput, ceremony_id};
use super::types::{AuthPayload, User};

#[derive(Default)]
pub struct SecondFactorMutation;

/// A new authenticator to add to an app. Nothing is active until `confirmTotp` gets a code
/// from it. The secret is shown only here: it is never returned again.
#[derive(SimpleObject)]
pub struct TotpEnrollment {
    /// The shared secret in base32, for apps where it is typed in.
    secret: String,
    /// The `otpauth://totp/…` URI, for a link on a phone.
    otpauth_uri: String,
    /// A QR code of `otpauthUri` as an SVG document, to show for the app to scan.
    qr_code_svg: String,
}

/// The second factor is on.
#[derive(SimpleObject)]
pub struct TotpConfirmation {
    /// One-time codes for when the authenticator is lost; each works once, in place of a
    /// code. Shown only now: ask the user to keep them somewhere safe.
    recovery_codes: Vec<String>,
}

/// A code from the authenticator being enrolled.
#[derive(InputObject)]
pub struct ConfirmTotpInput {
    /// The six digits the app shows now.
    code: String,
}

/// A code proving the second factor.
#[derive(InputObject)]
pub struct DisableTotpInput {
    /// A code from the authenticator, or a recovery code.
    code: String,
}

/// The rest of a sign-in that answered `MFA_REQUIRED`.
#[derive(InputObject)]
pub struct VerifyMfaInput {
    /// `extensions.mfaTicket` of that answer.
    ticket: String,
    /// A code from the authenticator, or a recovery code. Exactly one of `code` and
    /// `passkey`.
    code: Option<String>,
    /// A passkey of the account, answering `startPasskeyMfa` with this ticket.
    passkey: Option<PasskeyAssertionInput>,
}

/// Proof that the signed-in user is at the keyboard.
#[derive(InputObject)]
pub struct ReauthenticateInput {
    /// The account's password (with no `passkey`).
    password: Option<String>,
    /// A code from the authenticator, or a recovery code; needed with the password when the
    /// account has an authenticator app.
    code: Option<String>,
    /// Instead of the password (and code): a passkey of the account, answering
    /// `startPasskeyReauthentication` in this session.
    passkey: Option<PasskeyAssertionInput>,
}

/// The user whose second factor to remove.
#[derive(InputObject)]
pub struct ResetUserMfaInput {
    /// The user's id.
    user_id: ID,
}

#[Object]
impl SecondFactorMutation {
    /// Starts adding an authenticator app (TOTP) as a second factor. Needs a recent
    /// authentication (`FORBIDDEN` with `extensions.reason: REAUTHENTICATION_REQUIRED`
    /// otherwise); `CONFLICT` when a second factor is already on.
    async fn enroll_totp(&self, ctx: &Context<'_>) -> Result<TotpEnrollment> {
        let caller = caller(ctx).await?;
        let enrollment = service::<MfaService>(ctx)?
            .enroll(&caller)
            .await
            .map_err(graphql_error)?;
        let qr = QrCode::new(enrollment.otpauth_uri.as_bytes())
            .map_err(|e| graphql_error(ServiceError::internal(e)))?;
        Ok(TotpEnrollment {
            qr_code_svg: qr
                .render::<svg::Color<'_>>()
                .min_dimensions(200, 200)
                .build(),
            secret: enrollment.secret,
            otpauth_uri: enrollment.otpauth_uri,
        })
    }

    /// Turns the enrolled authenticator on with a first code from it, and returns the
    /// recovery codes (shown this once). Every other session of the user ends. A wrong code
    /// is `BAD_USER_INPUT` on `code`.
    async fn confirm_totp(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "What the operation needs.")] input: ConfirmTotpInput,
    ) -> Result<TotpConfirmation> {
        let caller = caller(ctx).await?;
        let codes = service::<MfaService>(ctx)?
            .confirm(&caller, &input.code, &client(ctx)?)
            .await
            .map_err(graphql_error)?;
        Ok(TotpConfirmation {
            recovery_codes: codes.iter().map(|c| c.expose().to_owned()).collect(),
        })
    }

    /// Turns the second factor off, with a code from it or a recovery code. Needs a recent
    /// authentication that included the second factor.
    async fn disable_totp(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "What the operation needs.")] input: DisableTotpInput,
    ) -> Result<bool> {
        let caller = caller(ctx).await?;
        service::<MfaService>(ctx)?
            .disable(&caller, &input.code, &client(ctx)?)
            .await
            .map_err(graphql_error)?;
        Ok(true)
    }

    /// New recovery codes, replacing all earlier ones (shown this once). Needs a recent
    /// authentication that included the second factor.
    async fn regenerate_recovery_codes(&self, ctx: &Context<'_>) -> Result<Vec<String>> {
        let caller = caller(ctx).await?;
        let codes = service::<MfaService>(ctx)?
            .regenerate_recovery_codes(&caller, &client(ctx)?)
            .await
            .map_err(graphql_error)?;
        Ok(codes.iter().map(|c| c.expose().to_owned()).collect())
    }

    /// Finishes a sign-in that answered `FORBIDDEN` with `extensions.reason: MFA_REQUIRED`,
    /// with its `mfaTicket` and either a code from the authenticator or a recovery code, or
    /// a passkey answering `startPasskeyMfa` (both or neither: `BAD_USER_INPUT`). A wrong
    /// code is `BAD_USER_INPUT` on `code` (try again, a few times); a passkey that is not the
    /// account's or does not verify is `UNAUTHENTICATED`; a ticket that expired, was used, or
    /// had too many tries is `UNAUTHENTICATED`: sign in again.
    async fn verify_mfa(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "What the operation needs.")] input: VerifyMfaInput,
    ) -> Result<AuthPayload> {
        let ticket = OpaqueToken::from_client(input.ticket);
        let signed_in = match (input.code, input.passkey) {
            (Some(code), None) => {
                service::<MfaService>(ctx)?
                    .verify(ticket, &code, &client(ctx)?)
                    .await
            }
            (None, Some(passkey)) => {
                let challenge = ceremony_id(&passkey.challenge_id)?;
                service::<PasskeyService>(ctx)?
                    .verify_mfa(ticket, challenge, &passkey.credential, &client(ctx)?)
                    .await
            }
            _ => Err(one_of("code", "Give either a code or a passkey.")),
        }
        .map_err(graphql_error)?;
        browser_session::new_session(ctx, signed_in).await
    }

    /// Proves again that the signed-in user is at the keyboard (the password, and a code
    /// when the account has an authenticator app; or a passkey answering
    /// `startPasskeyReauthentication`), before a sensitive change. The session's
    /// authentication time moves to now; a new access token says so (`auth_time`, `amr`).
    /// `refreshToken` is `null`: the session's refresh token stays as it is.
    async fn reauthenticate(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "What the operation needs.")] input: ReauthenticateInput,
    ) -> Result<AuthPayload> {
        let caller = caller(ctx).await?;
        let reauthenticated = match (input.password, input.code, input.passkey) {
            (Some(password), code, None) => {
                service::<MfaService>(ctx)?
                    .reauthenticate(&caller, password, code.as_deref(), &client(ctx)?)
                    .await
            }
            (None, None, Some(passkey)) => {
                let challenge = ceremony_id(&passkey.challenge_id)?;
                service::<PasskeyService>(ctx)?
                    .reauthenticate(&caller, challenge, &passkey.credential, &client(ctx)?)
                    .await
            }
            _ => Err(one_of(
                "password",
                "Give either the password (and a code) or a passkey.",
            )),
        }
        .map_err(graphql_error)?;
        browser_session::reauthenticated(ctx, reauthenticated)
    }

    /// Removes a user's second factor (the authenticator app and every passkey) and ends
    /// every session of theirs (administrators only), e.g. after they lost the device and
    /// their recovery codes. Audited; `CONFLICT` when they have neither. Needs a
    /// recent authentication (`FORBIDDEN` with `extensions.reason: REAUTHENTICATION_REQUIRED`:
    /// call `reauthenticate`, then retry). An administrator's own factor is refused here
    /// (`FORBIDDEN`): they turn it off with `disableTotp` and a code.
    async fn reset_user_mfa(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "What the operation needs.")] input: ResetUserMfaInput,
    ) -> Result<User> {
        let caller = caller(ctx).await?;
        let user_id = input
            .user_id
            .parse::<uuid::Uuid>()
            .map(UserId::from_uuid)
            .map_err(|_| graphql_error(ServiceError::NotFound("There is no user with this id.")))?;
        let user = service::<MfaService>(ctx)?
            .reset(&caller, user_id, &client(ctx)?)
            .await
            .map_err(graphql_error)?;
        Ok(User(user))
    }
}

/// Two ways of proving something given together, or neither.
fn one_of(field: &'static str, message: &str) -> ServiceError {
    ServiceError::invalid(field, ValidationError(message.into()))
}
