//! Passkeys (WebAuthn): `startPasskeyRegistration` / `finishPasskeyRegistration` to enrol one,
//! `startPasskeySignIn` / `finishPasskeySignIn` to sign in with one, no password or email
//! typed. Options and credentials travel as the `JSON` scalar, exactly the JSON the browser's
//! `PublicKeyCredential.parseCreationOptionsFromJSON` / `parseRequestOptionsFromJSON` read
//! and `credential.toJSON()` writes.

use async_graphql::{Context, ID, InputObject, Object, Result, SimpleObject};
use serde_json::Value;

use crate::application::{PasskeyChallenge as Started, PasskeyService, ServiceError};
use crate::domain::{CeremonyId, OpaqueToken, PasskeyId, ValidationError};

use super::browser_session;
use super::context::{caller, client, service};
use super::error::graphql_error;
use super::types::{AuthPayload, Passkey};

#[derive(Default)]
pub struct PasskeyMutation;

/// A started passkey ceremony: hand `options` to the browser, and `challengeId` back with its
/// answer. It expires after five minutes and finishes once.
#[derive(SimpleObject)]
pub struct PasskeyChallenge {
    /// Names the ceremony when it finishes.
    challenge_id: ID,
    /// `PublicKeyCredentialCreationOptions` (for `navigator.credentials.create`) or
    /// `PublicKeyCredentialRequestOptions` (for `navigator.credentials.get`), as the JSON
    /// `PublicKeyCredential.parseCreationOptionsFromJSON` / `parseRequestOptionsFromJSON`
    /// read.
    options: Value,
}

impl From<Started> for PasskeyChallenge {
    fn from(started: Started) -> Self {
        Self {
            challenge_id: ID(started.id.to_string()),
            options: started.options,
        }
    }
}

/// The new passkey, as the browser made it.
#[derive(InputObject)]
pub struct FinishPasskeyRegistrationInput {
    /// `challengeId` of `startPasskeyRegistration`.
    challenge_id: ID,
    /// A name for the user to recognise it by ("Phone", "Laptop"): 1 to 64 characters.
    name: String,
    /// `credential.toJSON()` of what `navigator.credentials.create` returned.
    credential: Value,
}

/// The passkey the browser signed in with.
#[derive(InputObject)]
pub struct FinishPasskeySignInInput {
    /// `challengeId` of `startPasskeySignIn`.
    challenge_id: ID,
    /// `credential.toJSON()` of what `navigator.credentials.get` returned.
    credential: Value,
}

/// A passkey's answer to a started ceremony (a second factor, a step-up).
#[derive(InputObject)]
pub struct PasskeyAssertionInput {
    /// `challengeId` of the `start…` mutation.
    pub(super) challenge_id: ID,
    /// `credential.toJSON()` of what `navigator.credentials.get` returned.
    pub(super) credential: Value,
}

/// The sign-in waiting for its second factor.
#[derive(InputObject)]
pub struct StartPasskeyMfaInput {
    /// `extensions.mfaTicket` of the `MFA_REQUIRED` answer.
    ticket: String,
}

/// A passkey to rename.
#[derive(InputObject)]
pub struct RenamePasskeyInput {
    /// The passkey's id.
    id: ID,
    /// Its new name: 1 to 64 characters.
    name: String,
}

/// A passkey to remove.
#[derive(InputObject)]
pub struct RemovePasskeyInput {
    /// The passkey's id.
    id: ID,
}

/// A passkey id from a client; one that is no UUID names no passkey of the caller.
fn passkey_id(id: &ID) -> Result<PasskeyId> {
    id.parse::<uuid::Uuid>()
        .map(PasskeyId::from_uuid)
        .map_err(|_| graphql_error(ServiceError::NotFound("You have no passkey with this id.")))
}

/// A ceremony id from a client; one that is no UUID names no ceremony.
pub(super) fn ceremony_id(id: &ID) -> Result<CeremonyId> {
    id.parse::<uuid::Uuid>()
        .map(CeremonyId::from_uuid)
        .map_err(|_| {
            graphql_error(ServiceError::invalid(
                "challengeId",
                ValidationError("There is no passkey ceremony with this id.".into()),
            ))
        })
}

#[Object]
impl PasskeyMutation {
    /// Starts adding a passkey to the signed-in user's account. Needs a recent
    /// authentication (`FORBIDDEN` with `extensions.reason: REAUTHENTICATION_REQUIRED`
    /// otherwise). The options ask for a discoverable, user-verified credential, and exclude
    /// the account's passkeys. `CONFLICT` when the account holds 20 passkeys.
    async fn start_passkey_registration(&self, ctx: &Context<'_>) -> Result<PasskeyChallenge> {
        let caller = caller(ctx).await?;
        Ok(service::<PasskeyService>(ctx)?
            .start_registration(&caller)
            .await
            .map_err(graphql_error)?
            .into())
    }

    /// Adds the passkey the browser made for `startPasskeyRegistration`, in the same session.
    /// A credential the ceremony refuses is `BAD_USER_INPUT` on `credential`, an expired or
    /// finished ceremony `BAD_USER_INPUT` on `challengeId`, a passkey registered already
    /// (to any account) `CONFLICT`.
    async fn finish_passkey_registration(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "What the operation needs.")] input: FinishPasskeyRegistrationInput,
    ) -> Result<Passkey> {
        let caller = caller(ctx).await?;
        let challenge = ceremony_id(&input.challenge_id)?;
        let passkey = service::<PasskeyService>(ctx)?
            .finish_registration(
                &caller,
                challenge,
                &input.name,
                &input.credential,
                &client(ctx)?,
            )
            .await
            .map_err(graphql_error)?;
        Ok(Passkey(passkey))
    }

    /// Starts a sign-in with a passkey, no email needed: the options name no account, so the
    /// browser offers the passkeys it holds for this site (also as autofill:
    /// `mediation: "conditional"`). Limited per address like `login`.
    async fn start_passkey_sign_in(&self, ctx: &Context<'_>) -> Result<PasskeyChallenge> {
        Ok(service::<PasskeyService>(ctx)?
            .start_sign_in(&client(ctx)?)
            .await
            .map_err(graphql_error)?
            .into())
    }

    /// Signs in with the passkey the browser chose for `startPasskeySignIn`, answering as
    /// `login` does (tokens, or session cookies for a browser). The session's `amr` is
    /// `["webauthn"]`; a user-verified passkey is two factors, so this never answers
    /// `MFA_REQUIRED`. An unknown passkey or one that does not verify is `UNAUTHENTICATED`,
    /// an expired or finished ceremony `BAD_USER_INPUT` on `challengeId`.
    async fn finish_passkey_sign_in(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "What the operation needs.")] input: FinishPasskeySignInInput,
    ) -> Result<AuthPayload> {
        let challenge = ceremony_id(&input.challenge_id)?;
        let signed_in = service::<PasskeyService>(ctx)?
            .finish_sign_in(challenge, &input.credential, &client(ctx)?)
            .await
            .map_err(graphql_error)?;
        browser_session::new_session(ctx, signed_in).await
    }

    /// Starts a passkey as the second factor of a sign-in that answered `MFA_REQUIRED`: the
    /// options list the account's passkeys; answer with `verifyMfa(input: {ticket, passkey})`.
    /// Counts as a try on the ticket. A dead ticket is `UNAUTHENTICATED`; an account with no
    /// passkey `CONFLICT`.
    async fn start_passkey_mfa(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "What the operation needs.")] input: StartPasskeyMfaInput,
    ) -> Result<PasskeyChallenge> {
        Ok(service::<PasskeyService>(ctx)?
            .start_mfa(OpaqueToken::from_client(input.ticket), &client(ctx)?)
            .await
            .map_err(graphql_error)?
            .into())
    }

    /// Starts proving the signed-in user again with one of their passkeys, before a
    /// sensitive change; answer with `reauthenticate(input: {passkey})` in the same session.
    /// `CONFLICT` if the account has no passkey.
    async fn start_passkey_reauthentication(&self, ctx: &Context<'_>) -> Result<PasskeyChallenge> {
        let caller = caller(ctx).await?;
        Ok(service::<PasskeyService>(ctx)?
            .start_reauthentication(&caller, &client(ctx)?)
            .await
            .map_err(graphql_error)?
            .into())
    }

    /// Renames one of the signed-in user's passkeys. Needs a recent authentication;
    /// `NOT_FOUND` for an id that is not one of theirs.
    async fn rename_passkey(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "What the operation needs.")] input: RenamePasskeyInput,
    ) -> Result<Passkey> {
        let caller = caller(ctx).await?;
        let id = passkey_id(&input.id)?;
        let passkey = service::<PasskeyService>(ctx)?
            .rename(&caller, id, &input.name, &client(ctx)?)
            .await
            .map_err(graphql_error)?;
        Ok(Passkey(passkey))
    }

    /// Removes one of the signed-in user's passkeys; the account's address is told. Needs a
    /// recent authentication; `NOT_FOUND` for an id that is not one of theirs.
    async fn remove_passkey(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "What the operation needs.")] input: RemovePasskeyInput,
    ) -> Result<bool> {
        let caller = caller(ctx).await?;
        let id = passkey_id(&input.id)?;
        service::<PasskeyService>(ctx)?
            .remove(&caller, id, &client(ctx)?)
            .await
            .map_err(graphql_error)?;
        Ok(true)
    }
}
