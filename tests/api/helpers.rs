//! `spawn_app()`: the real server on an ephemeral port with a fresh database, and a small
//! client for it.

use std::sync::OnceLock;

use authgraph::app::Application;
use authgraph::config::{AppEnv, Config};
use reqwest::StatusCode;
use sea_orm::{ConnectionTrait, Database};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use uuid::Uuid;

/// The JWT secret of every test app, so tests can forge tokens.
pub const JWT_SECRET: &str = "test-secret-that-is-long-enough-for-hs256!";
pub const PASSWORD: &str = "correct horse battery staple";

pub struct TestApp {
    pub address: String,
    pub config: Config,
    pub client: reqwest::Client,
    shutdown: Option<oneshot::Sender<()>>,
    _database: TestDatabase,
}

/// The app with the default test configuration.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// The app after `configure` has adjusted the test configuration.
pub async fn spawn_app_with(configure: impl FnOnce(&mut Config)) -> TestApp {
    init_test_logging();
    let database = TestDatabase::create().await;
    let mut config = Config::from_env().expect("the test environment parses as config");
    config.app_env = AppEnv::Development;
    config.host = "127.0.0.1".parse().unwrap();
    config.port = 0;
    config.database_url = database.url.clone();
    config.jwt_secret = Some(JWT_SECRET.to_owned());
    config.jwt_issuer = "authgraph".into();
    config.jwt_audience = "authgraph".into();
    config.access_token_ttl = std::time::Duration::from_secs(900);
    config.argon2_memory_kib = 19_456;
    config.argon2_iterations = 2;
    config.argon2_parallelism = 1;
    config.password_hash_workers = Some(2);
    config.password_hash_queue = 64;
    configure(&mut config);

    let app = Application::build(&config).await.expect("the app starts");
    let address = format!("http://{}", app.local_addr().unwrap());
    let (shutdown, stop) = oneshot::channel();
    tokio::spawn(app.run_until(async {
        let _ = stop.await;
    }));
    TestApp {
        address,
        config,
        client: reqwest::Client::new(),
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
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
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
        let mut request = self
            .client
            .post(self.url("/graphql"))
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        let response = request.send().await.expect("the server answers");
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.expect("a JSON body")
    }

    /// Registers an account; returns the `AuthPayload`.
    pub async fn register(&self, email: &str, password: &str) -> Value {
        let body = self
            .graphql(
                REGISTER,
                json!({ "input": { "email": email, "password": password } }),
            )
            .await;
        assert_no_errors(&body);
        body["data"]["register"].clone()
    }

    /// Signs in; returns the whole response body.
    pub async fn login(&self, email: &str, password: &str) -> Value {
        self.graphql(
            LOGIN,
            json!({ "input": { "email": email, "password": password } }),
        )
        .await
    }

    /// `me` with a bearer token; returns the whole response body.
    pub async fn me(&self, token: &str) -> Value {
        self.graphql_as(token, ME, json!({})).await
    }
}

pub const REGISTER: &str = "mutation Register($input: RegisterInput!) {
  register(input: $input) {
    accessToken refreshToken tokenType expiresIn
    user { id email displayName role createdAt updatedAt }
  }
}";

pub const LOGIN: &str = "mutation Login($input: LoginInput!) {
  login(input: $input) {
    accessToken refreshToken tokenType expiresIn
    user { id email }
  }
}";

pub const ME: &str = "query Me { me { id email displayName role createdAt updatedAt } }";

pub fn assert_no_errors(body: &Value) {
    assert!(body.get("errors").is_none(), "unexpected errors: {body:#}");
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

/// A fresh, unique email.
pub fn unique_email() -> String {
    format!("user-{}@example.com", Uuid::new_v4().simple())
}

fn init_test_logging() {
    static INIT: OnceLock<()> = OnceLock::new();
    INIT.get_or_init(|| {
        if std::env::var_os("TEST_LOG").is_some() {
            authgraph::telemetry::init(authgraph::config::LogFormat::Pretty);
        }
    });
}

/// A database of the test's own: a file in a temporary folder for SQLite, or a new database
/// on the server `TEST_DATABASE_URL` names, dropped when the test ends.
struct TestDatabase {
    url: String,
    server: Option<ServerDatabase>,
    _dir: Option<tempfile::TempDir>,
}

struct ServerDatabase {
    admin_url: String,
    drop_statement: String,
}

impl TestDatabase {
    async fn create() -> Self {
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
            Some(admin_url) => Self::on_server(admin_url).await,
        }
    }

    async fn on_server(admin_url: String) -> Self {
        let name = format!("t_{}", Uuid::new_v4().simple());
        let (create, drop_statement) = if admin_url.starts_with("postgres") {
            (
                format!(r#"CREATE DATABASE "{name}""#),
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
                    let _ = admin.execute_unprepared(&server.drop_statement).await;
                    let _ = admin.close().await;
                }
            });
        })
        .join();
    }
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

/// A signed JWT with the test secret and whatever claims a test needs.
pub fn forge_token(claims: &Value, secret: &[u8]) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
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
