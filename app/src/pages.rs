//! What every page shares: the not-found page, how a page shows a server
//! function's error, and the query parameters pages read.

use leptos::prelude::*;
use leptos_router::{
    components::Redirect,
    hooks::{use_location, use_query_map},
};

use crate::error::AppError;

/// The answer for a page that does not exist, and for anything that is
/// not the person's: the same page and status, so nobody can tell which.
#[component]
pub fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        response.set_status(axum::http::StatusCode::NOT_FOUND);
    }

    view! {
        <section class="card">
            <h1>"Page not found"</h1>
            <p>"There is no page at this address. " <a href="/">"Go to the home page"</a> "."</p>
        </section>
    }
}

/// Shows a page-level error: the log-in page when no one is logged in,
/// the not-found page for what is missing or not theirs, else the message.
#[component]
pub fn PageError(error: AppError) -> impl IntoView {
    match error {
        AppError::NotSignedIn => {
            let location = use_location();
            let here = format!(
                "{}{}",
                location.pathname.get_untracked(),
                location.search.get_untracked()
            );
            let path = format!("/login?next={}", encode_query_value(&here));
            view! { <Redirect path /> }.into_any()
        }
        AppError::NotFound => view! { <NotFound /> }.into_any(),
        // Bad input in the address (a filter, a date): the person's to fix.
        AppError::Invalid { message, .. } => {
            #[cfg(feature = "ssr")]
            if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
                response.set_status(axum::http::StatusCode::BAD_REQUEST);
            }
            view! {
                <section class="card">
                    <p class="error" role="alert" data-testid="input-error">{message}</p>
                </section>
            }
            .into_any()
        }
        other => {
            #[cfg(feature = "ssr")]
            if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
                response.set_status(axum::http::StatusCode::SERVICE_UNAVAILABLE);
            }
            view! {
            <section class="card">
                <p class="error" role="alert">{other.to_string()}</p>
            </section>
            }
            .into_any()
        }
    }
}

/// A form-wide error message, announced when it appears.
#[component]
pub fn FormError(error: Signal<Option<String>>) -> impl IntoView {
    view! {
        <p class="error" role="alert" data-testid="form-error">
            {move || error.get()}
        </p>
    }
}

/// A query parameter of the current URL, empty when absent.
pub fn query_param(name: &'static str) -> Memo<String> {
    let query = use_query_map();
    Memo::new(move |_| query.read().get(name).unwrap_or_default())
}

/// Percent-encodes a value for a query string.
pub fn encode_query_value(value: &str) -> String {
    let mut encoded = String::with_capacity(value.len());
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                encoded.push(byte as char)
            }
            other => encoded.push_str(&format!("%{other:02X}")),
        }
    }
    encoded
}
