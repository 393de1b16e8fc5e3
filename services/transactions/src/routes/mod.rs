//! The transactions service's HTTP API (documented in the crate's docs).

mod create;
mod lists;

use axum::{
    Json, Router,
    extract::{Path, State},
    routing::get,
};
use superclient::{ActingUser, ApiError, Ctx};

use crate::{Transactions, store, view::TransferView};

pub fn router() -> Router<Ctx<Transactions>> {
    Router::new()
        .route("/transfers", get(lists::list).post(create::create))
        .route("/transfers/{transaction_id}", get(show))
}

/// Visible to the user who asked, the receiving account's owner and staff;
/// to anyone else it does not exist.
async fn show(
    State(ctx): State<Ctx<Transactions>>,
    acting: ActingUser,
    Path(id): Path<String>,
) -> Result<Json<TransferView>, ApiError> {
    let not_found = || ApiError::not_found(format!("no transfer {id}"));
    let transaction_id = id.parse::<i64>().map_err(|_| not_found())?;
    let transfer = store::transfer(ctx.db(), transaction_id)
        .await?
        .ok_or_else(not_found)?;
    let receiver = store::owner(ctx.db(), transfer.to_account_id).await?;
    let visible = acting.may_access(&transfer.username)
        || receiver.is_some_and(|owner| owner == acting.username);
    if !visible {
        return Err(not_found());
    }
    Ok(Json(TransferView::of(transfer, &acting)))
}
