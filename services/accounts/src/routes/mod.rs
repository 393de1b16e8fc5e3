//! The accounts service's HTTP API (documented in the crate's docs).

mod accounts;
mod movements;
mod statement;

use axum::{
    Router,
    routing::{get, post},
};
use events::account_key;
use superclient::{ActingUser, ApiError, Ctx};

use crate::{Accounts, store};

pub fn router() -> Router<Ctx<Accounts>> {
    Router::new()
        .route("/accounts", get(accounts::list))
        .route("/accounts/{account_id}", get(accounts::show))
        .route("/accounts/{account_id}/deposits", post(movements::deposit))
        .route(
            "/accounts/{account_id}/withdrawals",
            post(movements::withdraw),
        )
        .route("/accounts/{account_id}/statement", get(statement::show))
}

/// Reads an account id from the path.
fn account_id(text: &str) -> Result<i64, ApiError> {
    text.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| ApiError::invalid("an account id is a positive whole number"))
}

fn no_account(account_id: i64) -> ApiError {
    ApiError::not_found(format!("no account {account_id}"))
}

/// The account, if the acting user may see it; anyone else's is answered
/// exactly like one that does not exist. Either way the account is first
/// brought up to date with the bus (one round trip), so what is shown is
/// current, and both answers cost the same.
async fn visible_account(
    ctx: &Ctx<Accounts>,
    acting: &ActingUser,
    account_id: i64,
) -> Result<store::AccountRow, ApiError> {
    if let Err(error) = ctx.refresh(&[account_key(account_id)]).await {
        // What the tables have is still worth showing.
        tracing::warn!(account_id, %error, "could not bring an account up to date");
    }
    store::account(ctx.db(), account_id)
        .await?
        .filter(|account| acting.may_access(&account.username))
        .ok_or_else(|| no_account(account_id))
}
