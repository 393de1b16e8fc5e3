//! A user's or an account's transfers.

use axum::{
    Json,
    extract::{Query, State},
};
use serde::Deserialize;
use serde_json::{Value, json};
use superclient::{ActingUser, ApiError, Ctx};

use crate::{
    Transactions,
    store::{self, Party},
    view::TransferView,
};

const DEFAULT_LIMIT: i64 = 50;
const MAX_LIMIT: i64 = 200;

#[derive(Deserialize)]
pub struct ListParams {
    username: Option<String>,
    account_id: Option<String>,
    before: Option<String>,
    limit: Option<String>,
}

pub async fn list(
    State(ctx): State<Ctx<Transactions>>,
    acting: ActingUser,
    Query(params): Query<ListParams>,
) -> Result<Json<Value>, ApiError> {
    let whole = |text: Option<String>, name: &str| {
        text.map(|t| {
            t.parse::<i64>()
                .map_err(|_| ApiError::invalid(format!("{name} is a whole number")))
        })
        .transpose()
    };
    let party = match (params.username, whole(params.account_id, "account_id")?) {
        (Some(username), None) => {
            if !acting.may_access(&username) {
                return Err(ApiError::not_found(format!("no user {username}")));
            }
            Party::User(username)
        }
        (None, Some(account_id)) => {
            // Anyone else's account is answered like one that does not exist.
            store::owner(ctx.db(), account_id)
                .await?
                .filter(|owner| acting.may_access(owner))
                .ok_or_else(|| ApiError::not_found(format!("no account {account_id}")))?;
            Party::Account(account_id)
        }
        _ => {
            return Err(ApiError::invalid(
                "give exactly one of username and account_id",
            ));
        }
    };
    let before = whole(params.before, "before")?;
    let limit = match whole(params.limit, "limit")? {
        None => DEFAULT_LIMIT,
        Some(limit) if (1..=MAX_LIMIT).contains(&limit) => limit,
        Some(_) => return Err(ApiError::invalid(format!("limit is 1 to {MAX_LIMIT}"))),
    };
    let transfers: Vec<TransferView> = store::transfers(ctx.db(), &party, before, limit)
        .await?
        .into_iter()
        .map(|row| TransferView::of(row, &acting))
        .collect();
    let next_before = (transfers.len() as i64 == limit)
        .then(|| transfers.last().map(|t| t.transaction_id))
        .flatten();
    Ok(Json(
        json!({ "transfers": transfers, "next_before": next_before }),
    ))
}
