//! Reading SeaORM's rows with rusqlite: the statements SeaORM builds from the entities for the
//! generic path, run as they are, and their rows read by the column names SeaORM gives them,
//! so the two paths cannot drift apart.

use std::sync::OnceLock;

use chrono::{DateTime, Utc};
use entity::{session, user};
use rusqlite::Row;
use rusqlite::types::{FromSql, FromSqlResult, ValueRef};
use sea_orm::{
    ColumnTrait, DbBackend, EntityTrait, IdenStatic, QueryFilter, QueryTrait, SelectA, SelectB,
};
use uuid::Uuid;

/// The generic path's statement for a user by email, its email bound at each read.
pub(super) fn user_by_email() -> Query<Columns<user::Column>> {
    let statement = user::Entity::find()
        .filter(user::Column::Email.eq(""))
        .build(DbBackend::Sqlite);
    Query::new(statement, |statement| Columns::locate(statement, ""))
}

/// The generic path's statement for a session and its user, its session id bound at each read.
pub(super) fn session_with_user() -> Query<(Columns<session::Column>, Columns<user::Column>)> {
    let statement = session::Entity::find_by_id(Uuid::nil())
        .find_also_related(user::Entity)
        .build(DbBackend::Sqlite);
    Query::new(statement, |statement| {
        Ok((
            Columns::locate(statement, SelectA.as_str())?,
            Columns::locate(statement, SelectB.as_str())?,
        ))
    })
}

/// A `users` row as SeaORM reads it.
pub(super) fn user_row(row: &Row<'_>, at: &Columns<user::Column>) -> rusqlite::Result<user::Model> {
    use user::Column;
    Ok(user::Model {
        id: at.get(row, Column::Id)?,
        email: at.get(row, Column::Email)?,
        password_hash: at.get(row, Column::PasswordHash)?,
        display_name: at.get(row, Column::DisplayName)?,
        role: at.get(row, Column::Role)?,
        email_verified_at: at.optional_instant(row, Column::EmailVerifiedAt)?,
        suspended_at: at.optional_instant(row, Column::SuspendedAt)?,
        suspension_reason: at.get(row, Column::SuspensionReason)?,
        created_at: at.instant(row, Column::CreatedAt)?,
        updated_at: at.instant(row, Column::UpdatedAt)?,
        credential_version: at.get(row, Column::CredentialVersion)?,
        pending_email: at.get(row, Column::PendingEmail)?,
        mfa_enabled_at: at.optional_instant(row, Column::MfaEnabledAt)?,
        has_password: at.get(row, Column::HasPassword)?,
    })
}

/// A `sessions` row as SeaORM reads it.
fn session_row(row: &Row<'_>, at: &Columns<session::Column>) -> rusqlite::Result<session::Model> {
    use session::Column;
    Ok(session::Model {
        id: at.get(row, Column::Id)?,
        user_id: at.get(row, Column::UserId)?,
        created_at: at.instant(row, Column::CreatedAt)?,
        last_used_at: at.instant(row, Column::LastUsedAt)?,
        expires_at: at.instant(row, Column::ExpiresAt)?,
        revoked_at: at.optional_instant(row, Column::RevokedAt)?,
        user_agent: at.get(row, Column::UserAgent)?,
        ip: at.get(row, Column::Ip)?,
        authenticated_at: at.optional_instant(row, Column::AuthenticatedAt)?,
        auth_methods: at.get(row, Column::AuthMethods)?,
        generation: at.get(row, Column::Generation)?,
        rotated_at: at.optional_instant(row, Column::RotatedAt)?,
        siblings: at.get(row, Column::Siblings)?,
    })
}

/// A session and its user; `None` when the join found no user, as the generic path reads it.
pub(super) fn session_and_user(
    row: &Row<'_>,
    (session, user): &(Columns<session::Column>, Columns<user::Column>),
) -> rusqlite::Result<Option<(session::Model, user::Model)>> {
    if user.get::<Option<Uuid>>(row, user::Column::Id)?.is_none() {
        return Ok(None);
    }
    Ok(Some((session_row(row, session)?, user_row(row, user)?)))
}

/// A statement SeaORM built for SQLite, with one parameter bound at each read, and where its
/// columns are in a row: found by name the first time it runs (finding a name costs a scan of
/// every column's name, too dear for every value of every read).
pub(super) struct Query<L> {
    sql: String,
    layout: OnceLock<L>,
    locate: fn(&rusqlite::Statement<'_>) -> rusqlite::Result<L>,
}

impl<L> Query<L> {
    fn new(
        statement: sea_orm::Statement,
        locate: fn(&rusqlite::Statement<'_>) -> rusqlite::Result<L>,
    ) -> Self {
        Self {
            sql: statement.sql,
            layout: OnceLock::new(),
            locate,
        }
    }

    pub(super) fn sql(&self) -> &str {
        &self.sql
    }

    /// Where the columns are in the rows of `statement` (this query, prepared).
    pub(super) fn layout(&self, statement: &rusqlite::Statement<'_>) -> rusqlite::Result<&L> {
        match self.layout.get() {
            Some(layout) => Ok(layout),
            None => {
                let located = (self.locate)(statement)?;
                Ok(self.layout.get_or_init(|| located))
            }
        }
    }
}

/// Where each column of an entity is in the rows of one statement: its name, after the
/// prefix SeaORM gives that entity's columns in the statement (`A_`, `B_` in a join).
pub(super) struct Columns<C> {
    at: Vec<(C, usize)>,
}

impl<C: ColumnTrait> Columns<C> {
    pub(super) fn locate(
        statement: &rusqlite::Statement<'_>,
        prefix: &str,
    ) -> rusqlite::Result<Self> {
        let at = C::iter()
            .map(|column| {
                let name = format!("{prefix}{}", column.as_str());
                Ok((column, statement.column_index(&name)?))
            })
            .collect::<rusqlite::Result<_>>()?;
        Ok(Self { at })
    }

    /// The value of `column` in `row`.
    pub(super) fn get<T: FromSql>(&self, row: &Row<'_>, column: C) -> rusqlite::Result<T> {
        let wanted = std::mem::discriminant(&column);
        match self
            .at
            .iter()
            .find(|(c, _)| std::mem::discriminant(c) == wanted)
        {
            Some((_, at)) => row.get(*at),
            None => Err(rusqlite::Error::InvalidColumnName(column.as_str().into())),
        }
    }

    pub(super) fn instant(&self, row: &Row<'_>, column: C) -> rusqlite::Result<DateTime<Utc>> {
        self.get(row, column).map(|Instant(at)| at)
    }

    pub(super) fn optional_instant(
        &self,
        row: &Row<'_>,
        column: C,
    ) -> rusqlite::Result<Option<DateTime<Utc>>> {
        self.get(row, column)
            .map(|at: Option<Instant>| at.map(|Instant(at)| at))
    }
}

/// A stored `DateTime<Utc>`, read as sqlx reads it for the generic path. sqlx writes RFC 3339
/// (`2026-01-02T03:04:05.123456+00:00`, as many fraction digits as the value has) and tries
/// chrono's RFC 3339 parser first; so does this, and it leaves anything else (a row written
/// by hand, `2026-01-02 03:04:05`) to rusqlite's chrono support. rusqlite alone would read
/// the RFC 3339 text through a format string, several times slower on the hottest read.
struct Instant(DateTime<Utc>);

impl FromSql for Instant {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        if let ValueRef::Text(text) = value
            && let Ok(text) = std::str::from_utf8(text)
            && let Ok(parsed) = DateTime::parse_from_rfc3339(text)
        {
            return Ok(Self(parsed.to_utc()));
        }
        DateTime::<Utc>::column_result(value).map(Self)
    }
}
