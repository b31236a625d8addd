//! Typed configuration, read once at startup from environment variables (and an optional
//! `.env`), each also settable as a command-line flag. Nothing else reads the environment.
//!
//! One module per area, each a clap group flattened into [`Config`] under its own `--help`
//! heading. An area turns its settings into what the code uses (a policy, limits, keys), with
//! the conversions and range checks that takes, and names what production refuses of it
//! (`production.rs` asks every area). A field is named after its environment variable
//! (`DATABASE_URL` is `database.database_url` and `--database-url`), so the flag and the
//! placeholder in `--help` follow from it. `docs/configuration.md` is generated from these
//! definitions (`reference.rs`).

mod audit;
mod browsers;
mod claims;
mod database;
mod graphql;
mod hashing;
mod http;
mod links;
mod mail;
mod production;
mod rate_limits;
pub mod reference;
mod second_factor;
mod sessions;
mod social;
mod telemetry;
mod tokens;
mod webauthn;

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, ValueEnum};
use secrecy::SecretString;

pub use audit::AuditConfig;
pub use browsers::BrowserConfig;
pub use claims::{ClaimsConfig, ClaimsPresetName, HookFailureName};
pub use database::DatabaseConfig;
pub use graphql::GraphqlConfig;
pub use hashing::HashingConfig;
pub use http::HttpConfig;
pub use links::LinkConfig;
pub use mail::{MailConfig, MailerKind};
pub use rate_limits::{QuotaSetting, RateLimitConfig, RateLimitStore};
pub use second_factor::SecondFactorConfig;
pub use sessions::SessionConfig;
pub use social::{CALLBACK_PATH, SocialConfig};
pub use telemetry::{LogFormat, TelemetryConfig};
pub use tokens::TokenConfig;
pub use webauthn::WebauthnConfig;

use crate::infrastructure::persistence::sqlite_file;
use crate::interfaces::graphql::Limits;
use crate::interfaces::http::{CorsPolicy, HttpSettings};

/// Whether the service runs for a developer or for real users.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AppEnv {
    /// For a developer's machine: a missing JWT secret or MFA key is generated and kept on
    /// disk.
    Development,
    /// For real users: every secret must come from the environment.
    Production,
}

/// A setting that holds a secret (a password in a URL, a signing key): never shown by
/// `--help` or `Debug`, read only through `expose_secret`.
fn secret(value: &str) -> Result<SecretString, std::convert::Infallible> {
    Ok(value.into())
}

/// A configured duration as the services count time; `name` is the setting, for the error.
fn chrono_duration(value: Duration, name: &str) -> anyhow::Result<chrono::Duration> {
    chrono::Duration::from_std(value).with_context(|| format!("{name} is too large"))
}

/// Everything the server can be told; `docs/configuration.md` lists the same.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Server")]
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

    // The areas. Each sets its own help heading, which stays set after it: the server's own
    // settings above must come first.
    #[command(flatten)]
    pub database: DatabaseConfig,

    #[command(flatten)]
    pub tokens: TokenConfig,

    #[command(flatten)]
    pub sessions: SessionConfig,

    #[command(flatten)]
    pub claims: ClaimsConfig,

    #[command(flatten)]
    pub mfa: SecondFactorConfig,

    #[command(flatten)]
    pub links: LinkConfig,

    #[command(flatten)]
    pub webauthn: WebauthnConfig,

    #[command(flatten)]
    pub mail: MailConfig,

    #[command(flatten)]
    pub http: HttpConfig,

    #[command(flatten)]
    pub browsers: BrowserConfig,

    #[command(flatten)]
    pub graphql: GraphqlConfig,

    #[command(flatten)]
    pub rate_limits: RateLimitConfig,

    #[command(flatten)]
    pub hashing: HashingConfig,

    #[command(flatten)]
    pub audit: AuditConfig,

    #[command(flatten)]
    pub social: SocialConfig,

    #[command(flatten)]
    pub telemetry: TelemetryConfig,
}

impl Config {
    /// The configuration of the environment alone, with no command-line flags.
    pub fn from_env() -> Result<Self, clap::Error> {
        Self::try_parse_from(["authgraph"])
    }

    /// The configuration of these command-line arguments (the first is the program's name),
    /// the environment filling in what they leave unset.
    pub fn try_parse_from<I, T>(args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        #[derive(clap::Parser)]
        struct Arguments {
            #[command(flatten)]
            config: Config,
        }
        <Arguments as clap::Parser>::try_parse_from(args).map(|parsed| {
            let mut config = parsed.config;
            // The providers' own settings have names made from their ids.
            config.social.capture(std::env::vars());
            config
        })
    }

    /// The settings as a clap command, with no subcommands: what `--help` and the generated
    /// reference show.
    pub fn command() -> clap::Command {
        Self::augment_args(clap::Command::new("authgraph"))
    }

    pub fn is_production(&self) -> bool {
        self.app_env == Some(AppEnv::Production)
    }

    /// Refuses, with every reason at once, a configuration production must not run with;
    /// in development the same findings are warnings. Settings that cannot work together are
    /// refused in every mode.
    pub fn check(&self) -> anyhow::Result<()> {
        self.browsers.check(self.is_production())?;
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

    /// One line for the startup log: the mode and what it turns on.
    pub fn mode(&self) -> String {
        let on_off = |on: bool| if on { "on" } else { "off" };
        let production = self.is_production();
        let mail = match self.mail.chosen() {
            Some(MailerKind::Smtp) => "sent by SMTP",
            Some(MailerKind::Log) | None => "written to the log",
        };
        let cors = match self.browsers.cors(production) {
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
        let from = |setting: &str| format!("from {setting}");
        format!(
            "{mode}: GraphiQL {}, introspection {}, emails {mail}, CORS {cors}, tokens {} with \
             a key {}, MFA key {}",
            on_off(self.graphql.graphiql(production)),
            on_off(self.graphql_limits().introspection),
            self.tokens.algorithm().name(),
            self.tokens
                .key_source()
                .map_or_else(|| generated.to_owned(), from),
            if self.mfa.key_is_configured() {
                from("MFA_ENCRYPTION_KEY")
            } else {
                generated.to_owned()
            },
        )
    }

    /// What the HTTP layer is told: its limits, CORS, GraphiQL, the proxies, HSTS and the
    /// session cookies.
    pub fn http_settings(&self) -> HttpSettings {
        let production = self.is_production();
        HttpSettings {
            max_body_bytes: self.http.http_max_body_bytes,
            max_header_bytes: self.http.http_max_header_bytes,
            request_timeout: self.http.request_timeout,
            cors: self.browsers.cors(production),
            graphiql: self.graphql.graphiql(production),
            trusted_proxies: self.http.trusted_proxies(),
            hsts: self.http.hsts,
            session_cookies: self.browsers.cookies(production),
            secure_cookies: production,
        }
    }

    /// How social sign-in behaves: where `redirectTo` may point (the CORS origins and
    /// PUBLIC_URL's origin; any localhost origin when CORS allows it), cookies or codes, and
    /// whether a provider's second factor counts.
    pub fn social_policy(&self) -> crate::application::SocialPolicy {
        use crate::application::social::redirect_origin;
        let production = self.is_production();
        let (mut origins, any_localhost) = match self.browsers.cors(production) {
            CorsPolicy::None => (Vec::new(), false),
            CorsPolicy::Localhost => (Vec::new(), true),
            CorsPolicy::Origins(listed) => (
                listed
                    .iter()
                    .filter(|o| o.as_str() != "*")
                    .filter_map(|o| redirect_origin(o))
                    .collect(),
                false,
            ),
        };
        origins.extend(redirect_origin(&self.links.public_url));
        crate::application::SocialPolicy {
            flow_lifetime: chrono::Duration::minutes(10),
            code_lifetime: chrono::Duration::minutes(2),
            link_lifetime: chrono::Duration::hours(1),
            trust_provider_mfa: self.social.social_trust_provider_mfa,
            max_flows_per_binding: 10,
            max_live_flows: 10_000,
            redirect_origins: origins,
            any_localhost,
        }
    }

    /// The GraphQL admission limits, introspection following the mode unless set.
    pub fn graphql_limits(&self) -> Limits {
        self.graphql.limits(self.is_production())
    }

    /// Where development-only generated files (the JWT secret, the MFA key) live: beside the SQLite
    /// database, or `./data` for a server database. `None` in production.
    pub fn dev_state_dir(&self) -> Option<PathBuf> {
        if self.is_production() {
            return None;
        }
        let dir = match sqlite_file(self.database.url()) {
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
    use secrecy::ExposeSecret;

    #[test]
    fn debug_output_never_shows_a_secret() {
        let config = Config::try_parse_from([
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
        let shown = format!("{config:?}");
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
            config.database.database_url.expose_secret(),
            "postgres://app:db-password@db/app"
        );
    }

    /// clap's own checks of the definitions (unique names and flags, sound defaults), which
    /// it otherwise runs only when a debug build parses.
    #[test]
    fn the_definitions_are_consistent() {
        Config::command().debug_assert();
    }

    #[test]
    fn durations_too_large_for_a_date_name_their_setting() {
        let error = chrono_duration(Duration::MAX, "SESSION_MAX_AGE").unwrap_err();
        assert_eq!(error.to_string(), "SESSION_MAX_AGE is too large");
    }
}
