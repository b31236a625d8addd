//! Social sign-in: the OpenID Connect providers. Their ids are a setting
//! (`SOCIAL_PROVIDERS=google,corp`); each id's own settings have names made from it
//! (`SOCIAL_CORP_ISSUER`), so they cannot be clap arguments: they are read from the
//! environment when the configuration is built ([`SocialConfig::capture`]), and only there.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use secrecy::{ExposeSecret, SecretString};

use crate::domain::ProviderId;
use crate::infrastructure::oidc::{OidcSettings, ProviderSettings};

/// The path of the callback, under API_URL.
pub const CALLBACK_PATH: &str = "/auth/oidc/callback";
/// The prefix of the settings of each provider.
const PREFIX: &str = "SOCIAL_";
/// What is asked for when `SOCIAL_<ID>_SCOPES` is unset.
const DEFAULT_SCOPES: &str = "openid email profile";

#[derive(Clone, Args)]
#[command(next_help_heading = "Social sign-in")]
pub struct SocialConfig {
    /// The ids of the OpenID Connect providers offered for signing in, comma-separated
    /// (`google,corp`): a letter, then letters, digits or `_`. Each id has its own settings,
    /// named after it: `SOCIAL_<ID>_ISSUER` (the issuer URL, exactly as its ID tokens name
    /// it; `https://` only, `http://` in development), `SOCIAL_<ID>_CLIENT_ID`,
    /// `SOCIAL_<ID>_CLIENT_SECRET` (or `SOCIAL_<ID>_CLIENT_SECRET_FILE`, a file holding it),
    /// and optionally `SOCIAL_<ID>_NAME` (what the button says; the id by default) and
    /// `SOCIAL_<ID>_SCOPES` (default `openid email profile`). The provider must allow the
    /// redirect URI `{API_URL}/auth/oidc/callback`. Empty: no social sign-in.
    #[arg(long, env = "SOCIAL_PROVIDERS", value_delimiter = ',', global = true)]
    pub social_providers: Vec<String>,

    /// Whether a provider's word that the user passed a second factor (an `amr` claim of
    /// `mfa`, `otp`, `hwk`, …) stands in for this service's second factor. Off, an account
    /// with a second factor is asked for its code after every social sign-in.
    #[arg(long, env = "SOCIAL_TRUST_PROVIDER_MFA", default_value_t = false, value_parser = clap::builder::BoolishValueParser::new(), action = clap::ArgAction::Set, global = true)]
    pub social_trust_provider_mfa: bool,

    /// The per-provider settings (`SOCIAL_<ID>_…`), as the environment had them when the
    /// configuration was built.
    #[arg(skip)]
    pub provider_variables: BTreeMap<String, SecretString>,
}

impl std::fmt::Debug for SocialConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SocialConfig")
            .field("social_providers", &self.social_providers)
            .field("social_trust_provider_mfa", &self.social_trust_provider_mfa)
            .field(
                "provider_variables",
                &self.provider_variables.keys().collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl SocialConfig {
    /// Keeps the variables of the configured providers from `environment` (the process's,
    /// or a test's).
    pub fn capture(&mut self, environment: impl IntoIterator<Item = (String, String)>) {
        let ids: Vec<String> = self
            .social_providers
            .iter()
            .map(|id| format!("{PREFIX}{}_", id.trim().to_ascii_uppercase()))
            .collect();
        for (name, value) in environment {
            if ids.iter().any(|prefix| name.starts_with(prefix.as_str())) {
                self.provider_variables.insert(name, value.into());
            }
        }
    }

    /// Whether any provider is configured.
    pub fn enabled(&self) -> bool {
        self.social_providers.iter().any(|id| !id.trim().is_empty())
    }

    fn variable(&self, id: &ProviderId, what: &str) -> Option<&str> {
        let name = format!("{PREFIX}{}_{what}", id.as_str().to_ascii_uppercase());
        self.provider_variables
            .get(&name)
            .map(ExposeSecret::expose_secret)
            .map(str::trim)
            .filter(|value| !value.is_empty())
    }

    fn ids(&self) -> anyhow::Result<Vec<ProviderId>> {
        self.social_providers
            .iter()
            .filter(|id| !id.trim().is_empty())
            .map(|id| {
                ProviderId::parse(id).map_err(|e| anyhow::anyhow!("SOCIAL_PROVIDERS: `{id}`: {e}"))
            })
            .collect()
    }

    /// Every configured provider's settings; refuses one with a setting missing.
    pub fn providers(&self) -> anyhow::Result<Vec<ProviderSettings>> {
        self.ids()?
            .into_iter()
            .map(|id| {
                let upper = id.as_str().to_ascii_uppercase();
                let required = |what: &str| {
                    self.variable(&id, what)
                        .map(str::to_owned)
                        .with_context(|| {
                            format!("provider `{id}` is configured without {PREFIX}{upper}_{what}")
                        })
                };
                let client_secret = match (
                    self.variable(&id, "CLIENT_SECRET"),
                    self.variable(&id, "CLIENT_SECRET_FILE"),
                ) {
                    (Some(secret), _) => secret.to_owned(),
                    (None, Some(file)) => std::fs::read_to_string(file)
                        .with_context(|| {
                            format!("cannot read {PREFIX}{upper}_CLIENT_SECRET_FILE ({file})")
                        })?
                        .trim()
                        .to_owned(),
                    (None, None) => anyhow::bail!(
                        "provider `{id}` is configured without {PREFIX}{upper}_CLIENT_SECRET \
                         (or {PREFIX}{upper}_CLIENT_SECRET_FILE)"
                    ),
                };
                let scopes = self
                    .variable(&id, "SCOPES")
                    .unwrap_or(DEFAULT_SCOPES)
                    .split([' ', ','])
                    .filter(|scope| !scope.is_empty() && *scope != "openid")
                    .map(str::to_owned)
                    .collect();
                Ok(ProviderSettings {
                    name: self.variable(&id, "NAME").unwrap_or(id.as_str()).to_owned(),
                    issuer: required("ISSUER")?,
                    client_id: required("CLIENT_ID")?,
                    client_secret: client_secret.into(),
                    scopes,
                    id,
                })
            })
            .collect()
    }

    /// What the providers share: the callback under `api_url`, and `http://` issuers only in
    /// development.
    pub fn oidc_settings(&self, api_url: Option<&str>, production: bool) -> OidcSettings {
        let base = api_url
            .unwrap_or("http://127.0.0.1:8000")
            .trim_end_matches('/');
        OidcSettings {
            allow_http: !production,
            ..OidcSettings::new(format!("{base}{CALLBACK_PATH}"))
        }
    }

    /// How long a sign-in may stay at its provider.
    pub fn flow_lifetime(&self) -> Duration {
        Duration::from_secs(600)
    }

    /// What production refuses: providers without an API_URL to come back to, an `http://`
    /// issuer, a provider with a setting missing.
    pub(super) fn production_findings(&self, api_url: Option<&str>) -> Vec<String> {
        if !self.enabled() {
            return Vec::new();
        }
        let mut found = Vec::new();
        match api_url {
            Some(url) if url.starts_with("https://") => {}
            Some(url) => found.push(format!(
                "API_URL is `{url}`: providers would send the browser back in clear; use the \
                 service's https:// address"
            )),
            None => found.push(
                "SOCIAL_PROVIDERS is set but API_URL is not: providers need the service's \
                 public address to send the browser back to ({API_URL}/auth/oidc/callback)"
                    .to_owned(),
            ),
        }
        match self.providers() {
            Ok(providers) => found.extend(
                providers
                    .iter()
                    .filter(|p| !p.issuer.starts_with("https://"))
                    .map(|p| {
                        format!(
                            "{PREFIX}{}_ISSUER is `{}`: an issuer must be an https:// URL",
                            p.id.as_str().to_ascii_uppercase(),
                            p.issuer
                        )
                    }),
            ),
            Err(error) => found.push(error.to_string()),
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::super::Config;
    use super::*;

    fn configured(args: &[&str], variables: &[(&str, &str)]) -> Config {
        let mut config = Config::try_parse_from(
            ["authgraph"]
                .iter()
                .chain(args)
                .copied()
                .collect::<Vec<_>>(),
        )
        .unwrap();
        config.social.capture(
            variables
                .iter()
                .map(|(name, value)| ((*name).to_owned(), (*value).to_owned())),
        );
        config
    }

    const CORP: [(&str, &str); 3] = [
        ("SOCIAL_CORP_ISSUER", "https://idp.corp.example"),
        ("SOCIAL_CORP_CLIENT_ID", "authgraph"),
        ("SOCIAL_CORP_CLIENT_SECRET", "corp-secret"),
    ];

    #[test]
    fn each_provider_is_read_from_variables_named_after_its_id() {
        let mut variables = CORP.to_vec();
        variables.extend([
            ("SOCIAL_CORP_NAME", "Corp SSO"),
            ("SOCIAL_CORP_SCOPES", "openid email groups"),
            ("SOCIAL_GOOGLE_ISSUER", "https://accounts.google.com"),
            ("SOCIAL_OTHER_ISSUER", "https://not-configured.example"),
        ]);
        let config = configured(&["--social-providers", "corp"], &variables);

        let providers = config.social.providers().unwrap();
        assert_eq!(providers.len(), 1);
        let corp = &providers[0];
        assert_eq!(corp.id.as_str(), "corp");
        assert_eq!(corp.name, "Corp SSO");
        assert_eq!(corp.issuer, "https://idp.corp.example");
        assert_eq!(corp.client_id, "authgraph");
        assert_eq!(corp.client_secret.expose_secret(), "corp-secret");
        assert_eq!(corp.scopes, ["email", "groups"]);
        assert!(
            !config
                .social
                .provider_variables
                .contains_key("SOCIAL_OTHER_ISSUER"),
            "only the configured providers' variables are kept"
        );
        assert!(!format!("{config:?}").contains("corp-secret"));
    }

    #[test]
    fn a_secret_comes_from_a_file_and_defaults_fill_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("secret");
        std::fs::write(&file, "from-a-file\n").unwrap();
        let path = file.to_string_lossy().into_owned();
        let config = configured(
            &["--social-providers", "Corp"],
            &[
                ("SOCIAL_CORP_ISSUER", "https://idp.corp.example"),
                ("SOCIAL_CORP_CLIENT_ID", "authgraph"),
                ("SOCIAL_CORP_CLIENT_SECRET_FILE", path.as_str()),
            ],
        );

        let corp = &config.social.providers().unwrap()[0];
        assert_eq!(corp.client_secret.expose_secret(), "from-a-file");
        assert_eq!(corp.name, "corp");
        assert_eq!(corp.scopes, ["email", "profile"]);
        assert!(!config.social.social_trust_provider_mfa, "off by default");
    }

    #[test]
    fn a_provider_with_a_setting_missing_or_a_bad_id_is_refused() {
        let config = configured(&["--social-providers", "corp"], &CORP[..2]);
        let error = config.social.providers().unwrap_err().to_string();
        assert!(error.contains("SOCIAL_CORP_CLIENT_SECRET"), "{error}");
        let config = configured(&["--social-providers", "corp"], &CORP[1..]);
        let error = config.social.providers().unwrap_err().to_string();
        assert!(error.contains("SOCIAL_CORP_ISSUER"), "{error}");
        let config = configured(&["--social-providers", "my-corp"], &CORP);
        assert!(config.social.providers().is_err());
    }

    #[test]
    fn production_refuses_an_http_issuer_a_missing_secret_and_no_api_url() {
        let http = [
            ("SOCIAL_CORP_ISSUER", "http://idp.corp.example"),
            ("SOCIAL_CORP_CLIENT_ID", "authgraph"),
            ("SOCIAL_CORP_CLIENT_SECRET", "corp-secret"),
        ];
        let config = configured(&["--social-providers", "corp"], &http);
        let found = config.social.production_findings(None).join("\n");
        assert!(found.contains("API_URL is not"), "{found}");
        assert!(found.contains("SOCIAL_CORP_ISSUER is `http://"), "{found}");
        let config = configured(&["--social-providers", "corp"], &CORP[..2]);
        let found = config
            .social
            .production_findings(Some("https://api.example"))
            .join("\n");
        assert!(found.contains("SOCIAL_CORP_CLIENT_SECRET"), "{found}");
        assert!(
            configured(&["--social-providers", "corp"], &CORP)
                .social
                .production_findings(Some("http://api.example"))
                .join("\n")
                .contains("in clear")
        );
        let fine = configured(&["--social-providers", "corp"], &CORP);
        assert!(
            fine.social
                .production_findings(Some("https://api.example"))
                .is_empty()
        );
        let none = configured(&[], &[]);
        assert!(none.social.production_findings(None).is_empty());
    }

    #[test]
    fn the_callback_is_under_api_url_and_http_issuers_only_in_development() {
        let config = configured(&[], &[]);
        let production = config
            .social
            .oidc_settings(Some("https://api.example/"), true);
        assert_eq!(
            production.redirect_uri,
            "https://api.example/auth/oidc/callback"
        );
        assert!(!production.allow_http);
        assert!(config.social.oidc_settings(None, false).allow_http);
    }
}
