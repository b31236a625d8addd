//! Which web origins may call the API from a browser.

use axum::http::{HeaderName, HeaderValue, Method, header};
use tower_http::cors::{AllowOrigin, CorsLayer};

/// The origins browsers may call from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CorsPolicy {
    /// No cross-origin calls: no CORS headers at all (production default).
    None,
    /// Any `http(s)://localhost`, `127.0.0.1` or `[::1]` origin, on any port (development
    /// default: a frontend dev server on another port just works).
    Localhost,
    /// Exactly these origins (`*` for any).
    Origins(Vec<String>),
}

impl CorsPolicy {
    /// Whether a page of `origin` may call the API.
    pub fn allows(&self, origin: &HeaderValue) -> bool {
        match self {
            Self::None => false,
            Self::Localhost => is_localhost(origin),
            Self::Origins(origins) => origins
                .iter()
                .any(|o| o == "*" || o.trim_end_matches('/').as_bytes() == origin.as_bytes()),
        }
    }

    /// Whether any origin at all is allowed (`*`), which cookie sessions must refuse.
    pub fn allows_any(&self) -> bool {
        matches!(self, Self::Origins(origins) if origins.iter().any(|o| o == "*"))
    }
}

/// The layer for `policy`. With `credentials` (cookie sessions), the browser may send cookies
/// from the allowed origins; never with `*` (the configuration refuses that at startup).
pub fn layer(policy: &CorsPolicy, credentials: bool) -> CorsLayer {
    let base = CorsLayer::new()
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([
            header::CONTENT_TYPE,
            header::AUTHORIZATION,
            header::ACCEPT,
            HeaderName::from_static("apollo-require-preflight"),
            HeaderName::from_static("x-apollo-operation-name"),
        ])
        .expose_headers([HeaderName::from_static("x-request-id")])
        .max_age(std::time::Duration::from_secs(3600))
        .allow_credentials(credentials && !policy.allows_any());
    match policy {
        CorsPolicy::None => CorsLayer::new(),
        CorsPolicy::Localhost => {
            base.allow_origin(AllowOrigin::predicate(|origin, _| is_localhost(origin)))
        }
        CorsPolicy::Origins(origins) if origins.iter().any(|o| o == "*") => {
            base.allow_origin(tower_http::cors::Any)
        }
        CorsPolicy::Origins(origins) => base.allow_origin(AllowOrigin::list(
            origins
                .iter()
                .filter_map(|o| HeaderValue::from_str(o.trim_end_matches('/')).ok()),
        )),
    }
}

fn is_localhost(origin: &HeaderValue) -> bool {
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    let Some(rest) = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
    else {
        return false;
    };
    let host = if rest.starts_with('[') {
        rest.split_once(']')
            .map_or(rest, |(h, _)| h)
            .trim_start_matches('[')
    } else {
        rest.split(':').next().unwrap_or(rest)
    };
    matches!(host, "localhost" | "127.0.0.1" | "::1")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_origins_count_as_localhost() {
        for yes in [
            "http://localhost:3000",
            "https://localhost",
            "http://127.0.0.1:5173",
            "http://[::1]:8080",
        ] {
            assert!(is_localhost(&HeaderValue::from_static(yes)), "{yes}");
        }
        for no in [
            "http://localhost.evil.com",
            "http://evil.com",
            "http://127.0.0.2",
            "file://localhost",
            "null",
        ] {
            assert!(!is_localhost(&HeaderValue::from_static(no)), "{no}");
        }
    }
}
