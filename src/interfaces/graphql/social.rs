//! Social sign-in (OpenID Connect): `socialProviders`, `startSocialSignIn`,
//! `finishSocialSignIn`, `linkSocialIdentity`, `unlinkSocialIdentity`; `User.identities` is on
//! the user type. The provider sends the browser back to `GET /auth/oidc/callback`
//! (`interfaces::http::social`).

use async_graphql::{Context, InputObject, Object, Result, SimpleObject};

use crate::application::social_ports::ProviderInfo;
use crate::application::{ServiceError, SocialService};
use crate::domain::{Delivery, OpaqueToken};

use super::browser_session;
use super::context::{caller, client, request, service};
use super::error::graphql_error;
use super::transport::{SocialBinding, Transport};
use super::types::AuthPayload;

#[derive(Default)]
pub struct SocialQuery;

#[derive(Default)]
pub struct SocialMutation;

/// An OpenID Connect provider users may sign in with.
#[derive(SimpleObject)]
pub struct SocialProvider {
    /// What `startSocialSignIn` takes as `provider`.
    id: String,
    /// What the button says ("Sign in with …").
    name: String,
}

impl From<ProviderInfo> for SocialProvider {
    fn from(info: ProviderInfo) -> Self {
        Self {
            id: info.id.to_string(),
            name: info.name,
        }
    }
}

/// Where to send the browser.
#[derive(SimpleObject)]
pub struct SocialSignInStart {
    /// The provider's authorization URL: navigate the browser there (a full-page redirect).
    authorization_url: String,
}

/// A sign-in (or sign-up) with a provider.
#[derive(InputObject)]
pub struct StartSocialSignInInput {
    /// A provider's id from `socialProviders`.
    provider: String,
    /// Where the browser comes back when the flow ends: an absolute URL of your frontend, on
    /// an allowed origin (CORS_ALLOWED_ORIGINS or PUBLIC_URL). It gets `code=…` (bearer
    /// clients: exchange it with `finishSocialSignIn`), or nothing when cookie sessions are
    /// on (signed in), or `error=…`.
    redirect_to: String,
}

/// The one-time code the callback put in `redirectTo`.
#[derive(InputObject)]
pub struct FinishSocialSignInInput {
    /// The `code` query parameter of the redirect back.
    code: String,
}

/// An identity to add to the signed-in account.
#[derive(InputObject)]
pub struct LinkSocialIdentityInput {
    /// A provider's id from `socialProviders`.
    provider: String,
    /// Where the browser comes back: `linked=<provider>` or `error=…` is added.
    redirect_to: String,
}

/// The link emailed to an account when a sign-in with a provider found it (ACCOUNT_EXISTS).
#[derive(InputObject)]
pub struct ConfirmSocialLinkInput {
    /// The `token` query parameter of the emailed link (`{PUBLIC_URL}/link-identity?token=…`).
    token: String,
}

/// The identity to remove.
#[derive(InputObject)]
pub struct UnlinkSocialIdentityInput {
    /// The provider's id.
    provider: String,
}

#[Object]
impl SocialQuery {
    /// The providers users may sign in with, in the configured order.
    async fn social_providers(&self, ctx: &Context<'_>) -> Result<Vec<SocialProvider>> {
        Ok(service::<SocialService>(ctx)?
            .providers()
            .into_iter()
            .map(SocialProvider::from)
            .collect())
    }
}

/// Starts a flow and keeps the browser's binding in its cookie.
async fn start(
    ctx: &Context<'_>,
    provider: &str,
    redirect_to: &str,
    linking: bool,
) -> Result<SocialSignInStart> {
    let caller = if linking {
        Some(caller(ctx).await?)
    } else {
        None
    };
    let binding = ctx.data::<std::sync::Arc<SocialBinding>>().ok();
    let presented = binding
        .and_then(|b| b.presented())
        .map(|value| OpaqueToken::from_client(value.to_owned()));
    // The answer travels as this request's session does: a bearer client gets a one-time
    // code even where cookie sessions are on.
    let delivery = match &request(ctx)?.transport {
        Transport::Cookies(_) => Delivery::Cookies,
        Transport::Bearer => Delivery::Code,
    };
    let started = service::<SocialService>(ctx)?
        .start(
            provider,
            redirect_to,
            caller.as_ref(),
            presented,
            delivery,
            &client(ctx)?,
        )
        .await
        .map_err(graphql_error)?;
    match binding {
        Some(binding) => binding.hold(started.binding.expose().to_owned()),
        None => {
            return Err(graphql_error(ServiceError::internal(
                "no binding cookie handle for this request",
            )));
        }
    }
    Ok(SocialSignInStart {
        authorization_url: started.authorization_url,
    })
}

#[Object]
impl SocialMutation {
    /// Starts a sign-in (or sign-up) with a provider: answers the URL to send the browser
    /// to, and sets an HttpOnly cookie binding the flow to this browser (call it with
    /// `credentials: 'include'` from another site). `BAD_USER_INPUT` for an unknown provider
    /// or a `redirectTo` off the allowed origins; `SERVICE_UNAVAILABLE` when the provider
    /// cannot be reached.
    async fn start_social_sign_in(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "What the operation needs.")] input: StartSocialSignInInput,
    ) -> Result<SocialSignInStart> {
        start(ctx, &input.provider, &input.redirect_to, false).await
    }

    /// Exchanges the one-time code the callback put in `redirectTo` (valid for two minutes,
    /// once) for a session. An account with a second factor answers `FORBIDDEN` with
    /// `extensions.reason: MFA_REQUIRED` and a ticket, unless the provider asserted a second
    /// factor and the deployment trusts it (SOCIAL_TRUST_PROVIDER_MFA).
    async fn finish_social_sign_in(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "What the operation needs.")] input: FinishSocialSignInInput,
    ) -> Result<AuthPayload> {
        let signed_in = service::<SocialService>(ctx)?
            .finish(&input.code, &client(ctx)?)
            .await
            .map_err(graphql_error)?;
        browser_session::new_session(ctx, signed_in).await
    }

    /// Starts adding an identity at a provider to the signed-in account (needs a recent
    /// authentication): answers the URL to send the browser to.
    async fn link_social_identity(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "What the operation needs.")] input: LinkSocialIdentityInput,
    ) -> Result<SocialSignInStart> {
        start(ctx, &input.provider, &input.redirect_to, true).await
    }

    /// Follows the link emailed to an account whose address a provider vouched for
    /// (ACCOUNT_EXISTS): links that identity to the account, so it signs in there from now
    /// on. Works once, within an hour, and only while the account is unchanged since the
    /// email (a new password or email voids it): `BAD_USER_INPUT` otherwise. `CONFLICT` when
    /// the identity, or another at that provider, is linked already. Signs no one in.
    async fn confirm_social_link(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "What the operation needs.")] input: ConfirmSocialLinkInput,
    ) -> Result<bool> {
        service::<SocialService>(ctx)?
            .confirm_link(&input.token, &client(ctx)?)
            .await
            .map_err(graphql_error)?;
        Ok(true)
    }

    /// Removes the account's identity at a provider (needs a recent authentication).
    /// `CONFLICT` when it is the last way to sign in (no password, passkey or other
    /// identity); `NOT_FOUND` when none is linked.
    async fn unlink_social_identity(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "What the operation needs.")] input: UnlinkSocialIdentityInput,
    ) -> Result<bool> {
        let caller = caller(ctx).await?;
        service::<SocialService>(ctx)?
            .unlink(&caller, &input.provider, &client(ctx)?)
            .await
            .map_err(graphql_error)?;
        Ok(true)
    }
}
