//! Claims for GraphQL engines: the preset an engine reads (Hasura, PostGraphile), the claims
//! hook that adds to it, and the resource servers that may introspect tokens.

use std::time::Duration;

use anyhow::Context;
use clap::{Args, ValueEnum};
use secrecy::{ExposeSecret, SecretString};

use super::production::{MIN_SECRET_BITS, estimated_bits};
use super::secret;
use crate::application::{ClaimsPolicy, ClaimsPreset, DatabaseRoles, HookFailure};
use crate::infrastructure::claims_hook::{HookSettings, HttpClaimsHook, parse_hook_secret};
use crate::interfaces::http::IntrospectionClients;

/// Which engine's claims access tokens carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ClaimsPresetName {
    /// The registered claims only (and what a claims hook adds).
    None,
    /// Hasura's namespace object (`x-hasura-allowed-roles`, `x-hasura-default-role`,
    /// `x-hasura-user-id`).
    Hasura,
    /// PostGraphile and PostgreSQL row-level security: `role` (from DATABASE_ROLES) and
    /// `user_id`.
    Postgraphile,
}

/// What to do when the claims hook fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum HookFailureName {
    /// Refuse the sign-in, refresh or step-up with SERVICE_UNAVAILABLE.
    Closed,
    /// Sign the token without the hook's claims, and count the failure.
    Open,
}

#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Claims for GraphQL engines")]
pub struct ClaimsConfig {
    /// The claims access tokens carry for a GraphQL engine: `none`, `hasura` or
    /// `postgraphile` (see docs/graphql-engines.md).
    #[arg(
        long,
        env = "TOKEN_CLAIMS_PRESET",
        value_enum,
        default_value = "none",
        ignore_case = true,
        global = true
    )]
    pub token_claims_preset: ClaimsPresetName,

    /// The claim that holds Hasura's session variables (Hasura's `claims_namespace`).
    #[arg(
        long,
        env = "HASURA_CLAIMS_NAMESPACE",
        default_value = "https://hasura.io/jwt/claims",
        global = true
    )]
    pub hasura_claims_namespace: String,

    /// The database role each account role acts as, for the `role` claim of the
    /// `postgraphile` preset: `user:app_user,admin:app_admin` (both roles required).
    #[arg(long, env = "DATABASE_ROLES", value_delimiter = ',', global = true)]
    pub database_roles: Vec<String>,

    /// A URL the service POSTs to before it signs an access token (sign-in, refresh,
    /// step-up), with the user, the session and the authentication methods; the answer's
    /// `claims` are added to the token (see docs/graphql-engines.md). Unset: no hook.
    #[arg(long, env = "CLAIMS_HOOK_URL", global = true)]
    pub claims_hook_url: Option<String>,

    /// The Standard Webhooks secret (`whsec_…`, base64 of 24 or more random bytes) that signs
    /// the hook's requests; required with CLAIMS_HOOK_URL.
    #[arg(
        long,
        env = "CLAIMS_HOOK_SECRET",
        hide_env_values = true,
        value_parser = secret,
        global = true
    )]
    pub claims_hook_secret: Option<SecretString>,

    /// How long the service waits for the claims hook's answer, connecting included.
    #[arg(long, env = "CLAIMS_HOOK_TIMEOUT", default_value = "2s", value_parser = humantime::parse_duration, global = true)]
    pub claims_hook_timeout: Duration,

    /// The resource servers that may call `POST /oauth/introspect`, as `id:secret`
    /// (comma-separated); each authenticates with HTTP Basic. Unset: introspection refuses
    /// every caller.
    #[arg(
        long,
        env = "INTROSPECTION_CLIENTS",
        value_delimiter = ',',
        hide_env_values = true,
        value_parser = secret,
        global = true
    )]
    pub introspection_clients: Vec<SecretString>,

    /// What happens when the claims hook fails: `closed` (the sign-in answers
    /// SERVICE_UNAVAILABLE) or `open` (the token is signed without the hook's claims, and the
    /// failure is counted).
    #[arg(
        long,
        env = "CLAIMS_HOOK_FAILURE",
        value_enum,
        default_value = "closed",
        ignore_case = true,
        global = true
    )]
    pub claims_hook_failure: HookFailureName,
}

impl ClaimsConfig {
    /// How claims are computed; refuses a preset whose settings are missing or malformed.
    pub fn policy(&self) -> anyhow::Result<ClaimsPolicy> {
        let preset = match self.token_claims_preset {
            ClaimsPresetName::None => ClaimsPreset::None,
            ClaimsPresetName::Hasura => {
                let namespace = self.hasura_claims_namespace.trim();
                anyhow::ensure!(
                    !namespace.is_empty()
                        && !crate::application::claims::REGISTERED_CLAIMS.contains(&namespace),
                    "HASURA_CLAIMS_NAMESPACE must name a claim of its own, such as \
                     https://hasura.io/jwt/claims"
                );
                ClaimsPreset::Hasura {
                    namespace: namespace.to_owned(),
                }
            }
            ClaimsPresetName::Postgraphile => ClaimsPreset::Postgraphile {
                roles: self.database_roles()?,
            },
        };
        Ok(ClaimsPolicy {
            preset,
            hook_failure: match self.claims_hook_failure {
                HookFailureName::Closed => HookFailure::Closed,
                HookFailureName::Open => HookFailure::Open,
            },
        })
    }

    /// The claims hook, when CLAIMS_HOOK_URL is set; refuses a URL or secret it cannot use.
    pub fn hook(&self) -> anyhow::Result<Option<HttpClaimsHook>> {
        let Some(url) = &self.claims_hook_url else {
            anyhow::ensure!(
                self.claims_hook_secret.is_none(),
                "CLAIMS_HOOK_SECRET is set but CLAIMS_HOOK_URL is not"
            );
            return Ok(None);
        };
        let url = reqwest::Url::parse(url).context("CLAIMS_HOOK_URL is not a URL")?;
        anyhow::ensure!(
            matches!(url.scheme(), "https" | "http") && url.host().is_some(),
            "CLAIMS_HOOK_URL must be an https:// (or, in development, http://) URL"
        );
        let secret = self
            .claims_hook_secret
            .as_ref()
            .context("CLAIMS_HOOK_URL is set: set CLAIMS_HOOK_SECRET (whsec_…) too")?;
        let secret = parse_hook_secret(secret.expose_secret())?;
        anyhow::ensure!(
            !self.claims_hook_timeout.is_zero(),
            "CLAIMS_HOOK_TIMEOUT must be more than zero"
        );
        let hook = HttpClaimsHook::new(HookSettings {
            url,
            secret,
            timeout: self.claims_hook_timeout,
        })
        .context("cannot build the claims hook's HTTP client")?;
        Ok(Some(hook))
    }

    /// The resource servers that may introspect tokens; refuses a malformed entry.
    pub fn introspection_clients(&self) -> anyhow::Result<IntrospectionClients> {
        IntrospectionClients::parse(&self.introspection_clients).map_err(anyhow::Error::msg)
    }

    /// What production refuses: a hook reached over plain HTTP (its answers decide what
    /// tokens grant), an introspection secret that could be guessed.
    pub fn production_findings(&self) -> Vec<String> {
        let mut found = Vec::new();
        for entry in &self.introspection_clients {
            if let Some((id, secret)) = entry.expose_secret().split_once(':')
                && estimated_bits(secret.as_bytes()) < MIN_SECRET_BITS
            {
                found.push(format!(
                    "INTROSPECTION_CLIENTS: the secret of `{id}` is too weak (use `openssl rand \
                     -base64 32`)"
                ));
            }
        }
        if self
            .claims_hook_url
            .as_deref()
            .is_some_and(|url| !url.starts_with("https://"))
        {
            found.push(
                "CLAIMS_HOOK_URL is not https://: the hook's answers decide what tokens grant"
                    .to_owned(),
            );
        }
        found
    }

    fn database_roles(&self) -> anyhow::Result<DatabaseRoles> {
        const USAGE: &str = "DATABASE_ROLES must map both roles, e.g. \
                             DATABASE_ROLES=user:app_user,admin:app_admin";
        let (mut user, mut admin) = (None, None);
        for entry in &self.database_roles {
            let (role, database_role) = entry.split_once(':').ok_or_else(|| {
                anyhow::anyhow!("DATABASE_ROLES entry `{entry}` is not `role:database_role`")
            })?;
            // PostGraphile runs `set role` with it: a plain identifier only.
            let valid = database_role
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
                && database_role.len() <= 63
                && database_role
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            anyhow::ensure!(
                valid,
                "DATABASE_ROLES: `{database_role}` is not a plain PostgreSQL role name \
                 (lower-case letters, digits and `_`)"
            );
            let slot = match role.trim() {
                "user" => &mut user,
                "admin" => &mut admin,
                other => anyhow::bail!("DATABASE_ROLES: unknown role `{other}` ({USAGE})"),
            };
            anyhow::ensure!(slot.is_none(), "DATABASE_ROLES names `{role}` twice");
            *slot = Some(database_role.to_owned());
        }
        match (user, admin) {
            (Some(user), Some(admin)) => Ok(DatabaseRoles { user, admin }),
            _ => anyhow::bail!("{USAGE}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::Config;
    use super::*;

    fn policy(args: &[&str]) -> anyhow::Result<ClaimsPolicy> {
        let mut all = vec!["authgraph"];
        all.extend_from_slice(args);
        Config::try_parse_from(all).unwrap().claims.policy()
    }

    #[test]
    fn no_preset_by_default_and_failing_closed() {
        assert_eq!(policy(&[]).unwrap(), ClaimsPolicy::default());
    }

    #[test]
    fn the_hasura_preset_takes_its_namespace() {
        let preset = policy(&["--token-claims-preset", "hasura"]).unwrap().preset;
        assert_eq!(
            preset,
            ClaimsPreset::Hasura {
                namespace: "https://hasura.io/jwt/claims".into()
            }
        );
        assert!(
            policy(&[
                "--token-claims-preset",
                "hasura",
                "--hasura-claims-namespace",
                "sub"
            ])
            .is_err()
        );
    }

    #[test]
    fn the_postgraphile_preset_needs_both_database_roles() {
        let preset = policy(&[
            "--token-claims-preset",
            "postgraphile",
            "--database-roles",
            "user:app_user,admin:app_admin",
        ])
        .unwrap()
        .preset;
        assert_eq!(
            preset,
            ClaimsPreset::Postgraphile {
                roles: DatabaseRoles {
                    user: "app_user".into(),
                    admin: "app_admin".into()
                }
            }
        );
        for roles in [
            "",
            "user:app_user",
            "user:app_user,admin:app_admin,user:x",
            "user:app_user,admin:postgres;drop",
            "user:app_user,admin:App",
            "user:app_user,owner:app_admin",
            "user=app_user,admin:app_admin",
        ] {
            let error = policy(&[
                "--token-claims-preset",
                "postgraphile",
                "--database-roles",
                roles,
            ]);
            assert!(error.is_err(), "{roles}");
        }
    }
}
