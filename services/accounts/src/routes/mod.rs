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

/// The account, if the acting user may see it. An account the bus has
/// but these tables do not yet (just created, by another instance) is
/// caught up on first.
async fn owned_account(
    ctx: &Ctx<Accounts>,
    acting: &ActingUser,
    account_id: i64,
) -> Result<store::AccountRow, ApiError> {
    let account = match store::account(ctx.db(), account_id).await? {
        Some(account) => Some(account),
        None => {
            ctx.refresh(&[account_key(account_id)]).await?;
            store::account(ctx.db(), account_id).await?
        }
    };
    let account = account.ok_or_else(|| ApiError::not_found(format!("no account {account_id}")))?;
    acting.require_access(&account.username, "that account")?;
    Ok(account)
}
