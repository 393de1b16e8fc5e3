//! The transactions service's HTTP API (documented in the crate's docs).

mod create;
mod lists;

use std::time::Duration;

use axum::{
    Json, Router,
    extract::{Path, Query, State},
    routing::get,
};
use serde::Deserialize;
use superclient::{ActingUser, ApiError, Ctx};

use crate::{Transactions, store, view::TransferView};

pub fn router() -> Router<Ctx<Transactions>> {
    Router::new()
        .route("/transfers", get(lists::list).post(create::create))
        .route("/transfers/{transaction_id}", get(show))
}

/// `?wait=S`: how long a pending transfer may be waited for.
#[derive(Deserialize)]
struct ShowParams {
    wait: Option<String>,
}

/// The longest wait for a decision a request may ask for.
const LONGEST_WAIT: u64 = 30;

/// Visible to the user who asked, the receiving account's owner and staff;
/// to anyone else it does not exist. With `wait`, a pending transfer is
/// answered when it is decided (or when the wait is over): the service
/// wakes the request when it learns of the decision (`crate::decisions`).
async fn show(
    State(ctx): State<Ctx<Transactions>>,
    acting: ActingUser,
    Path(id): Path<String>,
    Query(params): Query<ShowParams>,
) -> Result<Json<TransferView>, ApiError> {
    let not_found = || ApiError::not_found(format!("no transfer {id}"));
    let transaction_id = id.parse::<i64>().map_err(|_| not_found())?;
    let wait = params
        .wait
        .map(|wait| {
            wait.parse::<u64>()
                .ok()
                .filter(|s| (1..=LONGEST_WAIT).contains(s))
                .map(Duration::from_secs)
                .ok_or_else(|| ApiError::invalid(format!("wait is 1 to {LONGEST_WAIT} (seconds)")))
        })
        .transpose()?;
    // Queued before the first read, so that a decision committed after it
    // wakes this request.
    let waiter = match wait {
        Some(_) => Some(
            ctx.service()
                .decisions
                .queue(ctx.db(), transaction_id)
                .await?,
        ),
        None => None,
    };
    let decided = waiter.as_ref().map(|waiter| waiter.decided());
    let mut transfer = store::transfer(ctx.db(), transaction_id)
        .await?
        .ok_or_else(not_found)?;
    let visible = acting.may_access(&transfer.username)
        || store::owner(ctx.db(), transfer.to_account_id)
            .await?
            .is_some_and(|owner| owner == acting.username);
    if !visible {
        return Err(not_found());
    }
    if let (Some(wait), Some(decided)) = (wait, decided)
        && transfer.status == "pending"
    {
        let _ = tokio::time::timeout(wait, decided).await;
        if let Some(now) = store::transfer(ctx.db(), transaction_id).await? {
            transfer = now;
        }
    }
    Ok(Json(TransferView::of(transfer, &acting)))
}
