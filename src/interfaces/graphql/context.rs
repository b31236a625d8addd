//! What a resolver knows about the HTTP request it serves: who calls, from where, and the
//! request's batch loaders.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::Context;
use async_graphql::dataloader::{DataLoader, HashMapCache, Loader};
use tokio::sync::OnceCell;

use crate::application::{
    AuditPage, AuditService, AuthFailure, Caller, ClientInfo, Principal, ServiceError,
    SessionService, UserService,
};
use crate::domain::{AuditKind, User, UserId};

use super::error::graphql_error;
use super::transport::{Transport, refuses_session};

/// Per-request data, put into the GraphQL request by the HTTP handler.
pub struct RequestContext {
    authorization: Authorization,
    client: ClientInfo,
    pub(super) transport: Transport,
    caller: OnceCell<Caller>,
    users: OnceCell<DataLoader<UserLoader, HashMapCache>>,
    audit_pages: OnceCell<DataLoader<AuditPageLoader>>,
}

enum Authorization {
    Absent,
    Bearer(String),
    Malformed,
}

impl RequestContext {
    /// From the raw `Authorization` header value, if any, the client's details, and how its
    /// session travels.
    pub fn new(authorization: Option<&[u8]>, client: ClientInfo, transport: Transport) -> Self {
        let authorization = match authorization {
            None => Authorization::Absent,
            Some(value) => match std::str::from_utf8(value)
                .ok()
                .and_then(|v| v.split_once(' '))
                .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
                .map(|(_, token)| token.trim())
                .filter(|token| !token.is_empty())
            {
                Some(token) => Authorization::Bearer(token.to_owned()),
                None => Authorization::Malformed,
            },
        };
        Self {
            authorization,
            client,
            transport,
            caller: OnceCell::new(),
            users: OnceCell::new(),
            audit_pages: OnceCell::new(),
        }
    }
}

/// The authenticated caller, checked once per request and only when a field needs it: a
/// public operation such as `login` works even when the client still sends a stale token,
/// but a field that needs a caller fails on a bad token instead of treating it as anonymous.
pub async fn caller(ctx: &Context<'_>) -> async_graphql::Result<Principal> {
    Ok(authenticated(ctx).await?.principal)
}

/// The caller's own account, as read with their session.
pub async fn caller_account(ctx: &Context<'_>) -> async_graphql::Result<User> {
    Ok(authenticated(ctx).await?.user.clone())
}

async fn authenticated<'a>(ctx: &Context<'a>) -> async_graphql::Result<&'a Caller> {
    let request = request(ctx)?;
    // An explicit header wins over the access cookie.
    let (token, cookie) = match (&request.authorization, &request.transport) {
        (Authorization::Bearer(token), _) => (token.as_str(), None),
        (Authorization::Malformed, _) => {
            return Err(graphql_error(AuthFailure::MalformedHeader.into()));
        }
        (Authorization::Absent, Transport::Cookies(cookies)) => match cookies.access_token() {
            Some(token) => (token, Some(cookies)),
            None => return Err(graphql_error(AuthFailure::MissingToken.into())),
        },
        (Authorization::Absent, Transport::Bearer) => {
            return Err(graphql_error(AuthFailure::MissingToken.into()));
        }
    };
    let sessions = service::<SessionService>(ctx)?;
    request
        .caller
        .get_or_try_init(|| sessions.authenticate(token))
        .await
        .map_err(|error| {
            // A refused access cookie is cleared, so the browser stops sending it and the
            // client knows to refresh (or sign in) instead.
            if let Some(cookies) = cookie
                && refuses_session(&error)
            {
                cookies.refuse_access();
            }
            graphql_error(error)
        })
}

/// The client's details, for services that record them.
pub fn client(ctx: &Context<'_>) -> async_graphql::Result<ClientInfo> {
    Ok(request(ctx)?.client.clone())
}

/// A service the schema was built with.
pub fn service<'a, S: Send + Sync + 'static>(
    ctx: &Context<'a>,
) -> async_graphql::Result<&'a Arc<S>> {
    ctx.data::<Arc<S>>()
        .map_err(|e| graphql_error(ServiceError::internal(e.message)))
}

/// Loads users by id in one query per batch, showing the caller only the users they may see.
/// It caches for the request, so a list can load all its users at once up front and each
/// item's field then finds its user in the cache.
pub async fn users<'a>(
    ctx: &Context<'a>,
) -> async_graphql::Result<&'a DataLoader<UserLoader, HashMapCache>> {
    let caller = caller(ctx).await?;
    let users = service::<UserService>(ctx)?.clone();
    Ok(request(ctx)?
        .users
        .get_or_init(|| async move {
            DataLoader::with_cache(
                UserLoader { users, caller },
                tokio::spawn,
                HashMapCache::default(),
            )
        })
        .await)
}

/// Loads the first page of audit events of many users in one batch.
pub async fn audit_pages<'a>(
    ctx: &Context<'a>,
) -> async_graphql::Result<&'a DataLoader<AuditPageLoader>> {
    let caller = caller(ctx).await?;
    let audit = service::<AuditService>(ctx)?.clone();
    Ok(request(ctx)?
        .audit_pages
        .get_or_init(
            || async move { DataLoader::new(AuditPageLoader { audit, caller }, tokio::spawn) },
        )
        .await)
}

pub(super) fn request<'a>(ctx: &Context<'a>) -> async_graphql::Result<&'a RequestContext> {
    ctx.data::<RequestContext>()
        .map_err(|e| graphql_error(ServiceError::internal(e.message)))
}

/// The batch loader behind [`users`].
pub struct UserLoader {
    users: Arc<UserService>,
    caller: Principal,
}

impl Loader<UserId> for UserLoader {
    type Value = User;
    type Error = Arc<ServiceError>;

    async fn load(&self, ids: &[UserId]) -> Result<HashMap<UserId, User>, Self::Error> {
        let users = self
            .users
            .visible(&self.caller, ids)
            .await
            .map_err(Arc::new)?;
        Ok(users.into_iter().map(|user| (user.id, user)).collect())
    }
}

/// Which first page of audit events to load for a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AuditPageKey {
    pub user: UserId,
    pub kind: Option<AuditKind>,
    pub first: usize,
}

/// The batch loader behind [`audit_pages`].
pub struct AuditPageLoader {
    audit: Arc<AuditService>,
    caller: Principal,
}

impl Loader<AuditPageKey> for AuditPageLoader {
    type Value = AuditPage;
    type Error = Arc<ServiceError>;

    async fn load(
        &self,
        keys: &[AuditPageKey],
    ) -> Result<HashMap<AuditPageKey, AuditPage>, Self::Error> {
        // One batch per page shape; a list of users asks for one shape.
        let mut shapes: HashMap<(Option<AuditKind>, usize), Vec<UserId>> = HashMap::new();
        for key in keys {
            shapes
                .entry((key.kind, key.first))
                .or_default()
                .push(key.user);
        }
        let mut loaded = HashMap::with_capacity(keys.len());
        for ((kind, first), users) in shapes {
            let pages = self
                .audit
                .first_pages(&self.caller, &users, kind, first)
                .await
                .map_err(Arc::new)?;
            for (user, page) in pages {
                loaded.insert(AuditPageKey { user, kind, first }, page);
            }
        }
        Ok(loaded)
    }
}
