//! Browsers: which origins may call the API, and whether their sessions live in cookies.

use clap::Args;

use crate::interfaces::http::{CookieSameSite, CookieSettings, CorsPolicy};

#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Browsers (CORS and cookies)")]
pub struct BrowserConfig {
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
    /// holding tokens in JavaScript (see docs/cookies.md). Refused with
    /// CORS_ALLOWED_ORIGINS=*.
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
}

impl BrowserConfig {
    /// CORS_ALLOWED_ORIGINS, or the default of the mode: any localhost origin in development,
    /// none in production.
    pub fn cors(&self, production: bool) -> CorsPolicy {
        match self.cors_allowed_origins.as_slice() {
            [] if production => CorsPolicy::None,
            [] => CorsPolicy::Localhost,
            origins => CorsPolicy::Origins(origins.to_vec()),
        }
    }

    /// The session cookies, when they are on; `Secure` in production.
    pub fn cookies(&self, production: bool) -> Option<CookieSettings> {
        self.session_cookies.then_some(CookieSettings {
            secure: production,
            same_site: self.session_cookie_samesite,
        })
    }

    /// Refuses, in every mode, cookies that any site could use.
    pub(super) fn check(&self, production: bool) -> anyhow::Result<()> {
        anyhow::ensure!(
            !(self.session_cookies && self.cors(production).allows_any()),
            "SESSION_COOKIES=true with CORS_ALLOWED_ORIGINS=*: any site could then use a \
             visitor's session. List the origins of your frontends instead."
        );
        Ok(())
    }
}
