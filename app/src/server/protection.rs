//! What every response carries and every change must prove.
//!
//! - Security headers on every response: a Content Security Policy (pages
//!   set their own, with the nonce of their inline scripts), no MIME
//!   sniffing, no framing, no referrer across sites.
//! - A request that changes something (anything but GET and HEAD, and the
//!   live socket's upgrade) must come from this site: its `Origin` must be
//!   the site's own. Browsers send `Origin` on every such request, so a
//!   page on another site cannot make a logged-in person's browser act.

use axum::{
    extract::Request,
    http::{
        HeaderMap, HeaderValue, Method, StatusCode,
        header::{self, HeaderName},
    },
    middleware::Next,
    response::{IntoResponse, Response},
};

/// For responses that are not pages (server functions, files, errors).
pub const DEFAULT_CSP: &str =
    "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// A page's policy: its own scripts (the hydration code and inline scripts
/// with this nonce), its own styles, and sockets back to this site (and to
/// `also_connect`, the development watcher's reload socket).
pub fn page_csp(nonce: &str, also_connect: Option<&str>) -> String {
    let also_connect = also_connect
        .map(|url| format!(" {url}"))
        .unwrap_or_default();
    format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; \
         style-src 'self'; img-src 'self' data:; connect-src 'self'{also_connect}; \
         frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'"
    )
}

/// Adds the security headers, keeping a page's own policy.
pub async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers
        .entry(header::CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static(DEFAULT_CSP));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(
        HeaderName::from_static("cross-origin-opener-policy"),
        HeaderValue::from_static("same-origin"),
    );
    response
}

/// Refuses a change whose `Origin` is not this site.
pub async fn same_origin(request: Request, next: Next) -> Response {
    let safe = matches!(*request.method(), Method::GET | Method::HEAD);
    let upgrade = request.headers().contains_key(header::UPGRADE);
    if (safe && !upgrade) || from_this_site(request.headers()) {
        return next.run(request).await;
    }
    (
        StatusCode::FORBIDDEN,
        "this request must come from a page of this site\n",
    )
        .into_response()
}

/// True when `Origin` names the host the request was sent to.
fn from_this_site(headers: &HeaderMap) -> bool {
    let (Some(origin), Some(host)) = (
        headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()),
        headers.get(header::HOST).and_then(|v| v.to_str().ok()),
    ) else {
        return false;
    };
    let origin_host = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"));
    origin_host == Some(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(origin: Option<&str>, host: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, host.parse().unwrap());
        if let Some(origin) = origin {
            headers.insert(header::ORIGIN, origin.parse().unwrap());
        }
        headers
    }

    #[test]
    fn only_this_sites_origin_may_change_things() {
        assert!(from_this_site(&headers(
            Some("http://127.0.0.1:3000"),
            "127.0.0.1:3000"
        )));
        assert!(from_this_site(&headers(
            Some("https://bank.example"),
            "bank.example"
        )));
        for origin in [
            None,
            Some("http://evil.example"),
            Some("http://127.0.0.1:3001"),
            Some("null"),
            Some("http://127.0.0.1:3000.evil.example"),
        ] {
            assert!(
                !from_this_site(&headers(origin, "127.0.0.1:3000")),
                "{origin:?}"
            );
        }
    }
}
