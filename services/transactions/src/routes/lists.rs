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
            acting.require_access(&username, "that user's transfers")?;
            Party::User(username)
        }
        (None, Some(account_id)) => {
            let owner = store::owner(ctx.db(), account_id)
                .await?
                .ok_or_else(|| ApiError::not_found(format!("no account {account_id}")))?;
            acting.require_access(&owner, "that account")?;
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
    let transfers = store::transfers(ctx.db(), &party, before, limit).await?;
    let next_before = (transfers.len() as i64 == limit)
        .then(|| transfers.last().map(|t| t.transaction_id))
        .flatten();
    Ok(Json(
        json!({ "transfers": transfers, "next_before": next_before }),
    ))
}
