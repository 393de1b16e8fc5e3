//! The users service's HTTP API (documented in the crate's docs).

mod accounts;
mod sessions;
mod users;

use std::time::Duration;

use axum::{
    Router,
    routing::{get, post},
};
use serde::Serialize;
use superclient::{ApiError, Ctx};
use uuid::Uuid;

use crate::{Users, store};

pub fn router() -> Router<Ctx<Users>> {
    Router::new()
        .route("/users", post(users::sign_up))
        .route("/users/{username}", get(users::show))
        .route("/sessions", post(sessions::log_in))
        .route("/sessions/renew", post(sessions::renew))
        .route(
            "/users/{username}/accounts",
            get(accounts::list).post(accounts::request),
        )
        .route("/account-requests/{request_id}", get(accounts::status))
}

/// How long a request for an account waits for the accounts service.
const ACCOUNT_WAIT: Duration = Duration::from_secs(5);

/// A user as every response shows it: never the hash.
#[derive(Debug, Serialize)]
pub struct UserView {
    pub username: String,
    pub display_name: String,
    pub staff: bool,
}

/// An account request as the API shows it.
#[derive(Debug, Serialize)]
pub struct AccountRequestView {
    pub request_id: Uuid,
    /// `pending` until the accounts service has created the account.
    pub status: &'static str,
    pub account_id: Option<i64>,
    pub requested_at: chrono::DateTime<chrono::Utc>,
}

impl From<store::RequestRow> for AccountRequestView {
    fn from(row: store::RequestRow) -> Self {
        Self {
            request_id: row.request_id,
            status: if row.account_id.is_some() {
                "created"
            } else {
                "pending"
            },
            account_id: row.account_id,
            requested_at: row.requested_at,
        }
    }
}

/// Waits (a few seconds at most) for the account of `request_id`, which
/// the accounts service creates and any instance of this one applies: the
/// table is polled, briefly. The request itself is applied already.
async fn wait_for_account(
    ctx: &Ctx<Users>,
    request_id: Uuid,
) -> Result<AccountRequestView, ApiError> {
    let deadline = tokio::time::Instant::now() + ACCOUNT_WAIT;
    loop {
        let row = store::request(ctx.db(), request_id)
            .await?
            .ok_or_else(ApiError::internal)?;
        if row.account_id.is_some() || tokio::time::Instant::now() >= deadline {
            return Ok(row.into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
