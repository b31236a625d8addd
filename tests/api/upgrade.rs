//! A database made by the previous release upgrades in place: its schema is the migrations
//! that release shipped, its rows are written as that release wrote them, and after the new
//! server starts on it every account signs in, every session keeps working (its access token
//! and its refresh token), and an outstanding emailed link still works.

use chrono::{Duration, Utc};
use migration::MigratorTrait;
use sea_orm::{Database, EntityTrait};
use serde_json::json;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use authgraph::application::ports::PasswordHasher;
use authgraph::domain::Password;
use authgraph::infrastructure::security::Argon2Hasher;

use crate::helpers::{
    JWT_SECRET, PASSWORD, TestDatabase, assert_no_errors, data_str, error_code, forge_token,
    insert_row, only_error, spawn_app_on, test_config,
};

/// The first release shipped three migrations; the previous one five.
const FIRST_RELEASE: u32 = 3;
const PREVIOUS_RELEASE: u32 = 5;

fn sha256(token: &str) -> String {
    format!("{:x}", Sha256::digest(token.as_bytes()))
}

#[tokio::test]
async fn a_database_of_the_previous_release_upgrades_with_every_account_and_session_intact() {
    upgrade_from(PREVIOUS_RELEASE).await;
}

#[tokio::test]
async fn a_database_of_the_first_release_upgrades_with_every_account_and_session_intact() {
    upgrade_from(FIRST_RELEASE).await;
}

/// Rows as the release with `shipped` migrations wrote them, then the new server.
async fn upgrade_from(shipped: u32) {
    let database = TestDatabase::create().await;
    let db = Database::connect(&database.url).await.unwrap();
    migration::Migrator::up(&db, Some(shipped)).await.unwrap();

    let hasher = Argon2Hasher::new(&test_config(&database.url, |_| {}).hashing.settings()).unwrap();
    let hash = hasher
        .hash(Password::new(PASSWORD.into()).unwrap())
        .await
        .unwrap();
    let now = Utc::now();
    let (user_id, session_id) = (Uuid::now_v7(), Uuid::now_v7());
    let email = format!("old-{}@example.com", user_id.simple());
    insert_row(
        &db,
        "users",
        vec![
            ("id", user_id.into()),
            ("email", email.clone().into()),
            ("password_hash", hash.as_str().into()),
            ("display_name", "Ada\u{200D}Lovelace".into()),
            ("role", "user".into()),
            ("created_at", (now - Duration::days(3)).into()),
            ("updated_at", (now - Duration::days(3)).into()),
        ],
    )
    .await;
    insert_row(
        &db,
        "sessions",
        vec![
            ("id", session_id.into()),
            ("user_id", user_id.into()),
            ("created_at", (now - Duration::days(2)).into()),
            ("last_used_at", (now - Duration::hours(1)).into()),
            ("expires_at", (now + Duration::days(20)).into()),
        ],
    )
    .await;
    for (token, used) in [
        ("old-used", Some(now - Duration::hours(1))),
        ("old-current", None),
    ] {
        insert_row(
            &db,
            "refresh_tokens",
            vec![
                ("token_hash", sha256(token).into()),
                ("session_id", session_id.into()),
                ("issued_at", (now - Duration::hours(2)).into()),
                ("used_at", used.into()),
            ],
        )
        .await;
    }
    let mut link = vec![
        ("token_hash", sha256("old-reset-link").into()),
        ("user_id", user_id.into()),
        ("purpose", "password_reset".into()),
        ("created_at", (now - Duration::minutes(5)).into()),
        ("expires_at", (now + Duration::minutes(25)).into()),
    ];
    if shipped >= 4 {
        // From the fourth migration on, a link keeps the address it was sent to.
        link.push(("email", email.clone().into()));
    }
    insert_row(&db, "account_tokens", link).await;
    db.close().await.unwrap();

    // The new release starts on it and applies the rest.
    let app = spawn_app_on(database).await;

    // The session's access token, as the old release issued it, still works.
    let claims = json!({
        "iss": "authgraph", "aud": "authgraph", "sub": user_id, "sid": session_id,
        "iat": now.timestamp(), "exp": now.timestamp() + 600,
    });
    let me = app.me(&forge_token(&claims, JWT_SECRET.as_bytes())).await;
    assert_no_errors(&me);
    assert_eq!(me["data"]["me"]["email"], email.as_str());
    assert_eq!(
        me["data"]["me"]["displayName"], "Ada\u{200D}Lovelace",
        "a name stored under the old rules still reads back"
    );
    // It proved its user when it was created, two days ago: too long for a sensitive change.
    let old_token = forge_token(&claims, JWT_SECRET.as_bytes());
    let enroll = app
        .graphql_as(&old_token, "mutation { enrollTotp { secret } }", json!({}))
        .await;
    assert_eq!(
        only_error(&enroll).extensions.reason.as_deref(),
        Some("REAUTHENTICATION_REQUIRED")
    );
    let state = app
        .graphql_as(&old_token, "{ me { mfaEnabled } }", json!({}))
        .await;
    assert_eq!(state["data"]["me"]["mfaEnabled"], false);
    // Its refresh token rotates as ever.
    let refreshed = app.refresh("old-current").await;
    assert_no_errors(&refreshed);
    let next = data_str(&refreshed, &["refreshToken", "refreshToken"]).to_owned();
    assert_no_errors(&app.refresh(&next).await);
    // The token used before the upgrade is as old as ever: presenting it is theft.
    assert_eq!(
        error_code(&app.refresh("old-used").await),
        "UNAUTHENTICATED"
    );
    // Every account made before accounts could sign in through providers only has a
    // password of its own (migration 9), and signs in with it.
    let row = entity::user::Entity::find_by_id(user_id)
        .one(&app.db().await)
        .await
        .unwrap()
        .unwrap();
    assert!(row.has_password);
    assert_no_errors(&app.login(&email, PASSWORD).await);
    // The reset link emailed before the upgrade works, once.
    let reset = "mutation($i: ResetPasswordInput!) { resetPassword(input: $i) { accessToken } }";
    let new_password =
        json!({ "i": { "token": "old-reset-link", "newPassword": "a new passphrase" } });
    assert_no_errors(&app.graphql(reset, new_password.clone()).await);
    assert_eq!(
        error_code(&app.graphql(reset, new_password).await),
        "BAD_USER_INPUT"
    );
}

/// How many migrations come before the directory's indexes.
fn before_directory_indexes() -> u32 {
    let position = migration::Migrator::migrations()
        .iter()
        .position(|m| m.name() == "m20261212_000012_directory_indexes")
        .expect("the directory indexes migration is registered");
    u32::try_from(position).unwrap()
}

/// The names of the indexes of `table`, as the backend's catalogue lists them.
async fn indexes_of(db: &sea_orm::DatabaseConnection, table: &str) -> Vec<String> {
    use sea_orm::{ConnectionTrait, DbBackend, Statement};
    let backend = db.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => "SELECT indexname AS name FROM pg_indexes WHERE tablename = $1",
        DbBackend::MySql => {
            "SELECT DISTINCT INDEX_NAME AS name FROM information_schema.STATISTICS \
             WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?"
        }
        _ => "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ?",
    };
    db.query_all_raw(Statement::from_sql_and_values(backend, sql, [table.into()]))
        .await
        .unwrap()
        .iter()
        .map(|row| row.try_get::<String>("", "name").unwrap())
        .collect()
}

/// Users written by the previous release, then the directory's indexes: the migration
/// applies over existing rows, every index is there (the trigram index on PostgreSQL), and
/// the directory's searches and orderings answer the same as before.
#[tokio::test]
async fn the_directory_indexes_apply_over_existing_accounts() {
    let database = TestDatabase::create().await;
    let db = Database::connect(&database.url).await.unwrap();
    migration::Migrator::up(&db, Some(before_directory_indexes()))
        .await
        .unwrap();
    let now = Utc::now();
    for name in ["old-ann", "old-bob", "old-cy"] {
        insert_row(
            &db,
            "users",
            vec![
                ("id", Uuid::now_v7().into()),
                ("email", format!("{name}@example.com").into()),
                ("password_hash", "$argon2id$not-checked-here".into()),
                ("role", "user".into()),
                ("created_at", now.into()),
                ("updated_at", now.into()),
            ],
        )
        .await;
    }
    migration::Migrator::up(&db, None).await.unwrap();

    let users = indexes_of(&db, "users").await;
    assert!(
        users.contains(&"idx_users_email_id".to_owned()),
        "{users:?}"
    );
    let postgres = db.get_database_backend() == sea_orm::DbBackend::Postgres;
    assert_eq!(
        users.contains(&"idx_users_email_trgm".to_owned()),
        postgres,
        "a trigram index on PostgreSQL only: {users:?}"
    );
    let audit = indexes_of(&db, "audit_events").await;
    for name in [
        "idx_audit_events_actor_id_id",
        "idx_audit_events_subject_id_id",
        "idx_audit_events_kind_id",
    ] {
        assert!(audit.contains(&name.to_owned()), "{name}: {audit:?}");
    }
    assert!(
        indexes_of(&db, "sessions")
            .await
            .contains(&"idx_sessions_user_id_id".to_owned())
    );
    db.close().await.unwrap();

    let app = spawn_app_on(database).await;
    let admin = app.admin().await;
    let found = app
        .graphql_as(
            &admin.access(),
            r#"{ users(filter: {emailContains: "OLD-B"}, orderBy: {field: EMAIL, direction: DESC}) {
                totalCount edges { node { email } } } }"#,
            json!({}),
        )
        .await;
    assert_no_errors(&found);
    assert_eq!(found["data"]["users"]["totalCount"], 1);
    assert_eq!(
        found["data"]["users"]["edges"][0]["node"]["email"],
        "old-bob@example.com"
    );
}

/// Where `pg_trgm` cannot be created (here: a role without the right to create in the
/// database, as on managed services), the migration still applies, without the trigram
/// index, and `emailContains` still finds its users (by a scan).
#[tokio::test]
async fn the_directory_indexes_apply_where_pg_trgm_is_unavailable() {
    use sea_orm::ConnectionTrait;
    let database = TestDatabase::create().await;
    if !database.url.starts_with("postgres") {
        return; // the extension is PostgreSQL's
    }
    let db = Database::connect(&database.url).await.unwrap();
    migration::Migrator::up(&db, Some(before_directory_indexes()))
        .await
        .unwrap();
    let role = format!("r_{}", Uuid::new_v4().simple());
    db.execute_unprepared(&format!("CREATE ROLE {role} LOGIN"))
        .await
        .unwrap();
    // The role owns the tables (it may index them) but may not create in the database, so
    // `CREATE EXTENSION` (pg_trgm is a trusted extension) is refused.
    for table in ["users", "audit_events", "sessions", "seaql_migrations"] {
        db.execute_unprepared(&format!("ALTER TABLE {table} OWNER TO {role}"))
            .await
            .unwrap();
    }
    db.execute_unprepared(&format!("GRANT USAGE, CREATE ON SCHEMA public TO {role}"))
        .await
        .unwrap();
    let (scheme, rest) = database.url.split_once("://").unwrap();
    let as_role = format!("{scheme}://{role}@{}", rest.split_once('@').unwrap().1);
    let limited = Database::connect(&as_role).await.unwrap();
    let applied = migration::Migrator::up(&limited, None).await;
    limited.close().await.unwrap();
    let users = indexes_of(&db, "users").await;
    db.execute_unprepared(&format!(
        "REASSIGN OWNED BY {role} TO CURRENT_USER; DROP OWNED BY {role}"
    ))
    .await
    .unwrap();
    db.execute_unprepared(&format!("DROP ROLE {role}"))
        .await
        .unwrap();
    applied.expect("the migration applies without pg_trgm");
    assert!(
        users.contains(&"idx_users_email_id".to_owned()),
        "{users:?}"
    );
    assert!(
        !users.contains(&"idx_users_email_trgm".to_owned()),
        "{users:?}"
    );
    let extension = db
        .query_one_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            "SELECT count(*) AS n FROM pg_extension WHERE extname = 'pg_trgm'",
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get::<i64>("", "n")
        .unwrap();
    assert_eq!(extension, 0, "the extension was refused");
    db.close().await.unwrap();

    let app = spawn_app_on(database).await;
    let admin = app.admin().await;
    let found = app
        .graphql_as(
            &admin.access(),
            "query($part: String) { users(filter: {emailContains: $part}) { totalCount } }",
            json!({ "part": admin.user.email[5..17].to_uppercase() }),
        )
        .await;
    assert_no_errors(&found);
    assert_eq!(found["data"]["users"]["totalCount"], 1);
}
