//! Typed configuration, read once at startup from environment variables (and an optional
//! `.env`), each also settable as a command-line flag. Nothing else reads the environment.
//! What production refuses is in `production.rs`.

mod production;

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};
use ipnet::IpNet;
use secrecy::{ExposeSecret, SecretString};

use crate::application::ports::Quota;
use crate::application::{Lockout, ThrottlePolicy};
use crate::infrastructure::persistence::{DatabaseSettings, sqlite_file};
use crate::infrastructure::security::{HashPriority, HashingSettings, JwtAlgorithm};
use crate::interfaces::http::{
    CookieSameSite, CookieSettings, CorsPolicy, ForwardedHeader, HttpSettings, TrustedProxies,
    parse_network,
};

/// Whether the service runs for a developer or for real users.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AppEnv {
    /// For a developer's machine: a missing JWT secret or MFA key is generated and kept on
    /// disk.
    Development,
    /// For real users: every secret must come from the environment.
    Production,
}

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable, for a terminal.
    Pretty,
    /// One JSON object per line, for a log pipeline.
    Json,
}

/// How email leaves the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MailerKind {
    /// Through the SMTP server of SMTP_URL.
    Smtp,
    /// Into the log (links included): for development only.
    Log,
}

/// Where rate-limit counters live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RateLimitStore {
    /// In this process: exact for one instance.
    Memory,
    /// In Redis: shared by every instance.
    Redis,
}

/// A setting that holds a secret (a password in a URL, a signing key): never shown by
/// `--help` or `Debug`, read only through `expose_secret`.
fn secret(value: &str) -> Result<SecretString, std::convert::Infallible> {
    Ok(value.into())
}

/// A rate limit as configured: `count/period` (`30/1m`, `3/1h`) or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaSetting(pub Option<Quota>);

impl std::str::FromStr for QuotaSetting {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.trim().eq_ignore_ascii_case("off") {
            return Ok(Self(None));
        }
        let (count, period) = s
            .split_once('/')
            .ok_or_else(|| format!("`{s}` is not `count/period` (e.g. 30/1m) or `off`"))?;
        let burst: u32 = count
            .trim()
            .parse()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| format!("`{count}` is not a positive count"))?;
        let period = humantime::parse_duration(period.trim())
            .map_err(|e| format!("`{period}` is not a duration: {e}"))?;
        if period.is_zero() {
            return Err("the period must be longer than zero".into());
        }
        Ok(Self(Some(Quota { burst, period })))
    }
}

/// Everything the server can be told. docs/configuration.md lists the same.
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// `development` or `production`. Unset, the server runs in development on a loopback
    /// address only: listening anywhere else needs APP_ENV said out loud.
    #[arg(long, env = "APP_ENV", value_enum, global = true)]
    pub app_env: Option<AppEnv>,

    /// Address to listen on.
    #[arg(long, env = "HOST", default_value = "127.0.0.1", global = true)]
    pub host: IpAddr,

    /// Port to listen on; 0 picks a free one.
    #[arg(long, env = "PORT", default_value_t = 8000, global = true)]
    pub port: u16,

    /// Database URL: `sqlite://…`, `postgres://…` or `mysql://…`.
    #[arg(
        long,
        env = "DATABASE_URL",
        hide_env_values = true,
        default_value = "sqlite://data/authgraph.db?mode=rwc",
        value_parser = secret,
        global = true
    )]
    pub database_url: SecretString,

    /// Most connections the pool opens (PostgreSQL and MySQL; on SQLite the pool has one:
    /// SQLite takes one writer at a time, and its hot-path reads bypass the pool).
    #[arg(
        long,
        env = "DATABASE_MAX_CONNECTIONS",
        default_value_t = 10,
        global = true
    )]
    pub database_max_connections: u32,

    /// How long to wait for a database connection before failing a request.
    #[arg(long, env = "DATABASE_CONNECT_TIMEOUT", default_value = "5s", value_parser = humantime::parse_duration, global = true)]
    pub database_connect_timeout: Duration,

    /// On SQLite, read the session check and the lookup by email on the calling thread
    /// (`infrastructure/persistence/sqlite/`). `false` keeps the generic repositories, to
    /// compare the two.
    #[arg(long, env = "SQLITE_FAST_PATHS", default_value_t = true, value_parser = clap::builder::BoolishValueParser::new(), action = clap::ArgAction::Set, global = true)]
    pub sqlite_fast_paths: bool,

    /// Secret that signs access tokens with HS256 (≥ 32 bytes). With ES256 or EdDSA it only
    /// verifies the tokens it signed before the switch.
    #[arg(
        long,
        env = "JWT_SECRET",
        hide_env_values = true,
        value_parser = secret,
        global = true
    )]
    pub jwt_secret: Option<SecretString>,

    /// Retired signing secrets, comma-separated: tokens they signed still verify until they
    /// expire. Put the old JWT_SECRET here when you set a new one.
    #[arg(
        long,
        env = "JWT_PREVIOUS_SECRETS",
        value_delimiter = ',',
        hide_env_values = true,
        value_parser = secret,
        global = true
    )]
    pub jwt_previous_secrets: Vec<SecretString>,

    /// How access tokens are signed: `ES256` (the default for new deployments), `EdDSA`, or
    /// `HS256` (a shared secret; the default while JWT_SECRET is set and no private key is).
    #[arg(
        long,
        env = "JWT_ALGORITHM",
        value_enum,
        ignore_case = true,
        global = true
    )]
    pub jwt_algorithm: Option<JwtAlgorithm>,

    /// The private key that signs access tokens (ES256 or EdDSA), PEM (PKCS#8, or SEC1 for
    /// P-256). Required in production for those algorithms; development generates one.
    #[arg(
        long,
        env = "JWT_PRIVATE_KEY",
        hide_env_values = true,
        value_parser = secret,
        global = true
    )]
    pub jwt_private_key: Option<SecretString>,

    /// A file holding JWT_PRIVATE_KEY instead (a mounted secret).
    #[arg(long, env = "JWT_PRIVATE_KEY_FILE", global = true)]
    pub jwt_private_key_file: Option<std::path::PathBuf>,

    /// Retired signing keys whose tokens still verify (and stay published) until they expire:
    /// PEM blocks one after the other, or comma-separated paths of PEM files. Private or
    /// public keys.
    #[arg(
        long,
        env = "JWT_PREVIOUS_KEYS",
        hide_env_values = true,
        value_parser = secret,
        global = true
    )]
    pub jwt_previous_keys: Option<SecretString>,

    /// Access tokens whose ES256 or EdDSA signature is remembered once checked, so a session's
    /// later requests skip the check (bounded, least recently used out); 0 checks every time.
    #[arg(
        long,
        env = "JWT_VERIFIED_TOKENS",
        default_value_t = 10_000,
        global = true
    )]
    pub jwt_verified_tokens: usize,

    /// The URL this service is reached at (e.g. `https://auth.example.com`), for the
    /// discovery document's `jwks_uri`. Default: JWT_ISSUER when it is a URL, else the
    /// address the server listens on.
    #[arg(long, env = "API_URL", global = true)]
    pub api_url: Option<String>,

    /// Key that encrypts TOTP secrets at rest: 32 random bytes in base64 (`openssl rand
    /// -base64 32`). Required in production. Keep it: what it encrypted opens with no other key.
    #[arg(
        long,
        env = "MFA_ENCRYPTION_KEY",
        hide_env_values = true,
        value_parser = secret,
        global = true
    )]
    pub mfa_encryption_key: Option<SecretString>,

    /// Retired encryption keys, comma-separated: what they encrypted still opens. Put the old
    /// MFA_ENCRYPTION_KEY here when you set a new one, and keep it while secrets it sealed
    /// remain.
    #[arg(
        long,
        env = "MFA_PREVIOUS_ENCRYPTION_KEYS",
        value_delimiter = ',',
        hide_env_values = true,
        value_parser = secret,
        global = true
    )]
    pub mfa_previous_encryption_keys: Vec<SecretString>,

    /// `iss` claim of access tokens.
    #[arg(long, env = "JWT_ISSUER", default_value = "authgraph", global = true)]
    pub jwt_issuer: String,

    /// `aud` claim of access tokens.
    #[arg(long, env = "JWT_AUDIENCE", default_value = "authgraph", global = true)]
    pub jwt_audience: String,

    /// Lifetime of an access token.
    #[arg(long, env = "ACCESS_TOKEN_TTL", default_value = "15m", value_parser = humantime::parse_duration, global = true)]
    pub access_token_ttl: Duration,

    /// A session unused for this long ends (its refresh token stops working).
    #[arg(long, env = "REFRESH_TOKEN_TTL", default_value = "30days", value_parser = humantime::parse_duration, global = true)]
    pub refresh_token_ttl: Duration,

    /// No session outlives this, however often it is refreshed.
    #[arg(long, env = "SESSION_MAX_AGE", default_value = "90days", value_parser = humantime::parse_duration, global = true)]
    pub session_max_age: Duration,

    /// How long after a refresh token is exchanged it may be exchanged again (two tabs
    /// refreshing at once) before a reuse counts as theft and ends the session.
    #[arg(long, env = "REFRESH_TOKEN_REUSE_GRACE", default_value = "10s", value_parser = humantime::parse_duration, global = true)]
    pub refresh_token_reuse_grace: Duration,

    /// Audit events older than this are deleted (by the periodic cleanup).
    #[arg(long, env = "AUDIT_RETENTION", default_value = "365days", value_parser = humantime::parse_duration, global = true)]
    pub audit_retention: Duration,

    /// The IP address and user agent of audit events older than this are forgotten.
    #[arg(long, env = "AUDIT_CLIENT_RETENTION", default_value = "90days", value_parser = humantime::parse_duration, global = true)]
    pub audit_client_retention: Duration,

    /// How often ended sessions and spent email links are deleted.
    #[arg(long, env = "SESSION_CLEANUP_INTERVAL", default_value = "1h", value_parser = humantime::parse_duration, global = true)]
    pub session_cleanup_interval: Duration,

    /// Whether an account must confirm its email address before it can sign in.
    #[arg(long, env = "REQUIRE_VERIFIED_EMAIL", default_value_t = false, value_parser = clap::builder::BoolishValueParser::new(), action = clap::ArgAction::Set, global = true)]
    pub require_verified_email: bool,

    /// How recently a session must have proved its user (signed in, or `reauthenticate`)
    /// for a sensitive change: a second factor, the password, the email, deleting the account.
    #[arg(long, env = "REAUTHENTICATION_WINDOW", default_value = "10m", value_parser = humantime::parse_duration, global = true)]
    pub reauthentication_window: Duration,

    /// The name authenticator apps show for this service beside the account's email.
    #[arg(long, env = "MFA_ISSUER", default_value = "authgraph", global = true)]
    pub mfa_issuer: String,

    /// How long a sign-in whose password was right waits for its second-factor code.
    #[arg(long, env = "MFA_TICKET_TTL", default_value = "5m", value_parser = humantime::parse_duration, global = true)]
    pub mfa_ticket_ttl: Duration,

    /// Codes tried with one sign-in's ticket before it dies (the sign-in starts over).
    #[arg(long, env = "MFA_TICKET_ATTEMPTS", default_value_t = 5, global = true)]
    pub mfa_ticket_attempts: u32,

    /// How long a password-reset link works.
    #[arg(long, env = "PASSWORD_RESET_TTL", default_value = "30m", value_parser = humantime::parse_duration, global = true)]
    pub password_reset_ttl: Duration,

    /// How long an email-verification link works.
    #[arg(long, env = "EMAIL_VERIFICATION_TTL", default_value = "24h", value_parser = humantime::parse_duration, global = true)]
    pub email_verification_ttl: Duration,

    /// How long a recovery link (an email change's cancel link, a security notice's "this
    /// wasn't me") gives the account back to the address it was sent to.
    #[arg(long, env = "EMAIL_CHANGE_REVERT_WINDOW", default_value = "72h", value_parser = humantime::parse_duration, global = true)]
    pub email_change_revert_window: Duration,

    /// The frontend's base URL; emailed links are `{PUBLIC_URL}/reset-password?token=…` and
    /// `{PUBLIC_URL}/verify-email?token=…`.
    #[arg(
        long,
        env = "PUBLIC_URL",
        default_value = "http://localhost:3000",
        global = true
    )]
    pub public_url: String,

    /// How email is sent: `smtp` (needs SMTP_URL) or `log` (written to the log, for
    /// development). Default: `smtp` when SMTP_URL is set, else `log` in development.
    #[arg(long, env = "MAILER", value_enum, global = true)]
    pub mailer: Option<MailerKind>,

    /// SMTP server, e.g. `smtp://user:password@smtp.example.com:587?tls=required` or
    /// `smtps://user:password@smtp.example.com:465`.
    #[arg(
        long,
        env = "SMTP_URL",
        hide_env_values = true,
        value_parser = secret,
        global = true
    )]
    pub smtp_url: Option<SecretString>,

    /// Allow an SMTP_URL without TLS (a relay on a trusted network), which production
    /// otherwise refuses.
    #[arg(long, env = "SMTP_ALLOW_PLAINTEXT", default_value_t = false, value_parser = clap::builder::BoolishValueParser::new(), action = clap::ArgAction::Set, global = true)]
    pub smtp_allow_plaintext: bool,

    /// Sender of emails.
    #[arg(
        long,
        env = "MAIL_FROM",
        default_value = "authgraph <no-reply@localhost>",
        global = true
    )]
    pub mail_from: String,

    /// Emails (with their links) waiting to be sent; past it new ones are dropped, logged and
    /// counted, and never hold up a request.
    #[arg(long, env = "MAIL_QUEUE_SIZE", default_value_t = 1000, global = true)]
    pub mail_queue_size: usize,

    /// Emails sent at once.
    #[arg(long, env = "MAIL_SENDERS", default_value_t = 4, global = true)]
    pub mail_senders: usize,

    /// Largest request body accepted, in bytes.
    #[arg(long, env = "HTTP_MAX_BODY_BYTES", default_value_t = 1024 * 1024, global = true)]
    pub http_max_body_bytes: usize,

    /// Largest total size of a request's headers, in bytes.
    #[arg(long, env = "HTTP_MAX_HEADER_BYTES", default_value_t = 32 * 1024, global = true)]
    pub http_max_header_bytes: usize,

    /// Most connections served at once; past them a few more get 503 (the probes still
    /// answer) and the rest are closed.
    #[arg(
        long,
        env = "HTTP_MAX_CONNECTIONS",
        default_value_t = 1024,
        global = true
    )]
    pub http_max_connections: usize,

    /// A connection must send a request's headers within this (idle keep-alive connections
    /// included), or it is closed.
    #[arg(long, env = "HTTP_HEADER_READ_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration, global = true)]
    pub http_header_read_timeout: Duration,

    /// Most requests answered at once (health probes and metrics aside); more get 503 with
    /// Retry-After.
    #[arg(long, env = "HTTP_MAX_IN_FLIGHT", default_value_t = 512, global = true)]
    pub http_max_in_flight: usize,

    /// Most bytes of request bodies held in memory at once; a body that does not fit gets
    /// 503 with Retry-After.
    #[arg(long, env = "HTTP_BODY_BUDGET_BYTES", default_value_t = 16 * 1024 * 1024, global = true)]
    pub http_body_budget_bytes: usize,

    /// A request still running after this is answered 503 and abandoned.
    #[arg(long, env = "REQUEST_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration, global = true)]
    pub request_timeout: Duration,

    /// On SIGTERM or Ctrl-C, requests in flight get this long to finish.
    #[arg(long, env = "SHUTDOWN_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration, global = true)]
    pub shutdown_timeout: Duration,

    /// Origins browsers may call the API from, comma-separated (`*` for any). Default: any
    /// localhost origin in development, none in production.
    #[arg(
        long,
        env = "CORS_ALLOWED_ORIGINS",
        value_delimiter = ',',
        global = true
    )]
    pub cors_allowed_origins: Vec<String>,

    /// Browsers on the allowed origins keep their session in HttpOnly cookies instead of
    /// holding tokens in JavaScript (see docs/cookies.md).
    #[arg(long, env = "SESSION_COOKIES", default_value_t = false, value_parser = clap::builder::BoolishValueParser::new(), action = clap::ArgAction::Set, global = true)]
    pub session_cookies: bool,

    /// The session cookies' SameSite: `lax` (a server-rendered page opened from a link on
    /// another site knows the user) or `strict`.
    #[arg(
        long,
        env = "SESSION_COOKIE_SAMESITE",
        value_enum,
        default_value = "lax",
        global = true
    )]
    pub session_cookie_samesite: CookieSameSite,

    /// Reverse proxies (addresses or networks, comma-separated) whose X-Forwarded-For is
    /// believed. Default: none, so the client address is the TCP peer.
    #[arg(long, env = "TRUSTED_PROXIES", value_delimiter = ',', value_parser = parse_network, global = true)]
    pub trusted_proxies: Vec<IpNet>,

    /// Allow TRUSTED_PROXIES to name networks wider than /8 (IPv4) or /7 (IPv6), which
    /// production otherwise refuses.
    #[arg(long, env = "TRUSTED_PROXIES_ALLOW_WIDE", default_value_t = false, value_parser = clap::builder::BoolishValueParser::new(), action = clap::ArgAction::Set, global = true)]
    pub trusted_proxies_allow_wide: bool,

    /// The header in which the trusted proxies name the client: `x-forwarded-for` or the
    /// standard `forwarded` (RFC 7239). The other one is ignored, since a client can send it.
    #[arg(
        long,
        env = "TRUSTED_PROXY_HEADER",
        value_enum,
        default_value = "x-forwarded-for",
        global = true
    )]
    pub trusted_proxy_header: ForwardedHeader,

    /// Send Strict-Transport-Security (set it when clients reach the service over HTTPS).
    #[arg(long, env = "HSTS", default_value_t = false, value_parser = clap::builder::BoolishValueParser::new(), action = clap::ArgAction::Set, global = true)]
    pub hsts: bool,

    /// Serve GraphiQL at GET /graphql. Default: on in development, off in production.
    #[arg(long, env = "GRAPHIQL", value_parser = clap::builder::BoolishValueParser::new(), global = true)]
    pub graphiql: Option<bool>,

    /// Answer introspection queries. Default: on in development, off in production.
    #[arg(long, env = "INTROSPECTION", value_parser = clap::builder::BoolishValueParser::new(), global = true)]
    pub introspection: Option<bool>,

    /// Deepest selection nesting accepted.
    #[arg(long, env = "GRAPHQL_MAX_DEPTH", default_value_t = 16, global = true)]
    pub graphql_max_depth: usize,

    /// Highest query cost accepted (each field costs 1, lists multiply by their page size).
    #[arg(
        long,
        env = "GRAPHQL_MAX_COMPLEXITY",
        default_value_t = 20_000,
        global = true
    )]
    pub graphql_max_complexity: usize,

    /// Most lexical tokens (names, numbers, strings, punctuation) in a document; checked
    /// before parsing.
    #[arg(
        long,
        env = "GRAPHQL_MAX_TOKENS",
        default_value_t = 15_000,
        global = true
    )]
    pub graphql_max_tokens: usize,

    /// Deepest nesting of brackets (`{`, `[`, `(` together) in a document; checked before
    /// parsing.
    #[arg(
        long,
        env = "GRAPHQL_MAX_NESTING",
        default_value_t = 128,
        global = true
    )]
    pub graphql_max_nesting: usize,

    /// Most aliases one document may use.
    #[arg(long, env = "GRAPHQL_MAX_ALIASES", default_value_t = 30, global = true)]
    pub graphql_max_aliases: usize,

    /// Most top-level fields one operation may select.
    #[arg(
        long,
        env = "GRAPHQL_MAX_ROOT_FIELDS",
        default_value_t = 10,
        global = true
    )]
    pub graphql_max_root_fields: usize,

    /// Most directives on one field, fragment spread or inline fragment.
    #[arg(
        long,
        env = "GRAPHQL_MAX_DIRECTIVES",
        default_value_t = 10,
        global = true
    )]
    pub graphql_max_directives: usize,

    /// Serve Prometheus metrics at GET /metrics on METRICS_ADDR.
    #[arg(long, env = "METRICS", default_value_t = true, value_parser = clap::builder::BoolishValueParser::new(), action = clap::ArgAction::Set, global = true)]
    pub metrics: bool,

    /// Where `/metrics` listens: its own address, off the API's port, so only the operator's
    /// network reaches it (in a container, `0.0.0.0:9464` and an unpublished port).
    #[arg(
        long,
        env = "METRICS_ADDR",
        default_value = "127.0.0.1:9464",
        global = true
    )]
    pub metrics_addr: std::net::SocketAddr,

    /// Most documents remembered for automatic persisted queries (by SHA-256 hash); 0 turns
    /// APQ off. Only documents that passed validation are remembered.
    #[arg(long, env = "APQ_CACHE_SIZE", default_value_t = 1024, global = true)]
    pub apq_cache_size: usize,

    /// Most bytes of document text remembered for automatic persisted queries.
    #[arg(long, env = "APQ_CACHE_BYTES", default_value_t = 2 * 1024 * 1024, global = true)]
    pub apq_cache_bytes: usize,

    /// Rate limits and the sign-in lockout: on, or `false` to turn them all off (benchmarks).
    #[arg(long, env = "RATE_LIMITS", default_value_t = true, value_parser = clap::builder::BoolishValueParser::new(), action = clap::ArgAction::Set, global = true)]
    pub rate_limits: bool,

    /// Where rate-limit counters live: `memory` (one instance) or `redis` (shared; needs
    /// REDIS_URL).
    #[arg(
        long,
        env = "RATE_LIMIT_STORE",
        value_enum,
        default_value = "memory",
        global = true
    )]
    pub rate_limit_store: RateLimitStore,

    /// Redis for shared rate limits, e.g. `redis://127.0.0.1:6379`.
    #[arg(
        long,
        env = "REDIS_URL",
        hide_env_values = true,
        value_parser = secret,
        global = true
    )]
    pub redis_url: Option<SecretString>,

    /// Prefix of this deployment's Redis keys.
    #[arg(
        long,
        env = "REDIS_KEY_PREFIX",
        default_value = "authgraph:",
        global = true
    )]
    pub redis_key_prefix: String,

    /// Sign-ins per client address: `count/period` (e.g. `30/1m`) or `off`.
    #[arg(long, env = "RATE_LIMIT_LOGIN", default_value = "30/1m", global = true)]
    pub rate_limit_login: QuotaSetting,

    /// Sign-ins per account (right or wrong).
    #[arg(
        long,
        env = "RATE_LIMIT_LOGIN_ACCOUNT",
        default_value = "10/15m",
        global = true
    )]
    pub rate_limit_login_account: QuotaSetting,

    /// Registrations per client address.
    #[arg(
        long,
        env = "RATE_LIMIT_REGISTER",
        default_value = "10/1h",
        global = true
    )]
    pub rate_limit_register: QuotaSetting,

    /// Token refreshes per client address.
    #[arg(
        long,
        env = "RATE_LIMIT_REFRESH",
        default_value = "120/1m",
        global = true
    )]
    pub rate_limit_refresh: QuotaSetting,

    /// Password-reset requests and resets per client address.
    #[arg(
        long,
        env = "RATE_LIMIT_PASSWORD_RESET",
        default_value = "10/1h",
        global = true
    )]
    pub rate_limit_password_reset: QuotaSetting,

    /// Password-reset requests per account.
    #[arg(
        long,
        env = "RATE_LIMIT_PASSWORD_RESET_ACCOUNT",
        default_value = "3/1h",
        global = true
    )]
    pub rate_limit_password_reset_account: QuotaSetting,

    /// Password confirmations (changing the password or the email, deleting the account) per
    /// session.
    #[arg(
        long,
        env = "RATE_LIMIT_PASSWORD_CONFIRM",
        default_value = "5/15m",
        global = true
    )]
    pub rate_limit_password_confirm: QuotaSetting,

    /// Password confirmations per account, over all its sessions.
    #[arg(
        long,
        env = "RATE_LIMIT_PASSWORD_CONFIRM_ACCOUNT",
        default_value = "10/1h",
        global = true
    )]
    pub rate_limit_password_confirm_account: QuotaSetting,

    /// Emails sent on a client's request (verification links, email changes) per client
    /// address.
    #[arg(long, env = "RATE_LIMIT_EMAIL", default_value = "10/1h", global = true)]
    pub rate_limit_email: QuotaSetting,

    /// Emails sent on a client's request per recipient address.
    #[arg(
        long,
        env = "RATE_LIMIT_EMAIL_RECIPIENT",
        default_value = "3/1h",
        global = true
    )]
    pub rate_limit_email_recipient: QuotaSetting,

    /// Second-factor codes tried per client address.
    #[arg(long, env = "RATE_LIMIT_CODE", default_value = "30/15m", global = true)]
    pub rate_limit_code: QuotaSetting,

    /// Second-factor codes tried per account (wrong ones also count toward the account's
    /// code lockout, apart from its password lockout).
    #[arg(
        long,
        env = "RATE_LIMIT_CODE_ACCOUNT",
        default_value = "10/15m",
        global = true
    )]
    pub rate_limit_code_account: QuotaSetting,

    /// Password hashes one account may have queued or running at once.
    #[arg(
        long,
        env = "PASSWORD_HASHES_PER_ACCOUNT",
        default_value_t = 2,
        global = true
    )]
    pub password_hashes_per_account: usize,

    /// IPv6 clients are limited by this prefix of their address (IPv4 ones by address).
    #[arg(long, env = "RATE_LIMIT_IPV6_PREFIX", default_value_t = 64, value_parser = clap::value_parser!(u8).range(1..=128), global = true)]
    pub rate_limit_ipv6_prefix: u8,

    /// Keys of each class (client addresses; accounts and sessions) the in-memory rate-limit
    /// store has room for. No key is forgotten while it restricts anyone: when a class is full
    /// of such keys, requests needing a new key of that class are refused (RATE_LIMITED).
    #[arg(
        long,
        env = "RATE_LIMIT_MEMORY_KEYS",
        default_value_t = 50_000,
        global = true
    )]
    pub rate_limit_memory_keys: usize,

    /// Failed sign-ins to one account (within LOGIN_LOCKOUT_WINDOW) before it is locked; 0
    /// turns the lockout off.
    #[arg(long, env = "LOGIN_LOCKOUT_AFTER", default_value_t = 5, global = true)]
    pub login_lockout_after: u32,

    /// How long failed sign-ins are remembered.
    #[arg(long, env = "LOGIN_LOCKOUT_WINDOW", default_value = "15m", value_parser = humantime::parse_duration, global = true)]
    pub login_lockout_window: Duration,

    /// The first lock; each further failure doubles it.
    #[arg(long, env = "LOGIN_LOCKOUT_BASE", default_value = "1m", value_parser = humantime::parse_duration, global = true)]
    pub login_lockout_base: Duration,

    /// The longest lock.
    #[arg(long, env = "LOGIN_LOCKOUT_MAX", default_value = "1h", value_parser = humantime::parse_duration, global = true)]
    pub login_lockout_max: Duration,

    /// argon2id memory cost in KiB.
    #[arg(
        long,
        env = "ARGON2_MEMORY_KIB",
        default_value_t = 19_456,
        global = true
    )]
    pub argon2_memory_kib: u32,

    /// argon2id iterations.
    #[arg(long, env = "ARGON2_ITERATIONS", default_value_t = 2, global = true)]
    pub argon2_iterations: u32,

    /// argon2id parallelism.
    #[arg(long, env = "ARGON2_PARALLELISM", default_value_t = 1, global = true)]
    pub argon2_parallelism: u32,

    /// Password hashes computed at once (default: the number of CPU cores).
    #[arg(long, env = "PASSWORD_HASH_WORKERS", global = true)]
    pub password_hash_workers: Option<usize>,

    /// Password hashes allowed to wait; beyond this, sign-ins are refused as RATE_LIMITED.
    #[arg(long, env = "PASSWORD_HASH_QUEUE", default_value_t = 64, global = true)]
    pub password_hash_queue: usize,

    /// Scheduling priority of the password-hashing threads: `background` (Linux: below every
    /// other thread, so requests stay fast while many people sign in at once) or `normal`.
    #[arg(
        long,
        env = "PASSWORD_HASH_PRIORITY",
        value_enum,
        default_value = "background",
        global = true
    )]
    pub password_hash_priority: HashPriority,

    /// `pretty` or `json`.
    #[arg(
        long,
        env = "LOG_FORMAT",
        value_enum,
        default_value = "pretty",
        global = true
    )]
    pub log_format: LogFormat,
}

impl Config {
    /// The configuration of the environment alone, with no command-line flags.
    pub fn from_env() -> Result<Self, clap::Error> {
        #[derive(clap::Parser)]
        struct Env {
            #[command(flatten)]
            config: Config,
        }
        <Env as clap::Parser>::try_parse_from(["authgraph"]).map(|env| env.config)
    }

    pub fn is_production(&self) -> bool {
        self.app_env == Some(AppEnv::Production)
    }

    /// Refuses, with every reason at once, a configuration production must not run with;
    /// in development the same findings are warnings. Settings that cannot work together are
    /// refused in every mode.
    pub fn check(&self) -> anyhow::Result<()> {
        self.check_consistency()?;
        let findings = production::findings(self);
        if !self.is_production() {
            for finding in &findings {
                tracing::warn!("{finding} (production refuses this)");
            }
            return Ok(());
        }
        anyhow::ensure!(
            findings.is_empty(),
            "this configuration is refused in production:\n- {}",
            findings.join("\n- ")
        );
        Ok(())
    }

    /// How access tokens are signed: JWT_ALGORITHM; otherwise HS256 for a deployment that has
    /// a JWT_SECRET and no private key (as before the choice existed), ES256 for a new one.
    pub fn jwt_algorithm(&self) -> JwtAlgorithm {
        let private_key = self.jwt_private_key.is_some() || self.jwt_private_key_file.is_some();
        self.jwt_algorithm
            .unwrap_or(if self.jwt_secret.is_some() && !private_key {
                JwtAlgorithm::Hs256
            } else {
                JwtAlgorithm::Es256
            })
    }

    /// One line for the startup log: the mode and what it turns on.
    pub fn mode(&self) -> String {
        let on_off = |on: bool| if on { "on" } else { "off" };
        let limits = self.graphql_limits();
        let http = self.http();
        let mail = match (self.mailer, &self.smtp_url) {
            (Some(MailerKind::Log), _) | (None, None) => "written to the log",
            _ => "sent by SMTP",
        };
        let cors = match &http.cors {
            CorsPolicy::None => "no browser origins".to_owned(),
            CorsPolicy::Localhost => "any localhost origin".to_owned(),
            CorsPolicy::Origins(origins) => origins.join(", "),
        };
        let mode = match self.app_env {
            Some(AppEnv::Production) => "production",
            Some(AppEnv::Development) => "development",
            None => "development (APP_ENV not set: loopback only)",
        };
        let generated = "generated and kept beside the database";
        format!(
            "{mode}: GraphiQL {}, introspection {}, emails {mail}, CORS {cors}, tokens {} with \
             a key {}, MFA key {}",
            on_off(http.graphiql),
            on_off(limits.introspection),
            self.jwt_algorithm().name(),
            match (self.jwt_algorithm().is_asymmetric(), self) {
                (true, c) if c.jwt_private_key.is_some() => "from JWT_PRIVATE_KEY",
                (true, c) if c.jwt_private_key_file.is_some() => "from JWT_PRIVATE_KEY_FILE",
                (false, c) if c.jwt_secret.is_some() => "from JWT_SECRET",
                _ => generated,
            },
            if self.mfa_encryption_key.is_some() {
                "from MFA_ENCRYPTION_KEY"
            } else {
                generated
            },
        )
    }

    fn check_consistency(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            !(self.session_cookies && self.http().cors.allows_any()),
            "SESSION_COOKIES=true with CORS_ALLOWED_ORIGINS=*: any site could then use a \
             visitor's session. List the origins of your frontends instead."
        );
        Ok(())
    }

    /// Refuses to serve beyond loopback in a mode nobody chose: a development server on a
    /// public address hands out a generated secret, logs links and answers introspection.
    pub fn check_listen_address(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.app_env.is_some() || self.host.is_loopback(),
            "HOST={} is not a loopback address and APP_ENV is not set. Set APP_ENV=production \
             for a real deployment (or APP_ENV=development to run a development server there \
             on purpose).",
            self.host
        );
        Ok(())
    }

    pub fn database(&self) -> DatabaseSettings {
        DatabaseSettings {
            url: self.database_url.expose_secret().to_owned(),
            max_connections: self.database_max_connections,
            connect_timeout: self.database_connect_timeout,
        }
    }

    pub fn http(&self) -> HttpSettings {
        let cors = match self.cors_allowed_origins.as_slice() {
            [] if self.is_production() => CorsPolicy::None,
            [] => CorsPolicy::Localhost,
            origins => CorsPolicy::Origins(origins.to_vec()),
        };
        HttpSettings {
            max_body_bytes: self.http_max_body_bytes,
            max_header_bytes: self.http_max_header_bytes,
            request_timeout: self.request_timeout,
            cors,
            graphiql: self.graphiql.unwrap_or(!self.is_production()),
            trusted_proxies: TrustedProxies {
                networks: self.trusted_proxies.clone(),
                header: self.trusted_proxy_header,
            },
            hsts: self.hsts,
            session_cookies: self.session_cookies.then(|| CookieSettings {
                secure: self.is_production(),
                same_site: self.session_cookie_samesite,
            }),
        }
    }

    /// Where verifiers find the keys: API_URL, else JWT_ISSUER when it is a URL, else the
    /// address the server listens on.
    pub fn discovery(&self, listening: std::net::SocketAddr) -> crate::interfaces::http::Discovery {
        let is_url = |s: &str| s.starts_with("https://") || s.starts_with("http://");
        let base = match &self.api_url {
            Some(url) => url.clone(),
            None if is_url(&self.jwt_issuer) => self.jwt_issuer.clone(),
            None => format!("http://{listening}"),
        };
        crate::interfaces::http::Discovery {
            issuer: self.jwt_issuer.clone(),
            jwks_uri: format!("{}/.well-known/jwks.json", base.trim_end_matches('/')),
        }
    }

    pub fn connection_limits(&self) -> crate::interfaces::http::ConnectionLimits {
        crate::interfaces::http::ConnectionLimits {
            max_connections: self.http_max_connections,
            header_read_timeout: self.http_header_read_timeout,
        }
    }

    pub fn load_limits(&self) -> crate::interfaces::http::LoadLimits {
        crate::interfaces::http::LoadLimits {
            max_in_flight: self.http_max_in_flight,
            body_budget_bytes: self.http_body_budget_bytes,
        }
    }

    pub fn graphql_limits(&self) -> crate::interfaces::graphql::Limits {
        crate::interfaces::graphql::Limits {
            size: crate::interfaces::graphql::SizeLimits {
                max_tokens: self.graphql_max_tokens,
                max_nesting: self.graphql_max_nesting,
            },
            max_depth: self.graphql_max_depth,
            max_complexity: self.graphql_max_complexity,
            max_aliases: self.graphql_max_aliases,
            max_root_fields: self.graphql_max_root_fields,
            max_directives: self.graphql_max_directives,
            introspection: self.introspection.unwrap_or(!self.is_production()),
            persisted: crate::interfaces::graphql::PersistedLimits {
                entries: self.apq_cache_size,
                bytes: self.apq_cache_bytes,
            },
        }
    }

    /// The abuse limits; all off when `RATE_LIMITS=false`.
    pub fn throttle(&self) -> ThrottlePolicy {
        if !self.rate_limits {
            return ThrottlePolicy::default();
        }
        ThrottlePolicy {
            login_per_ip: self.rate_limit_login.0,
            login_per_account: self.rate_limit_login_account.0,
            register_per_ip: self.rate_limit_register.0,
            refresh_per_ip: self.rate_limit_refresh.0,
            password_reset_per_ip: self.rate_limit_password_reset.0,
            password_reset_per_account: self.rate_limit_password_reset_account.0,
            confirm_per_session: self.rate_limit_password_confirm.0,
            confirm_per_account: self.rate_limit_password_confirm_account.0,
            email_per_ip: self.rate_limit_email.0,
            email_per_recipient: self.rate_limit_email_recipient.0,
            code_per_ip: self.rate_limit_code.0,
            code_per_account: self.rate_limit_code_account.0,
            hashes_per_account: Some(self.password_hashes_per_account.max(1)),
            ipv6_prefix: self.rate_limit_ipv6_prefix,
            lockout: (self.login_lockout_after > 0).then_some(Lockout {
                after: self.login_lockout_after,
                window: self.login_lockout_window,
                base: self.login_lockout_base,
                max: self.login_lockout_max,
            }),
        }
    }

    pub fn hashing(&self) -> HashingSettings {
        HashingSettings {
            memory_kib: self.argon2_memory_kib,
            iterations: self.argon2_iterations,
            parallelism: self.argon2_parallelism,
            workers: self.password_hash_workers.unwrap_or_else(|| {
                std::thread::available_parallelism().map_or(2, std::num::NonZero::get)
            }),
            queue: self.password_hash_queue,
            priority: self.password_hash_priority,
        }
    }

    /// Where development-only generated files (the JWT secret, the MFA key) live: beside the SQLite
    /// database, or `./data` for a server database. `None` in production.
    pub fn dev_state_dir(&self) -> Option<PathBuf> {
        if self.is_production() {
            return None;
        }
        let dir = match sqlite_file(self.database_url.expose_secret()) {
            Some(file) => std::path::Path::new(file)
                .parent()
                .filter(|dir| !dir.as_os_str().is_empty())
                .map_or_else(|| PathBuf::from("."), PathBuf::from),
            None => PathBuf::from("data"),
        };
        Some(dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_shows_a_secret() {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            config: Config,
        }
        let cli = <Cli as clap::Parser>::try_parse_from([
            "authgraph",
            "--database-url",
            "postgres://app:db-password@db/app",
            "--jwt-secret",
            "signing-secret-signing-secret-signing",
            "--jwt-previous-secrets",
            "old-secret-one,old-secret-two",
            "--mfa-encryption-key",
            "mfa-key-mfa-key-mfa-key-mfa-key-mfa-key-mf=",
            "--mfa-previous-encryption-keys",
            "old-mfa-key-one,old-mfa-key-two",
            "--smtp-url",
            "smtps://u:smtp-password@mail.example.com",
            "--redis-url",
            "redis://:redis-password@cache",
        ])
        .unwrap();
        let shown = format!("{:?}", cli.config);
        for secret in [
            "db-password",
            "signing-secret",
            "old-secret",
            "mfa-key",
            "smtp-password",
            "redis-password",
        ] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        assert_eq!(
            cli.config.database_url.expose_secret(),
            "postgres://app:db-password@db/app"
        );
    }

    #[test]
    fn quotas_parse_from_count_and_period() {
        let quota = "30/1m".parse::<QuotaSetting>().unwrap().0.unwrap();
        assert_eq!((quota.burst, quota.period), (30, Duration::from_secs(60)));
        assert_eq!("off".parse::<QuotaSetting>().unwrap(), QuotaSetting(None));
        for bad in ["30", "0/1m", "x/1m", "5/0s", "5/forever"] {
            assert!(bad.parse::<QuotaSetting>().is_err(), "{bad}");
        }
    }
}
