//! Passkeys (WebAuthn): the relying party the browsers' authenticators bind passkeys to, and
//! the pages allowed to run the ceremonies. Unset, both follow PUBLIC_URL.

use clap::Args;
use webauthn_rs::prelude::Url;

use crate::infrastructure::security::WebauthnSettings;

#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Passkeys")]
pub struct WebauthnConfig {
    /// The WebAuthn relying party id: the domain passkeys are bound to, PUBLIC_URL's host or a
    /// parent domain of it (`example.com` for `https://app.example.com`). Defaults to
    /// PUBLIC_URL's host (`localhost` in development). Changing it later orphans every
    /// passkey registered before.
    #[arg(long, env = "WEBAUTHN_RP_ID", global = true)]
    pub webauthn_rp_id: Option<String>,

    /// The name authenticators show for this service.
    #[arg(
        long,
        env = "WEBAUTHN_RP_NAME",
        default_value = "authgraph",
        global = true
    )]
    pub webauthn_rp_name: String,

    /// The origins of the pages that run passkey ceremonies, comma-separated
    /// (`https://app.example.com`), each on WEBAUTHN_RP_ID or a subdomain of it; `http://`
    /// only for `localhost`. Defaults to PUBLIC_URL's origin.
    #[arg(long, env = "WEBAUTHN_ORIGINS", value_delimiter = ',', global = true)]
    pub webauthn_origins: Vec<String>,
}

impl WebauthnConfig {
    /// The relying party's settings, the defaults taken from `public_url`.
    pub fn settings(&self, public_url: &str) -> anyhow::Result<WebauthnSettings> {
        let public = Url::parse(public_url)
            .map_err(|e| anyhow::anyhow!("PUBLIC_URL is not a URL ({e}): `{public_url}`"))?;
        let rp_id = match &self.webauthn_rp_id {
            Some(id) => id.trim().to_ascii_lowercase(),
            None => public
                .host_str()
                .ok_or_else(|| anyhow::anyhow!("PUBLIC_URL has no host: `{public_url}`"))?
                .to_ascii_lowercase(),
        };
        let origins = if self.webauthn_origins.is_empty() {
            vec![public.origin().ascii_serialization()]
        } else {
            self.webauthn_origins
                .iter()
                .map(|o| o.trim().trim_end_matches('/').to_owned())
                .filter(|o| !o.is_empty())
                .collect()
        };
        Ok(WebauthnSettings {
            rp_id,
            rp_name: self.webauthn_rp_name.clone(),
            origins,
        })
    }

    /// What production refuses: an origin that is not `https://`, an RP id that is neither
    /// PUBLIC_URL's host nor a parent domain of it, and a PUBLIC_URL whose origin is not
    /// among the origins (its pages could not use passkeys).
    pub(super) fn production_findings(&self, public_url: &str) -> Vec<String> {
        let Ok(settings) = self.settings(public_url) else {
            return Vec::new(); // refused at startup in every mode
        };
        let mut found = Vec::new();
        for origin in &settings.origins {
            if !origin.starts_with("https://") {
                found.push(format!(
                    "WEBAUTHN_ORIGINS has `{origin}`: passkey ceremonies need https:// pages"
                ));
            }
        }
        let public = Url::parse(public_url).ok();
        let host = public
            .as_ref()
            .and_then(Url::host_str)
            .unwrap_or_default()
            .to_ascii_lowercase();
        if host != settings.rp_id && !host.ends_with(&format!(".{}", settings.rp_id)) {
            found.push(format!(
                "WEBAUTHN_RP_ID is `{}`, which is neither PUBLIC_URL's host `{host}` nor a \
                 parent domain of it: the frontend could not use its passkeys",
                settings.rp_id
            ));
        }
        if let Some(public) = public {
            let origin = public.origin().ascii_serialization();
            if !settings.origins.contains(&origin) {
                found.push(format!(
                    "WEBAUTHN_ORIGINS does not list PUBLIC_URL's origin `{origin}`: its pages \
                     could not use passkeys"
                ));
            }
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(rp_id: Option<&str>, origins: &[&str]) -> WebauthnConfig {
        WebauthnConfig {
            webauthn_rp_id: rp_id.map(Into::into),
            webauthn_rp_name: "authgraph".into(),
            webauthn_origins: origins.iter().map(|o| (*o).to_owned()).collect(),
        }
    }

    #[test]
    fn defaults_follow_public_url() {
        let settings = config(None, &[])
            .settings("http://localhost:3000/app")
            .unwrap();
        assert_eq!(settings.rp_id, "localhost");
        assert_eq!(settings.origins, ["http://localhost:3000"]);
    }

    #[test]
    fn production_refuses_what_browsers_would() {
        let public = "https://app.example.com";
        assert!(config(None, &[]).production_findings(public).is_empty());
        assert!(
            config(Some("example.com"), &["https://app.example.com"])
                .production_findings(public)
                .is_empty()
        );
        assert_eq!(
            config(Some("other.com"), &["https://app.example.com"])
                .production_findings(public)
                .len(),
            1
        );
        assert_eq!(
            config(None, &["http://app.example.com"])
                .production_findings(public)
                .len(),
            2
        );
    }
}
