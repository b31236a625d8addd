//! `spawn_app()`: the real server on an ephemeral port with a fresh database, and a small
//! client for it.

pub mod passkey;
mod responses;
mod rows;

pub use responses::{AuthPayload, Connection, Role, Session, User, data, only_error};
pub use rows::insert_row;

use secrecy::ExposeSecret;
use std::sync::OnceLock;
use std::time::Duration;

use std::sync::Arc;

use authgraph::app::Application;
use authgraph::application::Services;
use authgraph::application::ports::OutgoingEmail;
use authgraph::config::{AppEnv, Config, MailerKind};
use authgraph::infrastructure::audit::AuditWriter;
use authgraph::infrastructure::clock::AdvancingClock;
use authgraph::infrastructure::deferred::DeferredQueue;
use authgraph::infrastructure::mail::LogMailer;
use authgraph::infrastructure::persistence::OverlapGate;
use authgraph::infrastructure::persistence::QueryCounter;
use authgraph::infrastructure::security::{Argon2Hasher, key_id};
use reqwest::StatusCode;
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use sea_orm::{ConnectionTrait, Database};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use uuid::Uuid;

/// The JWT secret of every test app, so tests can forge tokens.
pub const JWT_SECRET: &str = "test-secret-that-is-long-enough-for-hs256!";
/// The key that encrypts TOTP secrets in every test app (so none writes a key file).
pub const MFA_ENCRYPTION_KEY: &str = "q3d5xX1JQ0b9Cw4m7V2e8kYtZlR6uNpHsGfJ0aIoBcM=";
pub const PASSWORD: &str = "correct horse battery staple";

pub struct TestApp {
    pub address: String,
    /// Where `/metrics` listens, when metrics are on.
    pub metrics_address: Option<String>,
    pub config: Config,
    pub client: reqwest::Client,
    /// Every email the app "sent" (unless a test chose SMTP).
    pub mailbox: Option<Arc<LogMailer>>,
    /// The app's audit writer, to wait for events to be stored.
    pub audit: Arc<AuditWriter>,
    /// Counts the statements the app sends to its database.
    pub queries: QueryCounter,
    /// The app's services, to arrange what only the operator can (an administrator).
    pub services: Services,
    /// The app's password hasher, to count hashes.
    pub hasher: Arc<Argon2Hasher>,
    /// The app's deferred work (emails with links), to wait until it is done.
    pub deferred: Arc<DeferredQueue>,
    /// The app's clock: a test advances it instead of sleeping until something expires.
    pub clock: Arc<AdvancingClock>,
    /// Holds a request's transaction until a racing request's is under way.
    overlap: OverlapGate,
    /// The test's own connection, once `db()` has opened it.
    own_db: tokio::sync::OnceCell<sea_orm::DatabaseConnection>,
    shutdown: Option<oneshot::Sender<()>>,
    _database: Option<TestDatabase>,
}

/// The app with the default test configuration.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// The app after `configure` has adjusted the test configuration.
pub async fn spawn_app_with(configure: impl FnOnce(&mut Config)) -> TestApp {
    init_test_logging();
    let database = TestDatabase::migrated().await;
    let config = test_config(&database.url, configure);
    start(config, Some(database), Arc::default()).await
}

/// The app with `config` on `database` (a test that arranged both itself).
pub async fn spawn_on(config: Config, database: TestDatabase) -> TestApp {
    init_test_logging();
    start(config, Some(database), Arc::default()).await
}

/// The configuration of a test app on `database_url`.
pub fn test_config(database_url: &str, configure: impl FnOnce(&mut Config)) -> Config {
    let mut config = Config::from_env().expect("the test environment parses as config");
    config.app_env = Some(AppEnv::Development);
    config.host = "127.0.0.1".parse().unwrap();
    config.port = 0;
    config.database.database_url = database_url.into();
    config.tokens.jwt_secret = Some(JWT_SECRET.into());
    config.mfa.mfa_encryption_key = Some(MFA_ENCRYPTION_KEY.into());
    config.tokens.jwt_issuer = "authgraph".into();
    config.tokens.jwt_audience = "authgraph".into();
    config.tokens.access_token_ttl = std::time::Duration::from_secs(900);
    // The cheapest argon2id there is: hashing cost is the subject of only a few tests, and
    // they ask for `production_hashing`.
    config.hashing.argon2_memory_kib = 8;
    config.hashing.argon2_iterations = 1;
    config.hashing.argon2_parallelism = 1;
    config.hashing.password_hash_workers = Some(2);
    config.hashing.password_hash_queue = 64;
    config.mail.mailer = Some(MailerKind::Log);
    // Limits are tested on their own (limits.rs); elsewhere they would only get in the way.
    config.rate_limits.rate_limits = false;
    config.links.public_url = "https://app.example.com".into();
    config.telemetry.metrics_addr = "127.0.0.1:0".parse().unwrap();
    configure(&mut config);
    config
}

/// The production argon2id parameters (the defaults: m = 19456 KiB, t = 2, p = 1), for the
/// tests whose subject is what hashing costs: a queue that fills, a hash being replaced.
pub fn production_hashing(config: &mut Config) {
    config.hashing.argon2_memory_kib = 19_456;
    config.hashing.argon2_iterations = 2;
    config.hashing.argon2_parallelism = 1;
}

/// The app on a database a test prepared (an older schema to upgrade, say).
pub async fn spawn_app_on(database: TestDatabase) -> TestApp {
    init_test_logging();
    let config = test_config(&database.url, |_| {});
    start(config, Some(database), Arc::default()).await
}

async fn start(
    config: Config,
    database: Option<TestDatabase>,
    clock: Arc<AdvancingClock>,
) -> TestApp {
    let app = Application::build_with_clock(&config, clock.clone())
        .await
        .expect("the app starts");
    let address = format!("http://{}", app.local_addr().unwrap());
    let metrics_address = app.metrics_addr().map(|a| format!("http://{a}"));
    let core = app.core();
    let mailbox = core.mailbox.clone();
    let audit = core.audit.clone();
    let services = core.services.clone();
    let hasher = core.hasher.clone();
    let deferred = core.deferred.clone();
    let queries = core.queries.clone();
    let overlap = core.overlap.clone();
    let (shutdown, stop) = oneshot::channel();
    tokio::spawn(app.run_until(async {
        let _ = stop.await;
    }));
    TestApp {
        address,
        metrics_address,
        config,
        client: reqwest::Client::new(),
        mailbox,
        audit,
        queries,
        services,
        hasher,
        deferred,
        clock,
        overlap,
        own_db: tokio::sync::OnceCell::new(),
        shutdown: Some(shutdown),
        _database: database,
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

impl TestApp {
    /// Another instance of the service on the same database, configuration and clock, as
    /// behind a load balancer.
    pub async fn another_instance(&self) -> TestApp {
        self.another_instance_with(|_| {}).await
    }

    /// The same, after `configure` has changed its configuration (a new release's settings).
    pub async fn another_instance_with(&self, configure: impl FnOnce(&mut Config)) -> TestApp {
        let mut config = self.config.clone();
        configure(&mut config);
        start(config, None, self.clock.clone()).await
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// The metrics listener's `/metrics`.
    pub fn metrics_url(&self) -> String {
        let address = self.metrics_address.as_ref().expect("metrics are on");
        format!("{address}/metrics")
    }

    /// What `/metrics` says now.
    pub async fn metrics_text(&self) -> String {
        let response = self.client.get(self.metrics_url()).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        response.text().await.unwrap()
    }

    /// POSTs a GraphQL request and returns the JSON body; the status must be 200.
    pub async fn graphql(&self, query: &str, variables: Value) -> Value {
        self.graphql_with(None, query, variables).await
    }

    /// The same, with `Authorization: Bearer <token>`.
    pub async fn graphql_as(&self, token: &str, query: &str, variables: Value) -> Value {
        self.graphql_with(Some(&format!("Bearer {token}")), query, variables)
            .await
    }

    /// The same, with any `Authorization` header value.
    pub async fn graphql_with(
        &self,
        authorization: Option<&str>,
        query: &str,
        variables: Value,
    ) -> Value {
        let response = self.graphql_response(authorization, query, variables).await;
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.expect("a JSON body")
    }

    /// POSTs a GraphQL request and returns the HTTP response, whatever its status.
    pub async fn graphql_response(
        &self,
        authorization: Option<&str>,
        query: &str,
        variables: Value,
    ) -> reqwest::Response {
        let mut request = self
            .client
            .post(self.url("/graphql"))
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        request.send().await.expect("the server answers")
    }

    /// POSTs `body` to `/graphql` as it is, JSON or not (a malformed document, bytes that are
    /// not UTF-8), with `Content-Type: application/json` and `Accept: accept`; returns the
    /// status, the answer's `Content-Type` (empty when it has none) and its JSON. A server that
    /// hangs fails the test instead of stalling it.
    pub async fn post_raw(
        &self,
        body: impl Into<reqwest::Body>,
        accept: &str,
    ) -> (StatusCode, String, Value) {
        let response = self
            .client
            .post(self.url("/graphql"))
            .header(CONTENT_TYPE, "application/json")
            .header(ACCEPT, accept)
            .timeout(Duration::from_secs(120))
            .body(body)
            .send()
            .await
            .expect("the server answers");
        let status = response.status();
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .map(|value| value.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let text = response.text().await.unwrap();
        let json = serde_json::from_str(&text).unwrap_or_else(|_| {
            panic!(
                "a JSON answer, got {status}: {}",
                &text[..text.len().min(300)]
            )
        });
        (status, content_type, json)
    }

    /// [`post_raw`](Self::post_raw) asking for `application/graphql-response+json`; returns
    /// the status and the JSON answer.
    pub async fn post_body(&self, body: impl Into<reqwest::Body>) -> (StatusCode, Value) {
        let (status, _, json) = self
            .post_raw(body, "application/graphql-response+json")
            .await;
        (status, json)
    }

    /// [`post_body`](Self::post_body) with a JSON value as the body.
    pub async fn post_json(&self, body: &Value) -> (StatusCode, Value) {
        self.post_body(body.to_string()).await
    }

    /// Registers an account; returns the `AuthPayload`.
    pub async fn register(&self, email: &str, password: &str) -> AuthPayload {
        let body = self
            .graphql(
                REGISTER,
                json!({ "input": { "email": email, "password": password } }),
            )
            .await;
        data(&body, "register")
    }

    /// Signs in; returns the whole response body.
    pub async fn login(&self, email: &str, password: &str) -> Value {
        self.graphql(
            LOGIN,
            json!({ "input": { "email": email, "password": password } }),
        )
        .await
    }

    /// Signs in, which must succeed; returns the `AuthPayload`.
    pub async fn sign_in(&self, email: &str, password: &str) -> AuthPayload {
        data(&self.login(email, password).await, "login")
    }

    /// Exchanges a refresh token; returns the whole response body.
    pub async fn refresh(&self, refresh_token: &str) -> Value {
        self.graphql(
            REFRESH,
            json!({ "input": { "refreshToken": refresh_token } }),
        )
        .await
    }

    /// Exchanges a refresh token, which must succeed; returns the new `AuthPayload`.
    pub async fn refreshed(&self, refresh_token: &str) -> AuthPayload {
        data(&self.refresh(refresh_token).await, "refreshToken")
    }

    /// Signs out a session by its refresh token; returns the whole response body.
    pub async fn logout(&self, refresh_token: &str) -> Value {
        self.graphql(
            "mutation($input: LogoutInput!) { logout(input: $input) }",
            json!({ "input": { "refreshToken": refresh_token } }),
        )
        .await
    }

    /// The emails sent to `to`, oldest first, once the emails queued so far are sent.
    pub async fn emails_to(&self, to: &str) -> Vec<OutgoingEmail> {
        self.deferred.idle().await;
        self.mailbox
            .as_ref()
            .expect("this app writes emails to the log")
            .messages()
            .into_iter()
            .filter(|email| email.to == to)
            .collect()
    }

    /// The token of the link in the last email to `to` whose link goes to `path`.
    pub async fn link_token(&self, to: &str, path: &str) -> String {
        let prefix = format!("https://app.example.com/{path}?token=");
        self.emails_to(to)
            .await
            .iter()
            .rev()
            .find_map(|email| {
                let start = email.text.find(&prefix)? + prefix.len();
                email.text[start..]
                    .split_whitespace()
                    .next()
                    .map(str::to_owned)
            })
            .unwrap_or_else(|| panic!("no email to {to} links to /{path}"))
    }

    /// Registers an account and makes it an administrator; returns the `AuthPayload` of a
    /// sign-in after the promotion.
    pub async fn admin(&self) -> AuthPayload {
        let email = unique_email();
        self.register(&email, PASSWORD).await;
        let promoted = self
            .services
            .users
            .make_admin(
                authgraph::domain::Email::parse(&email).unwrap(),
                authgraph::domain::Password::new(PASSWORD.into()).unwrap(),
            )
            .await
            .unwrap();
        assert!(matches!(
            promoted,
            authgraph::application::AdminMade::Promoted { .. }
        ));
        // Promotion ends the account's sessions: sign in again.
        self.sign_in(&email, PASSWORD).await
    }

    /// Waits until every audit event recorded so far is stored.
    pub async fn flush_audit(&self) {
        self.audit.flush().await;
    }

    /// A connection of the test's own to the app's database, to arrange what no API does.
    /// Opened once: a new connection to a server costs more than the statements a test sends.
    pub async fn db(&self) -> sea_orm::DatabaseConnection {
        self.own_db
            .get_or_init(|| async {
                Database::connect(self.config.database.database_url.expose_secret())
                    .await
                    .unwrap()
            })
            .await
            .clone()
    }

    /// Runs the requests of a race so that they overlap for sure: the first transaction to
    /// finish is held until another request's is under way; fails if none came.
    pub async fn race<T>(&self, requests: impl std::future::Future<Output = T>) -> T {
        self.overlap.arm();
        let outcome = requests.await;
        assert!(self.overlap.finish(), "the racing requests did not overlap");
        outcome
    }

    /// `me` with a bearer token; returns the whole response body.
    pub async fn me(&self, token: &str) -> Value {
        self.graphql_as(token, ME, json!({})).await
    }

    /// `me` with a bearer token, which must succeed; returns the user.
    pub async fn current_user(&self, token: &str) -> User {
        data(&self.me(token).await, "me")
    }
}

/// The fields of a user the helpers' operations select: what [`User`] reads.
macro_rules! user_fields {
    () => {
        "{ id email emailVerified displayName role createdAt updatedAt }"
    };
}

/// The fields of an `AuthPayload` the helpers' operations select: what [`AuthPayload`] reads.
macro_rules! auth_payload {
    () => {
        concat!(
            "{ accessToken refreshToken tokenType expiresIn user ",
            user_fields!(),
            " }"
        )
    };
}

pub const REGISTER: &str = concat!(
    "mutation Register($input: RegisterInput!) { register(input: $input) ",
    auth_payload!(),
    " }"
);

pub const LOGIN: &str = concat!(
    "mutation Login($input: LoginInput!) { login(input: $input) ",
    auth_payload!(),
    " }"
);

pub const REFRESH: &str = concat!(
    "mutation Refresh($input: RefreshTokenInput!) { refreshToken(input: $input) ",
    auth_payload!(),
    " }"
);

pub const ME: &str = concat!("query Me { me ", user_fields!(), " }");

pub fn assert_no_errors(body: &Value) {
    assert!(body.get("errors").is_none(), "unexpected errors: {body:#}");
}

/// A string field of `body.data`, by path.
pub fn data_str<'a>(body: &'a Value, path: &[&str]) -> &'a str {
    path.iter()
        .fold(&body["data"], |value, key| &value[*key])
        .as_str()
        .unwrap_or_else(|| panic!("no string at data.{}: {body:#}", path.join(".")))
}

/// The `extensions.code` of the only error in `body`.
pub fn error_code(body: &Value) -> &str {
    let errors = body["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("expected errors: {body:#}"));
    assert_eq!(errors.len(), 1, "expected one error: {body:#}");
    errors[0]["extensions"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("error without a code: {body:#}"))
}

/// The value of one series (a metric's name, with its labels if any) in `/metrics` text.
pub fn metric_value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| {
            line.strip_prefix(series)?
                .strip_prefix(' ')?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no {series} in:\n{text}"))
}

/// A fresh, unique email.
pub fn unique_email() -> String {
    format!("user-{}@example.com", Uuid::new_v4().simple())
}

fn init_test_logging() {
    static INIT: OnceLock<()> = OnceLock::new();
    INIT.get_or_init(|| {
        if std::env::var_os("TEST_LOG").is_some() {
            std::mem::forget(authgraph::telemetry::init(
                authgraph::config::LogFormat::Pretty,
            ));
        }
    });
}

/// A database of the test's own: a file in a temporary folder for SQLite, or a new database
/// on the server `TEST_DATABASE_URL` names, dropped when the test ends.
pub struct TestDatabase {
    pub url: String,
    server: Option<ServerDatabase>,
    _dir: Option<tempfile::TempDir>,
}

struct ServerDatabase {
    admin_url: String,
    drop_statement: String,
    /// The database's name on MySQL, whose `DROP DATABASE` has no `FORCE`.
    mysql_name: Option<String>,
}

/// Ends the app's connections to a MySQL database before it is dropped, as PostgreSQL's
/// `DROP DATABASE … WITH (FORCE)` does. Drop blocks the test's runtime, so a connection the
/// app left inside a transaction (a deferred job's, say) would hold its metadata lock, and
/// `DROP DATABASE` would wait for it, for as long as the server's `lock_wait_timeout`.
async fn end_mysql_connections(admin: &sea_orm::DatabaseConnection, name: &str) {
    use sea_orm::{DbBackend, Statement};
    let Ok(rows) = admin
        .query_all_raw(Statement::from_sql_and_values(
            DbBackend::MySql,
            "SELECT ID AS id FROM information_schema.PROCESSLIST WHERE DB = ?",
            [name.into()],
        ))
        .await
    else {
        return;
    };
    for row in rows {
        if let Ok(id) = row.try_get::<i64>("", "id") {
            let _ = admin.execute_unprepared(&format!("KILL {id}")).await;
        }
    }
}

impl TestDatabase {
    /// A fresh, empty database.
    pub async fn create() -> Self {
        match std::env::var("TEST_DATABASE_URL")
            .ok()
            .filter(|u| !u.is_empty())
        {
            None => {
                let dir = tempfile::tempdir().expect("a temporary folder");
                let url = format!("sqlite://{}/test.db?mode=rwc", dir.path().display());
                Self {
                    url,
                    server: None,
                    _dir: Some(dir),
                }
            }
            Some(admin_url) => Self::on_server(without_tls_unless_asked(admin_url)).await,
        }
    }

    /// A fresh database with every migration applied. On PostgreSQL it is a copy of a
    /// template migrated once per migration set (`CREATE DATABASE … TEMPLATE`), which costs a
    /// file copy instead of the migrations' statements; elsewhere the app migrates it.
    pub async fn migrated() -> Self {
        match std::env::var("TEST_DATABASE_URL")
            .ok()
            .filter(|u| !u.is_empty())
        {
            Some(admin_url) if admin_url.starts_with("postgres") => {
                let admin_url = without_tls_unless_asked(admin_url);
                let template = postgres_template(&admin_url).await;
                Self::on_server_from(admin_url, Some(&template)).await
            }
            _ => Self::create().await,
        }
    }

    async fn on_server(admin_url: String) -> Self {
        Self::on_server_from(admin_url, None).await
    }

    async fn on_server_from(admin_url: String, template: Option<&str>) -> Self {
        let name = format!("t_{}", Uuid::new_v4().simple());
        let (create, drop_statement) = if admin_url.starts_with("postgres") {
            (
                match template {
                    Some(template) => format!(r#"CREATE DATABASE "{name}" TEMPLATE "{template}""#),
                    None => format!(r#"CREATE DATABASE "{name}""#),
                },
                format!(r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#),
            )
        } else if admin_url.starts_with("mysql") {
            (
                format!("CREATE DATABASE `{name}`"),
                format!("DROP DATABASE IF EXISTS `{name}`"),
            )
        } else {
            panic!("TEST_DATABASE_URL must be a postgres:// or mysql:// URL");
        };
        let admin = Database::connect(&admin_url)
            .await
            .expect("TEST_DATABASE_URL is reachable");
        admin
            .execute_unprepared(&create)
            .await
            .expect("a test database can be created");
        admin.close().await.ok();
        let url = replace_database(&admin_url, &name);
        Self {
            url,
            server: Some(ServerDatabase {
                mysql_name: admin_url.starts_with("mysql").then(|| name.clone()),
                admin_url,
                drop_statement,
            }),
            _dir: None,
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Some(server) = self.server.take() else {
            return;
        };
        // Drop runs inside the test's runtime; a runtime of its own on another thread can block.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.block_on(async {
                if let Ok(admin) = Database::connect(&server.admin_url).await {
                    if let Some(name) = &server.mysql_name {
                        end_mysql_connections(&admin, name).await;
                    }
                    let _ = admin.execute_unprepared(&server.drop_statement).await;
                    let _ = admin.close().await;
                }
            });
        })
        .join();
    }
}

/// The name of a PostgreSQL database holding every migration of this build and nothing
/// else, made if missing. Its name is a hash of the migrations (names and sources), so a build
/// with other migrations gets its own; test processes (nextest runs one per test) make it once between
/// them, under an advisory lock, and it is built under a temporary name and renamed when
/// complete, so a process that died halfway never leaves a half-migrated template.
async fn postgres_template(admin_url: &str) -> String {
    use migration::MigratorTrait;
    use sea_orm::{DbBackend, Statement, TransactionTrait};
    use sha2::{Digest, Sha256};
    // The migrations' names and their sources: a migration edited before it ships (or by
    // another branch sharing the server) gets a template of its own, never a stale one.
    let mut hasher = Sha256::new();
    for migration in migration::Migrator::migrations() {
        hasher.update(migration.name().as_bytes());
    }
    let sources = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migration/src");
    let mut files: Vec<_> = std::fs::read_dir(&sources)
        .expect("the migrations' sources")
        .map(|entry| entry.expect("a migration source").path())
        .collect();
    files.sort();
    for file in files {
        hasher.update(std::fs::read(&file).expect("a migration source"));
    }
    let digest = hasher.finalize();
    let template = format!("authgraph_template_{}", &format!("{digest:x}")[..16]);
    let admin = Database::connect(admin_url)
        .await
        .expect("TEST_DATABASE_URL is reachable");
    let exists = |admin: sea_orm::DatabaseConnection, name: String| async move {
        admin
            .query_one_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT 1 AS found FROM pg_database WHERE datname = $1",
                [name.into()],
            ))
            .await
            .expect("pg_database answers")
            .is_some()
    };
    if exists(admin.clone(), template.clone()).await {
        admin.close().await.ok();
        return template;
    }
    // One builder at a time; the others wait, then find it made.
    let lock = admin.begin().await.expect("a transaction");
    lock.execute_unprepared("SELECT pg_advisory_xact_lock(7366726371)")
        .await
        .expect("the template lock");
    if !exists(admin.clone(), template.clone()).await {
        let building = format!("{template}_building");
        admin
            .execute_unprepared(&format!(
                r#"DROP DATABASE IF EXISTS "{building}" WITH (FORCE)"#
            ))
            .await
            .expect("a stale template can be dropped");
        admin
            .execute_unprepared(&format!(r#"CREATE DATABASE "{building}""#))
            .await
            .expect("a template database can be created");
        let db = Database::connect(replace_database(admin_url, &building))
            .await
            .expect("the template database answers");
        migration::Migrator::up(&db, None)
            .await
            .expect("the migrations apply to the template");
        db.close().await.expect("the template's connections close");
        admin
            .execute_unprepared(&format!(
                r#"ALTER DATABASE "{building}" RENAME TO "{template}""#
            ))
            .await
            .expect("the template can be renamed");
    }
    lock.commit().await.expect("the template lock is released");
    admin.close().await.ok();
    template
}

/// A PostgreSQL URL that names no `sslmode` gets `sslmode=disable`. The server on these
/// machines offers TLS, and each new connection's handshake (the test's, the app's pool, the
/// migration lock's, the drop's) cost more than the statements of a short test; what the
/// tests check does not depend on it. A URL that asks for TLS keeps it.
fn without_tls_unless_asked(url: String) -> String {
    if !url.starts_with("postgres") || url.contains("sslmode=") {
        return url;
    }
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}sslmode=disable")
}

/// `scheme://user@host:port/db?params` with the database name replaced.
fn replace_database(url: &str, name: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let base = match base[scheme_end..].find('/') {
        Some(slash) => &base[..scheme_end + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{base}/{name}?{query}"),
        None => format!("{base}/{name}"),
    }
}

/// A JWT with whatever claims a test needs, signed with `secret`, that names the test app's
/// current key as the one that signed it.
pub fn forge_token(claims: &Value, secret: &[u8]) -> String {
    sign_token(claims, secret, &key_id(JWT_SECRET.as_bytes()))
}

/// A JWT signed with `secret` under the key id `kid`.
pub fn sign_token(claims: &Value, secret: &[u8], kid: &str) -> String {
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(
        &header,
        claims,
        &jsonwebtoken::EncodingKey::from_secret(secret),
    )
    .unwrap()
}

/// The claims of a token, read without checking it.
pub fn token_claims(token: &str) -> Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).expect("a JWT");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// The database the suite runs on, from `TEST_DATABASE_URL` (SQLite when unset).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Backend {
    Sqlite,
    Postgres,
    MySql,
}

impl Backend {
    pub fn current() -> Self {
        let url = std::env::var("TEST_DATABASE_URL").unwrap_or_default();
        if url.starts_with("postgres") {
            Backend::Postgres
        } else if url.starts_with("mysql") {
            Backend::MySql
        } else {
            Backend::Sqlite
        }
    }

    /// The name `scripts/test.sh` uses in `TEST_SUITE_BACKENDS`.
    fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
            Backend::MySql => "mysql",
        }
    }
}

/// Whether a test must stop here because `what` (a server it needs) is missing. A test that
/// merely returned would be reported as passed: under `REQUIRE_ALL_DATABASES=1` (CI) a missing
/// dependency fails the test instead, and otherwise the skip is recorded in the file
/// `TEST_SKIPS_FILE` names, so `scripts/test.sh` counts it as skipped, not passed.
///
/// `if skip_unless(available, "Redis (TEST_REDIS_URL)") { return; }`
pub fn skip_unless(available: bool, what: &str) -> bool {
    if available {
        return false;
    }
    if std::env::var("REQUIRE_ALL_DATABASES").as_deref() == Ok("1") {
        panic!("{what} is missing, and REQUIRE_ALL_DATABASES=1 forbids skipping this test");
    }
    record_not_run("skipped", what);
    true
}

/// Whether a test that only means something on `backends` must stop here. When
/// `scripts/test.sh` also runs the suite on one of them (`TEST_SUITE_BACKENDS`), the test runs
/// there and is left out of this pass; otherwise it is a skip, as in [`skip_unless`].
pub fn skip_unless_backend(backends: &[Backend], what: &str) -> bool {
    if backends.contains(&Backend::current()) {
        return false;
    }
    let later = std::env::var("TEST_SUITE_BACKENDS").unwrap_or_default();
    if backends
        .iter()
        .any(|b| later.split_whitespace().any(|name| name == b.name()))
    {
        record_not_run("elsewhere", what);
        return true;
    }
    skip_unless(false, what)
}

/// Notes a test that returned without running, for `scripts/test.sh` to take out of the
/// passed ones: a line `kind<TAB>test<TAB>what` in `TEST_SKIPS_FILE`.
fn record_not_run(kind: &str, what: &str) {
    use std::io::Write;
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("?");
    eprintln!("{kind}: {test}: needs {what}");
    let Some(path) = std::env::var_os("TEST_SKIPS_FILE").filter(|p| !p.is_empty()) else {
        return;
    };
    // One short write in append mode, so tests in parallel processes do not interleave lines.
    let line = format!("{kind}\t{test}\t{what}\n");
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut file| file.write_all(line.as_bytes()))
        .expect("TEST_SKIPS_FILE can be written");
}

/// Whether something answers at the `host:port` of `url` (default port `port`), so a test can
/// tell a server that is down from one that misbehaves.
pub fn answers(url: &str, port: u16) -> bool {
    use std::net::ToSocketAddrs;
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, rest)| rest);
    let host_port = rest.split(['/', '?']).next().unwrap_or_default();
    let address = if host_port
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        host_port.to_owned()
    } else {
        format!("{host_port}:{port}")
    };
    address.to_socket_addrs().is_ok_and(|mut addrs| {
        addrs.any(|a| {
            std::net::TcpStream::connect_timeout(&a, std::time::Duration::from_secs(2)).is_ok()
        })
    })
}
