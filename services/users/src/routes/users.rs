//! Signing up and looking a user up.

use axum::{
    Json,
    extract::{Path, State, rejection::JsonRejection},
    http::StatusCode,
};
use events::{AccountCreationRequest, DomainEvent, UserCreated};
use serde::Deserialize;
use serde_json::{Value, json};
use superclient::{
    ActingUser, ApiError, Begin, CorrelationId, Ctx, Emit, Expect, Idempotency, IdempotencyKey,
    Service,
};

use super::{UserView, wait_for_account};
use crate::{Users, rules, slots, store};

#[derive(Deserialize)]
pub struct SignUp {
    username: String,
    display_name: String,
    password: String,
}

pub async fn sign_up(
    State(ctx): State<Ctx<Users>>,
    correlation: CorrelationId,
    key: IdempotencyKey,
    body: Result<Json<SignUp>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let Json(form) = body?;
    rules::check_username(&form.username)?;
    let display_name = rules::check_display_name(&form.display_name)?;
    rules::check_password(&form.password)?;
    // The password is no part of the fingerprint (it would be a fast hash
    // of a secret); a repeat is checked against the stored hash instead.
    let fingerprint =
        json!({"route": "sign-up", "username": form.username, "display_name": display_name});
    let scope = format!("signup:{}", form.username);
    let mut request =
        match Idempotency::begin(ctx.db(), ctx.service().name(), &scope, &key, &fingerprint).await?
        {
            Begin::Repeat(status, body) => {
                return repeat_of_sign_up(&ctx, &form.username, form.password, status, body).await;
            }
            Begin::Proceed(request) => request,
        };
    let outcome = sign_up_now(
        &ctx,
        &mut request,
        correlation,
        form.username,
        display_name,
        form.password,
    )
    .await;
    request.finish(outcome).await
}

async fn sign_up_now(
    ctx: &Ctx<Users>,
    request: &mut Idempotency,
    correlation: CorrelationId,
    username: String,
    display_name: String,
    password: String,
) -> Result<(StatusCode, Value), ApiError> {
    if ctx.service().is_staff(&username) {
        return Err(taken());
    }
    let password_hash = ctx
        .service()
        .passwords
        .hash(password)
        .await
        .map_err(|error| {
            tracing::warn!(%error, "could not hash a password");
            ApiError::unavailable(error.to_string())
        })?;
    let user = UserCreated {
        username,
        display_name,
        password_hash,
    };
    let first = AccountCreationRequest {
        request_id: slots::request_id(&user.username, 0),
        username: user.username.clone(),
    };
    let keys = [user.key(), first.key()];
    let stored = ctx
        .decide(request, &keys, correlation, |db| {
            let (user, first) = (user.clone(), first.clone());
            Box::pin(async move {
                if store::user(&db, &user.username).await?.is_some() {
                    return Err(taken());
                }
                Ok(vec![
                    Emit::new(UserCreated::TYPE, user.key(), Expect::Value(0), &user)?,
                    Emit::new(
                        AccountCreationRequest::TYPE,
                        first.key(),
                        Expect::Value(0),
                        &first,
                    )?,
                ])
            })
        })
        .await?;
    // What was stored (now, or by an earlier try of this request).
    let user = stored
        .iter()
        .find(|event| event.event_type == UserCreated::TYPE)
        .map(|event| UserCreated::decode(event.data.get()))
        .transpose()
        .map_err(|_| ApiError::internal())?
        .ok_or_else(ApiError::internal)?;
    tracing::info!(username = %user.username, "signed up");
    let first_account = wait_for_account(ctx, first.request_id).await?;
    let body = json!({
        "user": UserView { username: user.username, display_name: user.display_name, staff: false },
        "first_account": first_account,
    });
    Ok((StatusCode::CREATED, body))
}

/// A repeated sign-up gets the first answer, if it carries the same password.
async fn repeat_of_sign_up(
    ctx: &Ctx<Users>,
    username: &str,
    password: String,
    status: StatusCode,
    body: Json<Value>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    if status == StatusCode::CREATED {
        let hash = store::user(ctx.db(), username)
            .await?
            .map(|user| user.password_hash);
        let same = ctx
            .service()
            .passwords
            .verify_or_decoy(password, hash)
            .await
            .map_err(|error| ApiError::unavailable(error.to_string()))?;
        if !same {
            return Err(ApiError::refused(
                "idempotency_key_reused",
                "this Idempotency-Key was used for a different request; use a new key for a new request",
            ));
        }
    }
    Ok((status, body))
}

fn taken() -> ApiError {
    ApiError::conflict("username_taken", "that username is taken")
}

pub async fn show(
    State(ctx): State<Ctx<Users>>,
    acting: ActingUser,
    Path(username): Path<String>,
) -> Result<Json<UserView>, ApiError> {
    let not_found = || ApiError::not_found(format!("no user {username}"));
    if !acting.may_access(&username) {
        return Err(not_found());
    }
    if let Some(staff) = ctx.service().staff_view(&username) {
        return Ok(Json(staff));
    }
    let user = store::user(ctx.db(), &username)
        .await?
        .ok_or_else(not_found)?;
    Ok(Json(UserView {
        username: user.username,
        display_name: user.display_name,
        staff: false,
    }))
}

impl Users {
    pub(crate) fn is_staff(&self, username: &str) -> bool {
        self.staff.as_ref().is_some_and(|s| s.username == username)
    }

    pub(crate) fn staff_view(&self, username: &str) -> Option<UserView> {
        self.is_staff(username).then(|| UserView {
            username: username.to_owned(),
            display_name: "Bank staff".to_owned(),
            staff: true,
        })
    }
}
