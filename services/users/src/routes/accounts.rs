//! The accounts a user has asked for.

use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
};
use events::{AccountCreationRequest, DomainEvent};
use serde_json::{Value, json};
use superclient::{ActingUser, ApiError, CorrelationId, Ctx, Emit, Expect};
use uuid::Uuid;

use super::{AccountRequestView, wait_for_account};
use crate::{Users, store};

pub async fn list(
    State(ctx): State<Ctx<Users>>,
    acting: ActingUser,
    Path(username): Path<String>,
) -> Result<Json<Value>, ApiError> {
    acting.require_access(&username, "that user")?;
    let accounts: Vec<AccountRequestView> = store::requests_of(ctx.db(), &username)
        .await?
        .into_iter()
        .map(Into::into)
        .collect();
    Ok(Json(json!({ "accounts": accounts })))
}

pub async fn request(
    State(ctx): State<Ctx<Users>>,
    acting: ActingUser,
    correlation: CorrelationId,
    Path(username): Path<String>,
) -> Result<(StatusCode, Json<AccountRequestView>), ApiError> {
    acting.require_access(&username, "that user")?;
    if store::user(ctx.db(), &username).await?.is_none() {
        return Err(ApiError::not_found("no such user"));
    }
    let request = AccountCreationRequest {
        request_id: Uuid::now_v7(),
        username,
    };
    ctx.decide(&[], correlation, |_db| {
        let request = request.clone();
        Box::pin(async move {
            let emit = Emit::new(
                AccountCreationRequest::TYPE,
                request.key(),
                Expect::Value(0),
                &request,
            )?;
            Ok::<_, ApiError>((vec![emit], ()))
        })
    })
    .await?;
    let view = wait_for_account(&ctx, request.request_id).await?;
    let status = if view.account_id.is_some() {
        StatusCode::CREATED
    } else {
        StatusCode::ACCEPTED
    };
    Ok((status, Json(view)))
}

pub async fn status(
    State(ctx): State<Ctx<Users>>,
    acting: ActingUser,
    Path(request_id): Path<String>,
) -> Result<Json<AccountRequestView>, ApiError> {
    let request_id =
        Uuid::parse_str(&request_id).map_err(|_| ApiError::invalid("a request id is a UUID"))?;
    let row = store::request(ctx.db(), request_id)
        .await?
        .ok_or_else(|| ApiError::not_found("no such account request"))?;
    acting.require_access(&row.username, "that request")?;
    Ok(Json(row.into()))
}
