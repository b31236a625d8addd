//! `me`.

use async_graphql::{Context, Object, Result};

use crate::application::UserService;

use super::context::{caller, service};
use super::error::graphql_error;
use super::types::User;

#[derive(Default)]
pub struct UserQuery;

#[Object]
impl UserQuery {
    /// The signed-in user. Needs `Authorization: Bearer <accessToken>`; fails with
    /// `UNAUTHENTICATED` when the token is missing, invalid, expired or its session ended.
    async fn me(&self, ctx: &Context<'_>) -> Result<User> {
        let caller = caller(ctx).await?;
        let user = service::<UserService>(ctx)?
            .me(&caller)
            .await
            .map_err(graphql_error)?;
        Ok(User(user))
    }
}
