//! The transactions service's HTTP API (documented in the crate's docs).

mod create;
mod lists;

use axum::{
    Json, Router,
    extract::{Path, State},
    routing::get,
};
use superclient::{ActingUser, ApiError, Ctx};

use crate::{Transactions, store};

pub fn router() -> Router<Ctx<Transactions>> {
    Router::new()
        .route("/transfers", get(lists::list).post(create::create))
        .route("/transfers/{transaction_id}", get(show))
}

async fn show(
    State(ctx): State<Ctx<Transactions>>,
    acting: ActingUser,
    Path(id): Path<String>,
) -> Result<Json<store::TransferRow>, ApiError> {
    let id = id
        .parse::<i64>()
        .map_err(|_| ApiError::invalid("a transfer id is a whole number"))?;
    let transfer = store::transfer(ctx.db(), id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no transfer {id}")))?;
    let receiver = store::owner(ctx.db(), transfer.to_account_id).await?;
    let visible = acting.may_access(&transfer.username)
        || receiver.is_some_and(|owner| owner == acting.username);
    if !visible {
        return Err(ApiError::forbidden("that transfer belongs to other users"));
    }
    Ok(Json(transfer))
}
