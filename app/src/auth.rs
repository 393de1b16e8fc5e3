//! Signing up, logging in and logging out, and who is logged in.
//!
//! The users service checks the password (and throttles guesses per
//! username and per address: the browser's address is passed on); the web
//! server keeps the user token it answers with in the session. A wrong
//! username and a wrong password get the same message.

use leptos::prelude::*;
use leptos_router::components::A;
use serde::{Deserialize, Serialize};

use crate::{
    error::AppError,
    forms::{Field, FormKey, action_error, form_key},
    pages::{FormError, query_param},
};

/// Who is logged in, as the pages show them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserSummary {
    pub username: String,
    pub display_name: String,
    pub staff: bool,
}

/// The person logged in to this browser, if any.
#[server(endpoint = "current_user")]
pub async fn current_user() -> Result<Option<UserSummary>, AppError> {
    use crate::server::{session, state};
    let session = session::current_session().await?;
    let user = session::user_of(&session, &state::services()?).await?;
    Ok(user.map(|user| UserSummary {
        username: user.username,
        display_name: user.display_name,
        staff: user.staff,
    }))
}

/// Where to go after logging in: a path of this site, else the accounts.
/// Only visible ASCII: browsers drop tabs and newlines from URLs, so
/// `/<tab>/evil.example` would become another site's `//evil.example`.
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(path)
            if path.starts_with('/')
                && !path.starts_with("//")
                && path
                    .bytes()
                    .all(|byte| byte.is_ascii_graphic() && byte != b'\\') =>
        {
            path.to_owned()
        }
        _ => "/accounts".to_owned(),
    }
}

#[server(endpoint = "log_in")]
pub async fn log_in(
    username: String,
    password: String,
    next: Option<String>,
) -> Result<(), AppError> {
    use crate::server::{
        services::{CallFor, ServiceError},
        session::{self, Issued, SessionUser},
        state,
    };
    let username = username.trim().to_owned();
    if username.is_empty() || password.is_empty() {
        return Err(AppError::Refused(
            "enter your username and password".to_owned(),
        ));
    }
    let session = session::current_session().await?;
    let call = CallFor {
        client_address: session::client_address().await,
        ..CallFor::default()
    };
    let credentials = serde_json::json!({ "username": username, "password": password });
    let answer = state::services()?
        .users::<Issued>(
            reqwest::Method::POST,
            "/sessions",
            &call,
            Some(&credentials),
        )
        .await;
    match answer {
        Ok(issued) => {
            session::begin(&session, &SessionUser::from_issued(issued)).await?;
            leptos_axum::redirect(&safe_next(next.as_deref()));
            Ok(())
        }
        Err(error) if error.code() == Some("wrong_credentials") => Err(AppError::Refused(
            "the username or password is not right".to_owned(),
        )),
        Err(ServiceError::Api {
            code, retry_after, ..
        }) if code == "too_many_attempts" => Err(AppError::Refused(format!(
            "too many attempts to log in; try again in {} seconds",
            retry_after.unwrap_or(60)
        ))),
        Err(error) => Err(error.into()),
    }
}

#[server(endpoint = "sign_up")]
pub async fn sign_up(
    username: String,
    display_name: String,
    password: String,
    form_key: String,
) -> Result<(), AppError> {
    use crate::server::{
        services::CallFor,
        session::{self, Issued, SessionUser},
        state,
    };
    let username = username.trim().to_owned();
    let display_name = display_name.trim().to_owned();
    if username.is_empty() {
        return Err(AppError::invalid("username", "choose a username"));
    }
    if display_name.is_empty() {
        return Err(AppError::invalid("display_name", "enter your name"));
    }
    if password.chars().count() < 10 {
        return Err(AppError::invalid(
            "password",
            "use a password of at least 10 characters",
        ));
    }
    let services = state::services()?;
    let session = session::current_session().await?;
    let address = session::client_address().await;
    let signup = CallFor {
        client_address: address,
        idempotency_key: Some(&form_key),
        ..CallFor::default()
    };
    let body = serde_json::json!({
        "username": username, "display_name": display_name, "password": password,
    });
    let created = services
        .users::<serde_json::Value>(reqwest::Method::POST, "/users", &signup, Some(&body))
        .await;
    match created {
        Ok(_) => {}
        Err(error) if error.code() == Some("username_taken") => {
            return Err(AppError::invalid("username", "that username is taken"));
        }
        Err(error) => return Err(error.into()),
    }
    let credentials = serde_json::json!({ "username": username, "password": password });
    let login = CallFor {
        client_address: address,
        ..CallFor::default()
    };
    let issued: Issued = services
        .users(
            reqwest::Method::POST,
            "/sessions",
            &login,
            Some(&credentials),
        )
        .await?;
    session::begin(&session, &SessionUser::from_issued(issued)).await?;
    // The first account is being opened: the overview shows it pending.
    session::set_opening_accounts(&session, true).await?;
    leptos_axum::redirect("/accounts");
    Ok(())
}

#[server(endpoint = "log_out")]
pub async fn log_out() -> Result<(), AppError> {
    use crate::server::session;
    session::end(&session::current_session().await?).await?;
    leptos_axum::redirect("/");
    Ok(())
}

#[component]
pub fn LoginPage() -> impl IntoView {
    let log_in = expect_context::<ServerAction<LogIn>>();
    let next = query_param("next");
    let error = action_error(log_in);
    view! {
        <section class="card narrow" aria-labelledby="login-title">
            <h1 id="login-title">"Log in"</h1>
            <ActionForm action=log_in>
                <input type="hidden" name="next" value=move || next.get() />
                <Field name="username" label="Username" autocomplete="username" />
                <Field
                    name="password"
                    label="Password"
                    kind="password"
                    autocomplete="current-password"
                />
                <FormError error=Signal::derive(move || error.get().map(|e| e.to_string())) />
                <button type="submit" disabled=move || log_in.pending().get()>
                    "Log in"
                </button>
            </ActionForm>
            <p>"New to Ledgerline? " <A href="/signup">"Open an account"</A></p>
        </section>
    }
}

#[component]
pub fn SignupPage() -> impl IntoView {
    let sign_up = expect_context::<ServerAction<SignUp>>();
    let key = form_key(sign_up);
    let error = action_error(sign_up);
    let field_error = move |field: &'static str| {
        Signal::derive(move || error.get().and_then(|e| e.for_field(field)))
    };
    view! {
        <section class="card narrow" aria-labelledby="signup-title">
            <h1 id="signup-title">"Open an account"</h1>
            <p>"You get a current account straight away, and can open more later."</p>
            <ActionForm action=sign_up>
                <FormKey key />
                <Field
                    name="username"
                    label="Username"
                    autocomplete="username"
                    hint="3 to 32 lowercase letters, digits or _"
                    error=field_error("username")
                />
                <Field
                    name="display_name"
                    label="Your name"
                    autocomplete="name"
                    error=field_error("display_name")
                />
                <Field
                    name="password"
                    label="Password"
                    kind="password"
                    autocomplete="new-password"
                    hint="At least 10 characters"
                    error=field_error("password")
                />
                <FormError error=Signal::derive(move || error.get().and_then(|e| e.for_form())) />
                <button type="submit" disabled=move || sign_up.pending().get()>
                    "Open my account"
                </button>
            </ActionForm>
            <p>"Already a customer? " <A href="/login">"Log in"</A></p>
        </section>
    }
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn only_paths_of_this_site_are_followed_after_logging_in() {
        assert_eq!(
            safe_next(Some("/accounts/7?from=2026-01-01")),
            "/accounts/7?from=2026-01-01"
        );
        for elsewhere in [
            None,
            Some(""),
            Some("https://evil.example"),
            Some("//evil.example"),
            Some("/\t/evil.example"),
            Some("/\\evil.example"),
            Some("/\n"),
            Some("/a b"),
            Some("/é"),
        ] {
            assert_eq!(safe_next(elsewhere), "/accounts", "{elsewhere:?}");
        }
    }
}
