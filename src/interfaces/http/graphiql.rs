//! GraphiQL, served entirely from this binary: the page loads nothing from a CDN, so it works
//! offline, air-gapped and under a strict Content-Security-Policy. The vendored bundles are
//! made by `scripts/vendor-graphiql.sh`.

use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

/// Part of every asset URL, so browsers may cache assets forever and a new bundle gets a new URL.
const VERSION: &str = "3.8.3-2";

/// GraphiQL needs inline styles (it uses emotion) and data: fonts; nothing else is allowed.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self' 'unsafe-inline'; font-src 'self' data:; img-src 'self' data:; \
     connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The GraphiQL page.
pub fn page() -> Response {
    let html = include_str!("../../../assets/graphiql/index.html").replace("{{VERSION}}", VERSION);
    let mut response = Html(html).into_response();
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    response
}

/// One of the page's scripts or stylesheets.
pub async fn asset(Path((version, file)): Path<(String, String)>, headers: HeaderMap) -> Response {
    const JS: &str = "text/javascript; charset=utf-8";
    const CSS: &str = "text/css; charset=utf-8";
    let (content_type, body, gzipped): (&str, &'static [u8], bool) = match file.as_str() {
        "app.js" => (JS, include_bytes!("../../../assets/graphiql/app.js"), false),
        "graphiql.min.js" => (
            JS,
            include_bytes!("../../../assets/graphiql/graphiql.min.js.gz"),
            true,
        ),
        "graphiql.min.css" => (
            CSS,
            include_bytes!("../../../assets/graphiql/graphiql.min.css.gz"),
            true,
        ),
        "react.production.min.js" => (
            JS,
            include_bytes!("../../../assets/graphiql/react.production.min.js.gz"),
            true,
        ),
        "react-dom.production.min.js" => (
            JS,
            include_bytes!("../../../assets/graphiql/react-dom.production.min.js.gz"),
            true,
        ),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    if version != VERSION {
        return StatusCode::NOT_FOUND.into_response();
    }
    // The bundles are stored compressed only. Every browser accepts gzip, and a request with
    // no Accept-Encoding accepts any coding (RFC 9110 §12.5.3).
    if gzipped && !accepts_gzip(&headers) {
        return super::problem::problem(
            StatusCode::NOT_ACCEPTABLE,
            crate::interfaces::graphql::error::code::GRAPHQL_PARSE_FAILED,
            "This asset is only available gzip-compressed.",
            None,
        );
    }
    let mut response = body.into_response();
    let response_headers = response.headers_mut();
    response_headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response_headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    if gzipped {
        response_headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    response
}

fn accepts_gzip(headers: &HeaderMap) -> bool {
    let Some(accepted) = headers.get(header::ACCEPT_ENCODING) else {
        return true;
    };
    accepted
        .to_str()
        .unwrap_or_default()
        .split(',')
        .any(|coding| {
            let mut parts = coding.split(';');
            let name = parts.next().unwrap_or_default().trim();
            let quality = parts
                .find_map(|p| p.trim().strip_prefix("q="))
                .and_then(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            (name.eq_ignore_ascii_case("gzip") || name == "*") && quality > 0.0
        })
}
