//! Several writes to SQLite in one transaction and one trip to the connection's thread.
//!
//! Each sqlx SQLite connection lives on a thread of its own; every statement is a hand-off to
//! that thread and back, and so is the pool's check of the connection when it is handed back.
//! Through SeaORM a transaction of two inserts is BEGIN, INSERT, INSERT and COMMIT: five round
//! trips, ten thread switches, which cost a sign-in more CPU than the statements themselves.
//! SQLite runs a script of statements in one call and sqlx binds the values of all of them in
//! order, so `BEGIN IMMEDIATE; …; COMMIT` is one round trip. A failing statement stops the
//! script inside its transaction: that connection is then closed rather than handed back,
//! which rolls the transaction back; so is one whose caller gave up before the answer.

use sea_orm::sqlx::pool::PoolConnection;
use sea_orm::sqlx::{self, AssertSqlSafe, Sqlite};
use sea_orm::{DatabaseConnection, DbErr, RuntimeErr, Statement, Value, Values};
use sea_query_sqlx::SqlxValues;

use super::super::QueryCounter;

/// Runs `statements` (built for SQLite) as one transaction, all or nothing, and counts them
/// as the pool counts each statement it runs. A failed one kept nothing, so the caller may
/// run it again (the retry policy does, when SQLite is busy).
pub(super) async fn in_one_transaction(
    db: &DatabaseConnection,
    statements: &[Statement],
    counter: &QueryCounter,
) -> Result<(), DbErr> {
    let mut script = String::from("BEGIN IMMEDIATE;");
    let mut values: Vec<Value> = Vec::new();
    for statement in statements {
        script.push_str(&statement.sql);
        script.push(';');
        if let Some(Values(bound)) = &statement.values {
            values.extend_from_slice(bound);
        }
    }
    script.push_str("COMMIT;");

    let connection = db
        .get_sqlite_connection_pool()
        .acquire()
        .await
        .map_err(|e| DbErr::Conn(RuntimeErr::SqlxError(e.into())))?;
    let mut connection = ClosedUnlessCommitted {
        connection,
        committed: false,
    };
    counter.add(statements.len() as u64);
    sqlx::query_with(AssertSqlSafe(script), SqlxValues(Values(values)))
        .execute(&mut *connection.connection)
        .await
        .map_err(|e| DbErr::Exec(RuntimeErr::SqlxError(e.into())))?;
    connection.committed = true;
    Ok(())
}

/// A connection whose script failed, or whose caller stopped waiting for it (a request that
/// timed out), may be inside the script's transaction: it is closed, never handed back, or
/// the next statements on it would join a transaction no one commits.
struct ClosedUnlessCommitted {
    connection: PoolConnection<Sqlite>,
    committed: bool,
}

impl Drop for ClosedUnlessCommitted {
    fn drop(&mut self) {
        if !self.committed {
            self.connection.close_on_drop();
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use entity::{refresh_token, session, user};
    use sea_orm::{
        ActiveModelTrait, DbBackend, EntityTrait, IntoActiveModel, PaginatorTrait, QueryTrait,
    };
    use uuid::Uuid;

    use super::in_one_transaction;
    use crate::infrastructure::persistence::{QueryCounter, migrated_sqlite};

    #[tokio::test]
    async fn a_transaction_stores_all_its_rows_exactly_or_none_and_the_pool_stays_usable() {
        let dir = tempfile::tempdir().unwrap();
        // One connection: a connection handed back inside a failed transaction would be the
        // one the next transaction gets.
        let db = migrated_sqlite(&dir.path().join("writes.db")).await;
        let at = Utc.timestamp_micros(1_790_000_000_123_456).unwrap();
        let ada = user::Model {
            id: Uuid::new_v4(),
            email: "ada@example.com".into(),
            password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
            display_name: None,
            role: "USER".into(),
            email_verified_at: None,
            suspended_at: None,
            suspension_reason: None,
            created_at: at,
            updated_at: at,
            credential_version: 0,
            pending_email: None,
        };
        ada.clone().into_active_model().insert(&db).await.unwrap();
        let session = |id: Uuid| session::Model {
            id,
            user_id: ada.id,
            created_at: at,
            last_used_at: at,
            expires_at: at + chrono::Duration::days(30),
            revoked_at: None,
            user_agent: Some("Mozilla/5.0".into()),
            ip: Some("2001:db8::1".into()),
            generation: 0,
            rotated_at: Some(at),
            siblings: 0,
        };
        let token = |hash: &str, session: Uuid| refresh_token::Model {
            token_hash: hash.into(),
            session_id: session,
            issued_at: at,
            used_at: None,
            generation: 0,
        };
        let rows = |session: &session::Model, token: &refresh_token::Model| {
            [
                session::Entity::insert(session.clone().into_active_model())
                    .build(DbBackend::Sqlite),
                refresh_token::Entity::insert(token.clone().into_active_model())
                    .build(DbBackend::Sqlite),
            ]
        };

        let counted = QueryCounter::default();

        let first = session(Uuid::new_v4());
        let first_token = token("first", first.id);
        in_one_transaction(&db, &rows(&first, &first_token), &counted)
            .await
            .unwrap();
        assert_eq!(counted.get(), 2, "two statements, as the pool counts them");
        let stored = session::Entity::find_by_id(first.id)
            .one(&db)
            .await
            .unwrap();
        assert_eq!(stored, Some(first.clone()), "read back exactly as written");
        let stored = refresh_token::Entity::find_by_id("first").one(&db).await;
        assert_eq!(stored.unwrap(), Some(first_token));

        // The second insert collides with the first token: the session before it must go too.
        let doomed = session(Uuid::new_v4());
        let collision = token("first", doomed.id);
        let failed = in_one_transaction(&db, &rows(&doomed, &collision), &counted).await;
        assert!(matches!(
            failed.unwrap_err().sql_err(),
            Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
        ));
        assert_eq!(
            session::Entity::find_by_id(doomed.id).one(&db).await,
            Ok(None)
        );

        let last = session(Uuid::new_v4());
        let last_token = token("last", last.id);
        in_one_transaction(&db, &rows(&last, &last_token), &counted)
            .await
            .expect("the next transaction starts on a clean connection");
        assert_eq!(session::Entity::find().count(&db).await, Ok(2));
    }
}
