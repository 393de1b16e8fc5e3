//! Looking accounts up.

use axum::{
    Json,
    extract::{Path, Query, State},
};
use serde::Deserialize;
use serde_json::{Value, json};
use superclient::{ActingUser, ApiError, Ctx};

use super::{account_id, owned_account};
use crate::{Accounts, store};

#[derive(Deserialize)]
pub struct Owner {
    username: Option<String>,
}

pub async fn list(
    State(ctx): State<Ctx<Accounts>>,
    acting: ActingUser,
    Query(owner): Query<Owner>,
) -> Result<Json<Value>, ApiError> {
    let username = owner
        .username
        .ok_or_else(|| ApiError::invalid("username is required: /accounts?username=NAME"))?;
    acting.require_access(&username, "that user's list of accounts")?;
    let accounts = store::accounts_of(ctx.db(), &username).await?;
    Ok(Json(json!({ "accounts": accounts })))
}

pub async fn show(
    State(ctx): State<Ctx<Accounts>>,
    acting: ActingUser,
    Path(id): Path<String>,
) -> Result<Json<store::AccountRow>, ApiError> {
    Ok(Json(owned_account(&ctx, &acting, account_id(&id)?).await?))
}
