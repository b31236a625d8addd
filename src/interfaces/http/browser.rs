//! Browser sessions (`SESSION_COOKIES=true`): which requests carry their session in cookies,
//! the checks that keep pages of other sites from riding on those cookies (CSRF), and the
//! cookies themselves.
//!
//! The CSRF defence has layers, each enough alone against today's browsers: cookies are
//! `SameSite`; only JSON is accepted on POST, which no page of another origin can send without
//! a CORS preflight this server refuses (`graphql.rs`); GET never changes state; and, here,
//! a request from a browser must come from an allowed origin, by its `Origin` header and its
//! Fetch Metadata (`Sec-Fetch-Site`), both of which page scripts cannot forge.

use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue, header};
use clap::ValueEnum;
use cookie::{Cookie, SameSite};

use crate::interfaces::graphql::{CookieChange, CookieChanges, CookieSession, Transport};

use super::cors::CorsPolicy;

/// Whether and how browsers get their session in cookies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CookieSettings {
    /// `Secure` cookies with `__Host-` names (production). Without it (development on
    /// `http://localhost`) the names are plain and the cookies travel over plain HTTP too.
    pub secure: bool,
    pub same_site: CookieSameSite,
}

/// The `SameSite` attribute of the session cookies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum CookieSameSite {
    /// Sent on same-site requests and on top-level navigations from other sites, so a page
    /// rendered on the server knows the user when they follow a link from elsewhere.
    #[default]
    Lax,
    /// Sent on same-site requests only.
    Strict,
}

/// Why a browser request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The browser says a page of another site sent it.
    CrossSite,
    /// The page that sent it is not on an allowed origin, or does not say where it is.
    OriginNotAllowed,
}

impl Refusal {
    /// `extensions.reason` of the error.
    pub fn reason(self) -> &'static str {
        match self {
            Self::CrossSite => "CROSS_SITE_REQUEST",
            Self::OriginNotAllowed => "ORIGIN_NOT_ALLOWED",
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            Self::CrossSite => "Requests from pages of other sites are refused.",
            Self::OriginNotAllowed => {
                "Requests from this page's origin are refused: the server lists the origins \
                 browsers may call it from (CORS_ALLOWED_ORIGINS)."
            }
        }
    }
}

impl CookieSettings {
    fn access_name(&self) -> &'static str {
        if self.secure {
            "__Host-authgraph-access"
        } else {
            "authgraph-access"
        }
    }

    fn refresh_name(&self) -> &'static str {
        if self.secure {
            "__Host-authgraph-refresh"
        } else {
            "authgraph-refresh"
        }
    }

    /// How the request's session travels, or why the request is refused.
    ///
    /// A request comes from a browser when it has `Origin` or `Sec-Fetch-Site` (browsers send
    /// them, scripts cannot change them). Such a request must come from an allowed origin or
    /// from the server's own (GraphiQL), and then it uses cookies. A request with neither
    /// header that brings session cookies is a server acting for a browser (server-side
    /// rendering forwarding the browser's `Cookie` header): it uses cookies too. Anything
    /// else is a bearer-token client, as when cookies are off.
    pub fn transport(&self, headers: &HeaderMap, cors: &CorsPolicy) -> Result<Transport, Refusal> {
        let site = headers
            .get("sec-fetch-site")
            .map(|v| v.to_str().unwrap_or_default());
        let origin = headers.get(header::ORIGIN);
        let (access, refresh) = self.presented(headers);
        let from_browser = site.is_some() || origin.is_some();
        if from_browser {
            match (site, origin) {
                (Some("cross-site"), _) => return Err(Refusal::CrossSite),
                (Some("same-origin"), _) => {}
                (_, Some(origin)) if cors.allows(origin) => {}
                _ => return Err(Refusal::OriginNotAllowed),
            }
        } else if access.is_none() && refresh.is_none() {
            return Ok(Transport::Bearer);
        }
        Ok(Transport::Cookies(Arc::new(CookieSession::new(
            access, refresh,
        ))))
    }

    /// The refresh cookie's value, whatever the request's origin (the provider's redirect
    /// back to the social sign-in callback is a top-level navigation from another site).
    pub fn refresh_token(&self, headers: &HeaderMap) -> Option<String> {
        self.presented(headers).1
    }

    /// The session cookies' values, from every `Cookie` header; the first of a name wins.
    fn presented(&self, headers: &HeaderMap) -> (Option<String>, Option<String>) {
        let (mut access, mut refresh) = (None, None);
        let cookies = headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(Cookie::split_parse)
            .filter_map(Result::ok);
        for cookie in cookies {
            let slot = match cookie.name() {
                name if name == self.access_name() => &mut access,
                name if name == self.refresh_name() => &mut refresh,
                _ => continue,
            };
            if slot.is_none() && !cookie.value().is_empty() {
                *slot = Some(cookie.value().to_owned());
            }
        }
        (access, refresh)
    }

    /// `Set-Cookie` values for what the resolvers did to the session.
    pub fn set_cookie_headers(&self, changes: &CookieChanges) -> Vec<HeaderValue> {
        [
            (self.access_name(), &changes.access),
            (self.refresh_name(), &changes.refresh),
        ]
        .into_iter()
        .filter_map(|(name, change)| {
            let (value, max_age) = match change.as_ref()? {
                CookieChange::Set { value, max_age } => (value.as_str(), *max_age),
                CookieChange::Clear => ("", Duration::ZERO),
            };
            let cookie = Cookie::build((name, value))
                .http_only(true)
                .secure(self.secure)
                .same_site(match self.same_site {
                    CookieSameSite::Lax => SameSite::Lax,
                    CookieSameSite::Strict => SameSite::Strict,
                })
                // `__Host-` requires `Path=/` and no `Domain`: the cookie belongs to this host
                // alone, and no sibling subdomain can set or shadow it.
                .path("/")
                .max_age(cookie::time::Duration::seconds(
                    i64::try_from(max_age.as_secs()).unwrap_or(i64::MAX),
                ))
                .build();
            HeaderValue::from_str(&cookie.to_string()).ok()
        })
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(secure: bool) -> CookieSettings {
        CookieSettings {
            secure,
            same_site: CookieSameSite::Lax,
        }
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    fn allowed() -> CorsPolicy {
        CorsPolicy::Origins(vec!["https://app.example.com".into()])
    }

    fn tokens(transport: &Transport) -> Option<(Option<&str>, Option<&str>)> {
        match transport {
            Transport::Bearer => None,
            Transport::Cookies(session) => Some(session.presented()),
        }
    }

    #[test]
    fn a_client_without_browser_headers_or_cookies_uses_bearer_tokens() {
        let transport = settings(true).transport(&headers(&[]), &allowed()).unwrap();
        assert_eq!(tokens(&transport), None);
    }

    #[test]
    fn a_page_of_an_allowed_origin_or_of_the_server_itself_uses_cookies() {
        for request in [
            headers(&[
                ("origin", "https://app.example.com"),
                ("sec-fetch-site", "same-site"),
            ]),
            // A browser without Fetch Metadata sends at least the origin.
            headers(&[("origin", "https://app.example.com")]),
            headers(&[("sec-fetch-site", "same-origin")]),
        ] {
            let transport = settings(true).transport(&request, &allowed()).unwrap();
            assert_eq!(tokens(&transport), Some((None, None)), "{request:?}");
        }
    }

    #[test]
    fn pages_of_other_origins_and_sites_are_refused() {
        for (request, refusal) in [
            (
                headers(&[
                    ("origin", "https://evil.example.net"),
                    ("sec-fetch-site", "cross-site"),
                ]),
                Refusal::CrossSite,
            ),
            // Cross-site wins even when the origin is allowed (a browser bug or a proxy
            // would be the only way to see both).
            (
                headers(&[
                    ("origin", "https://app.example.com"),
                    ("sec-fetch-site", "cross-site"),
                ]),
                Refusal::CrossSite,
            ),
            // A sibling subdomain is the same site, but not an allowed origin.
            (
                headers(&[
                    ("origin", "https://user-content.example.com"),
                    ("sec-fetch-site", "same-site"),
                ]),
                Refusal::OriginNotAllowed,
            ),
            (headers(&[("origin", "null")]), Refusal::OriginNotAllowed),
            // A browser that hides where the request comes from.
            (
                headers(&[("sec-fetch-site", "same-site")]),
                Refusal::OriginNotAllowed,
            ),
            (
                headers(&[("sec-fetch-site", "none")]),
                Refusal::OriginNotAllowed,
            ),
        ] {
            let refused = settings(true).transport(&request, &allowed()).err();
            assert_eq!(refused, Some(refusal), "{request:?}");
        }
    }

    #[test]
    fn a_server_forwarding_a_browsers_cookies_uses_them() {
        let request = headers(&[(
            "cookie",
            "theme=dark; __Host-authgraph-access=eyJ.a.b; __Host-authgraph-refresh=r1",
        )]);
        let transport = settings(true).transport(&request, &allowed()).unwrap();
        assert_eq!(tokens(&transport), Some((Some("eyJ.a.b"), Some("r1"))));
    }

    #[test]
    fn only_the_names_of_the_mode_count_and_the_first_value_wins() {
        let request = headers(&[
            (
                "cookie",
                "authgraph-refresh=plain; __Host-authgraph-refresh=first",
            ),
            ("cookie", "__Host-authgraph-refresh=second"),
        ]);
        let transport = settings(true).transport(&request, &allowed()).unwrap();
        assert_eq!(tokens(&transport), Some((None, Some("first"))));
        let transport = settings(false).transport(&request, &allowed()).unwrap();
        assert_eq!(tokens(&transport), Some((None, Some("plain"))));
    }

    #[test]
    fn cookies_are_http_only_host_only_and_follow_the_session() {
        let changes = CookieChanges {
            access: Some(CookieChange::Set {
                value: "eyJ.a.b".into(),
                max_age: Duration::from_secs(900),
            }),
            refresh: Some(CookieChange::Clear),
        };
        let set: Vec<_> = settings(true)
            .set_cookie_headers(&changes)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect();
        assert_eq!(
            set,
            [
                "__Host-authgraph-access=eyJ.a.b; HttpOnly; SameSite=Lax; Secure; Path=/; Max-Age=900",
                "__Host-authgraph-refresh=; HttpOnly; SameSite=Lax; Secure; Path=/; Max-Age=0",
            ]
        );
        let development = settings(false).set_cookie_headers(&CookieChanges {
            access: None,
            refresh: Some(CookieChange::Clear),
        });
        assert_eq!(
            development,
            ["authgraph-refresh=; HttpOnly; SameSite=Lax; Path=/; Max-Age=0"]
        );
    }
}
