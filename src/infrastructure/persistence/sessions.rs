use async_trait::async_trait;
use chrono::{DateTime, Utc};
use entity::{refresh_token, session};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DbBackend,
    EntityTrait, ExprTrait, Insert, QueryFilter, QueryOrder, QuerySelect, QueryTrait, Statement,
};

use crate::domain::{
    AuthMethods, Authentication, Page, PageRequest, PresentedRefreshToken, RefreshChain,
    RefreshTokenExchange, RepositoryError, Session, SessionId, SessionRepository, SiblingAdded,
    TokenHash, UserId,
};

use super::transactions::{Finish, Transactions};
use super::{counting, repository_error};

/// Sessions in `sessions`, their refresh-token hashes in `refresh_tokens`.
///
/// Transactions that touch both lock the session row before its tokens, the order in which
/// deleting an account cascades (user, sessions, tokens). Inserting a token first would take
/// a shared lock on its session (InnoDB's foreign-key check), and two transactions each
/// holding one and then updating the session wait for each other: a deadlock.
pub struct SeaOrmSessionRepository {
    db: DatabaseConnection,
    /// Every write goes through it (retries on contention).
    writes: Transactions,
}

impl SeaOrmSessionRepository {
    pub fn new(writes: Transactions) -> Self {
        Self {
            db: writes.db().clone(),
            writes,
        }
    }

    fn backend(&self) -> DbBackend {
        self.db.get_database_backend()
    }
}

#[async_trait]
impl SessionRepository for SeaOrmSessionRepository {
    async fn create(
        &self,
        session: &Session,
        refresh_token: &TokenHash,
    ) -> Result<(), RepositoryError> {
        let statements = creation(session, refresh_token, self.backend());
        self.writes
            .run(|txn| {
                let statements = statements.clone();
                Box::pin(async move {
                    for statement in statements {
                        txn.execute_raw(statement).await?;
                    }
                    Ok(Finish::Commit(()))
                })
            })
            .await
    }

    async fn find(&self, id: SessionId) -> Result<Option<Session>, RepositoryError> {
        let row = session::Entity::find_by_id(id.as_uuid())
            .one(&self.db)
            .await
            .map_err(repository_error)?;
        Ok(row.map(to_domain))
    }

    async fn find_by_refresh_token(
        &self,
        token: &TokenHash,
    ) -> Result<Option<PresentedRefreshToken>, RepositoryError> {
        let row = refresh_token::Entity::find_by_id(token.as_str())
            .find_also_related(session::Entity)
            .one(&self.db)
            .await
            .map_err(repository_error)?;
        Ok(row.and_then(|(token, session)| {
            let session = session?;
            let chain = RefreshChain {
                generation: session.generation,
                rotated_at: session.rotated_at.unwrap_or(session.last_used_at),
                siblings: u32::try_from(session.siblings).unwrap_or(u32::MAX),
            };
            Some(PresentedRefreshToken {
                session: to_domain(session),
                generation: token.generation,
                chain,
            })
        }))
    }

    async fn rotate_refresh_token(
        &self,
        exchange: &RefreshTokenExchange<'_>,
    ) -> Result<bool, RepositoryError> {
        // The session is locked first (see the type's comment), by the conditional update
        // that moves its chain on: of two concurrent exchanges of the current generation,
        // the second waits for the first and then finds the chain moved.
        let advance = touch_session(exchange)
            .col_expr(
                session::Column::Generation,
                Expr::col(session::Column::Generation).add(1),
            )
            .col_expr(session::Column::RotatedAt, Expr::value(exchange.now))
            .col_expr(session::Column::Siblings, Expr::value(0))
            .filter(session::Column::Generation.eq(exchange.generation))
            .build(self.backend());
        let spend = refresh_token::Entity::update_many()
            .col_expr(refresh_token::Column::UsedAt, Expr::value(exchange.now))
            .filter(refresh_token::Column::TokenHash.eq(exchange.presented.as_str()))
            .filter(refresh_token::Column::UsedAt.is_null())
            .build(self.backend());
        let successor = refresh_token_row(
            exchange.session,
            exchange.successor,
            exchange.now,
            exchange.generation + 1,
        )
        .build(self.backend());
        self.writes
            .run(|txn| {
                let (advance, spend, successor) =
                    (advance.clone(), spend.clone(), successor.clone());
                Box::pin(async move {
                    // Moved on meanwhile, or no session (deleted): nothing changes.
                    if txn.execute_raw(advance).await?.rows_affected() != 1 {
                        return Ok(Finish::Rollback(false));
                    }
                    txn.execute_raw(spend).await?;
                    txn.execute_raw(successor).await?;
                    Ok(Finish::Commit(true))
                })
            })
            .await
    }

    async fn add_sibling(
        &self,
        exchange: &RefreshTokenExchange<'_>,
        max_siblings: u32,
    ) -> Result<SiblingAdded, RepositoryError> {
        let count = touch_session(exchange)
            .col_expr(
                session::Column::Siblings,
                Expr::col(session::Column::Siblings).add(1),
            )
            .filter(session::Column::Generation.eq(exchange.generation))
            .filter(session::Column::Siblings.lt(i64::from(max_siblings)))
            .build(self.backend());
        let sibling = refresh_token_row(
            exchange.session,
            exchange.successor,
            exchange.now,
            exchange.generation,
        )
        .build(self.backend());
        let generation = session::Entity::find_by_id(exchange.session.as_uuid())
            .select_only()
            .column(session::Column::Generation)
            .build(self.backend());
        self.writes
            .run(|txn| {
                let (count, sibling, generation) =
                    (count.clone(), sibling.clone(), generation.clone());
                let expected = exchange.generation;
                Box::pin(async move {
                    // The session's row lock keeps it from being deleted until the commit.
                    if txn.execute_raw(count).await?.rows_affected() == 1 {
                        txn.execute_raw(sibling).await?;
                        return Ok(Finish::Commit(SiblingAdded::Added));
                    }
                    let now_at: Option<i64> = match txn.query_one_raw(generation).await? {
                        Some(row) => Some(row.try_get_by_index(0)?),
                        None => None,
                    };
                    Ok(Finish::Rollback(if now_at == Some(expected) {
                        SiblingAdded::Exhausted
                    } else {
                        SiblingAdded::Moved
                    }))
                })
            })
            .await
    }

    async fn reauthenticate(
        &self,
        id: SessionId,
        authentication: Authentication,
    ) -> Result<bool, RepositoryError> {
        let update = session::Entity::update_many()
            .col_expr(
                session::Column::AuthenticatedAt,
                Expr::value(authentication.at),
            )
            .col_expr(
                session::Column::AuthMethods,
                Expr::value(authentication.methods.as_str()),
            )
            .filter(session::Column::Id.eq(id.as_uuid()))
            .filter(session::Column::RevokedAt.is_null())
            .filter(session::Column::ExpiresAt.gt(authentication.at))
            .build(self.backend());
        Ok(self.writes.execute(update).await?.rows_affected() == 1)
    }

    async fn revoke(&self, id: SessionId, now: DateTime<Utc>) -> Result<bool, RepositoryError> {
        let update = session::Entity::update_many()
            .col_expr(session::Column::RevokedAt, Expr::value(now))
            .filter(session::Column::Id.eq(id.as_uuid()))
            .filter(session::Column::RevokedAt.is_null())
            .build(self.backend());
        Ok(self.writes.execute(update).await?.rows_affected() == 1)
    }

    async fn revoke_all(
        &self,
        user: UserId,
        except: Option<SessionId>,
        now: DateTime<Utc>,
    ) -> Result<u64, RepositoryError> {
        let update = session::Entity::update_many()
            .col_expr(session::Column::RevokedAt, Expr::value(now))
            .filter(session::Column::UserId.eq(user.as_uuid()))
            .filter(session::Column::RevokedAt.is_null())
            .filter(session::Column::ExpiresAt.gt(now))
            .apply_if(except, |query, keep| {
                query.filter(session::Column::Id.ne(keep.as_uuid()))
            })
            .build(self.backend());
        Ok(self.writes.execute(update).await?.rows_affected())
    }

    async fn list_active(
        &self,
        user: UserId,
        now: DateTime<Utc>,
        page: &PageRequest<SessionId>,
    ) -> Result<Page<Session>, RepositoryError> {
        // Newest first. UUIDv7 ids sort by creation time, and the id is unique, so it is a
        // stable keyset: rows inserted meanwhile never shift a page.
        let query = active_sessions(user, now);
        let query = match page {
            PageRequest::Forward { after, first } => query
                .apply_if(*after, |q, after| {
                    q.filter(session::Column::Id.lt(after.as_uuid()))
                })
                .order_by_desc(session::Column::Id)
                .limit(*first as u64 + 1),
            PageRequest::Backward { before, last } => query
                .apply_if(*before, |q, before| {
                    q.filter(session::Column::Id.gt(before.as_uuid()))
                })
                .order_by_asc(session::Column::Id)
                .limit(*last as u64 + 1),
        };
        let rows = query.all(&self.db).await.map_err(repository_error)?;
        Ok(Page::from_probe(
            page,
            rows.into_iter().map(to_domain).collect(),
        ))
    }

    async fn count_active(
        &self,
        user: UserId,
        now: DateTime<Utc>,
        exact_up_to: u64,
    ) -> Result<u64, RepositoryError> {
        counting::bounded(&self.db, active_sessions(user, now), exact_up_to).await
    }

    async fn delete_ended(&self, now: DateTime<Utc>) -> Result<u64, RepositoryError> {
        let delete = session::Entity::delete_many()
            .filter(
                Condition::any()
                    .add(session::Column::ExpiresAt.lte(now))
                    .add(session::Column::RevokedAt.is_not_null()),
            )
            .build(self.backend());
        Ok(self.writes.execute(delete).await?.rows_affected())
    }
}

/// The inserts of a new session and its first refresh token, in that order (see the type's
/// comment).
fn creation(session: &Session, refresh_token: &TokenHash, backend: DbBackend) -> [Statement; 2] {
    let session_row = session::Entity::insert(session::ActiveModel {
        id: Set(session.id.as_uuid()),
        user_id: Set(session.user_id.as_uuid()),
        created_at: Set(session.created_at),
        last_used_at: Set(session.last_used_at),
        expires_at: Set(session.expires_at),
        revoked_at: Set(session.revoked_at),
        user_agent: Set(session.user_agent.clone()),
        ip: Set(session.ip.clone()),
        generation: Set(0),
        rotated_at: Set(Some(session.created_at)),
        siblings: Set(0),
        authenticated_at: Set(Some(session.authenticated.at)),
        auth_methods: Set(Some(session.authenticated.methods.as_str().to_owned())),
    });
    let token_row = refresh_token_row(session.id, refresh_token, session.created_at, 0);
    [session_row.build(backend), token_row.build(backend)]
}

fn active_sessions(user: UserId, now: DateTime<Utc>) -> sea_orm::Select<session::Entity> {
    session::Entity::find()
        .filter(session::Column::UserId.eq(user.as_uuid()))
        .filter(session::Column::RevokedAt.is_null())
        .filter(session::Column::ExpiresAt.gt(now))
}

/// The insert of a session's new, unused refresh token of `generation`.
fn refresh_token_row(
    session: SessionId,
    token: &TokenHash,
    issued_at: DateTime<Utc>,
    generation: i64,
) -> Insert<refresh_token::ActiveModel> {
    refresh_token::Entity::insert(refresh_token::ActiveModel {
        token_hash: Set(token.as_str().to_owned()),
        session_id: Set(session.as_uuid()),
        issued_at: Set(issued_at),
        used_at: Set(None),
        generation: Set(generation),
    })
}

/// Moves the session's last use and expiry (and locks its row).
fn touch_session(exchange: &RefreshTokenExchange<'_>) -> sea_orm::UpdateMany<session::Entity> {
    session::Entity::update_many()
        .col_expr(session::Column::LastUsedAt, Expr::value(exchange.now))
        .col_expr(session::Column::ExpiresAt, Expr::value(exchange.expires_at))
        .filter(session::Column::Id.eq(exchange.session.as_uuid()))
}

pub(super) fn to_domain(row: session::Model) -> Session {
    Session {
        id: SessionId::from_uuid(row.id),
        user_id: UserId::from_uuid(row.user_id),
        created_at: row.created_at,
        last_used_at: row.last_used_at,
        expires_at: row.expires_at,
        revoked_at: row.revoked_at,
        user_agent: row.user_agent,
        ip: row.ip,
        authenticated: Authentication {
            // Rows of the previous release were given their creation time by the migration.
            at: row.authenticated_at.unwrap_or(row.created_at),
            methods: AuthMethods::from_stored(row.auth_methods.as_deref()),
        },
    }
}
