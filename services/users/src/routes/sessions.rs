//! Logging in: a signed user token for the right password, and renewing it.

use axum::{
    Json,
    extract::{State, rejection::JsonRejection},
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;
use superclient::{ActingUser, ApiError, ClientAddress, Ctx};
use trust::user_token::{Issued, MAX_SESSION, Role};

use super::UserView;
use crate::{Users, store, throttle::TryLater};

#[derive(Deserialize)]
pub struct Credentials {
    username: String,
    password: String,
}

fn wrong() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "wrong_credentials",
        "wrong username or password",
    )
}

pub async fn log_in(
    State(ctx): State<Ctx<Users>>,
    ClientAddress(address): ClientAddress,
    body: Result<Json<Credentials>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(credentials) = body?;
    let users = ctx.service();
    let attempt = match users.throttle.begin(&credentials.username, address) {
        Ok(attempt) => attempt,
        Err(wait) => return Ok(throttled(&credentials.username, address, wait)),
    };
    let busy = |error: crate::password::PasswordError| ApiError::unavailable(error.to_string());
    let (user, role) = match users
        .staff
        .as_ref()
        .filter(|s| s.username == credentials.username)
    {
        Some(staff) => {
            let hash = staff.password_hash.clone();
            if !users
                .passwords
                .verify(credentials.password, hash)
                .await
                .map_err(busy)?
            {
                attempt.failed();
                return Err(wrong());
            }
            let view = users.staff_view(&credentials.username).ok_or_else(wrong)?;
            (view, Role::Staff)
        }
        None => {
            let user = store::user(ctx.db(), &credentials.username).await?;
            let hash = user.as_ref().map(|u| u.password_hash.clone());
            if !users
                .passwords
                .verify_or_decoy(credentials.password, hash)
                .await
                .map_err(busy)?
            {
                attempt.failed();
                return Err(wrong());
            }
            let user = user.ok_or_else(wrong)?;
            let view = UserView {
                username: user.username,
                display_name: user.display_name,
                staff: false,
            };
            (view, Role::Customer)
        }
    };
    if let Err(wait) = attempt.succeeded() {
        return Ok(throttled(&user.username, address, wait));
    }
    tracing::info!(username = %user.username, ?role, "logged in");
    let issued = issue(&ctx, &user.username, role, Utc::now())?;
    Ok(answer(issued, user).into_response())
}

fn throttled(username: &str, address: std::net::IpAddr, TryLater(wait): TryLater) -> Response {
    tracing::warn!(%username, %address, "log-in attempts throttled");
    let seconds = wait.as_secs().max(1);
    let error = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_attempts",
        format!("too many log-in attempts; try again in {seconds} seconds"),
    );
    let mut response = error.into_response();
    if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

/// A fresh token for the same log-in, while it is young enough.
pub async fn renew(
    State(ctx): State<Ctx<Users>>,
    acting: ActingUser,
) -> Result<Response, ApiError> {
    let logged_in = DateTime::from_timestamp(acting.auth_time, 0).ok_or_else(ApiError::internal)?;
    if Utc::now() - logged_in > chrono::Duration::from_std(MAX_SESSION).unwrap_or_default() {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "session_expired",
            "the session is over; log in again",
        ));
    }
    let (user, role) = if acting.staff {
        let view = ctx
            .service()
            .staff_view(&acting.username)
            .ok_or_else(ApiError::internal)?;
        (view, Role::Staff)
    } else {
        let user = store::user(ctx.db(), &acting.username)
            .await?
            .ok_or_else(|| ApiError::unauthorized("no such user"))?;
        let view = UserView {
            username: user.username,
            display_name: user.display_name,
            staff: false,
        };
        (view, Role::Customer)
    };
    let issued = issue(&ctx, &user.username, role, logged_in)?;
    Ok(answer(issued, user).into_response())
}

fn issue(
    ctx: &Ctx<Users>,
    username: &str,
    role: Role,
    auth_time: DateTime<Utc>,
) -> Result<Issued, ApiError> {
    ctx.service()
        .issuer
        .issue(username, role, auth_time)
        .map_err(|error| {
            tracing::error!(%error, "could not sign a user token");
            ApiError::internal()
        })
}

fn answer(issued: Issued, user: UserView) -> (StatusCode, Json<serde_json::Value>) {
    (
        StatusCode::OK,
        Json(json!({"token": issued.token, "expires_at": issued.expires_at, "user": user})),
    )
}
