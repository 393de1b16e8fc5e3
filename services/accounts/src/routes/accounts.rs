//! Looking accounts up.

use axum::{
    Json,
    extract::{Path, Query, State},
};
use serde::Deserialize;
use serde_json::{Value, json};
use superclient::{ActingUser, ApiError, Ctx};

use super::{account_id, visible_account};
use crate::{Accounts, store};

const DEFAULT_LIMIT: i64 = 50;
const MAX_LIMIT: i64 = 50;

#[derive(Deserialize)]
pub struct ListParams {
    username: Option<String>,
    after: Option<String>,
    limit: Option<String>,
}

pub async fn list(
    State(ctx): State<Ctx<Accounts>>,
    acting: ActingUser,
    Query(params): Query<ListParams>,
) -> Result<Json<Value>, ApiError> {
    let username = params
        .username
        .ok_or_else(|| ApiError::invalid("username is required: /accounts?username=NAME"))?;
    let after = params
        .after
        .map(|text| account_id(&text).map_err(|_| ApiError::invalid("after is an account id")))
        .transpose()?;
    let limit = match params.limit {
        None => DEFAULT_LIMIT,
        Some(text) => text
            .parse::<i64>()
            .ok()
            .filter(|limit| (1..=MAX_LIMIT).contains(limit))
            .ok_or_else(|| ApiError::invalid(format!("limit is 1 to {MAX_LIMIT}")))?,
    };
    if !acting.may_access(&username) {
        return Err(ApiError::not_found(format!("no user {username}")));
    }
    let accounts = store::accounts_of(ctx.db(), &username, after, limit).await?;
    let next_after = (accounts.len() as i64 == limit)
        .then(|| accounts.last().map(|a| a.account_id))
        .flatten();
    Ok(Json(
        json!({ "accounts": accounts, "next_after": next_after }),
    ))
}

pub async fn show(
    State(ctx): State<Ctx<Accounts>>,
    acting: ActingUser,
    Path(id): Path<String>,
) -> Result<Json<store::AccountRow>, ApiError> {
    Ok(Json(
        visible_account(&ctx, &acting, account_id(&id)?).await?,
    ))
}
