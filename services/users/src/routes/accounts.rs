//! The accounts a user has asked for.

use axum::{
    Json,
    extract::{Path, Query, State},
    http::StatusCode,
};
use events::{AccountCreationRequest, DomainEvent, creation_key};
use serde::Deserialize;
use serde_json::{Value, json};
use superclient::{
    ActingUser, ApiError, Begin, CorrelationId, Ctx, Emit, Expect, Idempotency, IdempotencyKey,
    Service,
};
use uuid::Uuid;

use super::{AccountRequestView, wait_for_account};
use crate::{Users, slots, store};

#[derive(Deserialize)]
pub struct Page {
    after: Option<String>,
    limit: Option<String>,
}

fn no_user(username: &str) -> ApiError {
    ApiError::not_found(format!("no user {username}"))
}

pub async fn list(
    State(ctx): State<Ctx<Users>>,
    acting: ActingUser,
    Path(username): Path<String>,
    Query(page): Query<Page>,
) -> Result<Json<Value>, ApiError> {
    if !acting.may_access(&username) {
        return Err(no_user(&username));
    }
    let after = page
        .after
        .map(|text| Uuid::parse_str(&text).map_err(|_| ApiError::invalid("after is a request id")))
        .transpose()?;
    let limit = match page.limit {
        None => slots::MAX_ACCOUNTS as i64,
        Some(text) => text
            .parse::<i64>()
            .ok()
            .filter(|limit| (1..=slots::MAX_ACCOUNTS as i64).contains(limit))
            .ok_or_else(|| ApiError::invalid(format!("limit is 1 to {}", slots::MAX_ACCOUNTS)))?,
    };
    let accounts: Vec<AccountRequestView> = store::requests_of(ctx.db(), &username, after, limit)
        .await?
        .into_iter()
        .map(Into::into)
        .collect();
    let next_after = (accounts.len() as i64 == limit)
        .then(|| accounts.last().map(|a| a.request_id))
        .flatten();
    Ok(Json(
        json!({ "accounts": accounts, "next_after": next_after }),
    ))
}

pub async fn request(
    State(ctx): State<Ctx<Users>>,
    acting: ActingUser,
    correlation: CorrelationId,
    key: IdempotencyKey,
    Path(username): Path<String>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    if !acting.may_access(&username) || store::user(ctx.db(), &username).await?.is_none() {
        return Err(no_user(&username));
    }
    if !acting.may_act_for(&username) {
        return Err(ActingUser::staff_may_not_act());
    }
    let fingerprint = json!({"route": "request-account", "username": username});
    let mut request = match Idempotency::begin(
        ctx.db(),
        ctx.service().name(),
        &acting.scope(),
        &key,
        &fingerprint,
    )
    .await?
    {
        Begin::Repeat(status, body) => return Ok((status, body)),
        Begin::Proceed(request) => request,
    };
    let outcome = request_now(&ctx, &mut request, correlation, username).await;
    request.finish(outcome).await
}

async fn request_now(
    ctx: &Ctx<Users>,
    request: &mut Idempotency,
    correlation: CorrelationId,
    username: String,
) -> Result<(StatusCode, Value), ApiError> {
    let slot_ids = slots::all(&username);
    // Every slot's key: the decision reads which are taken.
    let keys: Vec<String> = slot_ids.iter().map(|id| creation_key(*id)).collect();
    let stored = ctx
        .decide(request, &keys, correlation, |db| {
            let (username, slot_ids) = (username.clone(), slot_ids.clone());
            Box::pin(async move {
                let taken = store::taken_requests(&db, &slot_ids).await?;
                let held = store::request_count(&db, &username).await?;
                let free = slot_ids.iter().find(|id| !taken.contains(id));
                let (Some(free), true) = (free, (held as usize) < slots::MAX_ACCOUNTS) else {
                    return Err(ApiError::refused(
                        "too_many_accounts",
                        format!("a customer holds at most {} accounts", slots::MAX_ACCOUNTS),
                    ));
                };
                let request = AccountCreationRequest {
                    request_id: *free,
                    username,
                };
                Ok(vec![Emit::new(
                    AccountCreationRequest::TYPE,
                    request.key(),
                    Expect::Value(0),
                    &request,
                )?])
            })
        })
        .await?;
    let asked = stored
        .first()
        .map(|event| AccountCreationRequest::decode(event.data.get()))
        .transpose()
        .map_err(|_| ApiError::internal())?
        .ok_or_else(ApiError::internal)?;
    let view = wait_for_account(ctx, asked.request_id).await?;
    let status = if view.account_id.is_some() {
        StatusCode::CREATED
    } else {
        StatusCode::ACCEPTED
    };
    Ok((status, json!(view)))
}

pub async fn status(
    State(ctx): State<Ctx<Users>>,
    acting: ActingUser,
    Path(request_id): Path<String>,
) -> Result<Json<AccountRequestView>, ApiError> {
    let not_found = || ApiError::not_found(format!("no account request {request_id}"));
    let id = Uuid::parse_str(&request_id).map_err(|_| not_found())?;
    let row = store::request(ctx.db(), id)
        .await?
        .filter(|row| acting.may_access(&row.username))
        .ok_or_else(not_found)?;
    Ok(Json(row.into()))
}
