//! Signing up, looking a user up, checking credentials.

use axum::{
    Json,
    extract::{Path, State, rejection::JsonRejection},
    http::StatusCode,
};
use events::{AccountCreationRequest, DomainEvent, UserCreated};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use superclient::{ActingUser, ApiError, CorrelationId, Ctx, Emit, Expect};
use uuid::Uuid;

use super::wait_for_account;
use crate::{Users, password, rules, store};

#[derive(Deserialize)]
pub struct SignUp {
    username: String,
    display_name: String,
    password: String,
}

/// A user as every response shows it: never the hash.
#[derive(Serialize)]
pub struct UserView {
    username: String,
    display_name: String,
    staff: bool,
}

impl UserView {
    fn of(row: store::UserRow) -> Self {
        Self {
            username: row.username,
            display_name: row.display_name,
            staff: false,
        }
    }
}

pub async fn sign_up(
    State(ctx): State<Ctx<Users>>,
    correlation: CorrelationId,
    body: Result<Json<SignUp>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let Json(form) = body?;
    rules::check_username(&form.username)?;
    let display_name = rules::check_display_name(&form.display_name)?;
    rules::check_password(&form.password)?;
    if ctx.service().is_staff(&form.username) {
        return Err(taken());
    }
    let password_hash = password::hash(form.password).await.map_err(|error| {
        tracing::error!(%error, "hashing failed");
        ApiError::internal()
    })?;
    let user = UserCreated {
        username: form.username,
        display_name,
        password_hash,
    };
    let request = AccountCreationRequest {
        request_id: Uuid::now_v7(),
        username: user.username.clone(),
    };
    ctx.decide(&[user.key()], correlation, |db| {
        let (user, request) = (user.clone(), request.clone());
        Box::pin(async move {
            if store::user(&db, &user.username).await?.is_some() {
                return Err(taken());
            }
            let emits = vec![
                Emit::new(UserCreated::TYPE, user.key(), Expect::Value(0), &user)?,
                Emit::new(
                    AccountCreationRequest::TYPE,
                    request.key(),
                    Expect::Value(0),
                    &request,
                )?,
            ];
            Ok((emits, ()))
        })
    })
    .await?;
    tracing::info!(username = %user.username, "signed up");
    let first_account = wait_for_account(&ctx, request.request_id).await?;
    let body = json!({
        "user": UserView { username: user.username, display_name: user.display_name, staff: false },
        "first_account": first_account,
    });
    Ok((StatusCode::CREATED, Json(body)))
}

fn taken() -> ApiError {
    ApiError::conflict("username_taken", "that username is taken")
}

pub async fn show(
    State(ctx): State<Ctx<Users>>,
    acting: ActingUser,
    Path(username): Path<String>,
) -> Result<Json<UserView>, ApiError> {
    acting.require_access(&username, "that user")?;
    if let Some(staff) = ctx.service().staff_view(&username) {
        return Ok(Json(staff));
    }
    let user = store::user(ctx.db(), &username)
        .await?
        .ok_or_else(|| ApiError::not_found("no such user"))?;
    Ok(Json(UserView::of(user)))
}

#[derive(Deserialize)]
pub struct Credentials {
    password: String,
}

pub async fn verify(
    State(ctx): State<Ctx<Users>>,
    Path(username): Path<String>,
    body: Result<Json<Credentials>, JsonRejection>,
) -> Result<Json<UserView>, ApiError> {
    let Json(credentials) = body?;
    let wrong = || {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "wrong_credentials",
            "wrong username or password",
        )
    };
    if let Some(staff) = ctx
        .service()
        .staff
        .as_ref()
        .filter(|s| s.username == username)
    {
        let hash = staff.password_hash.clone();
        return match password::verify(credentials.password, hash).await {
            true => Ok(Json(ctx.service().staff_view(&username).ok_or_else(wrong)?)),
            false => Err(wrong()),
        };
    }
    let user = store::user(ctx.db(), &username).await?;
    let hash = user.as_ref().map(|u| u.password_hash.clone());
    if password::verify_or_decoy(credentials.password, hash).await {
        user.map(|user| Json(UserView::of(user))).ok_or_else(wrong)
    } else {
        Err(wrong())
    }
}

impl Users {
    fn is_staff(&self, username: &str) -> bool {
        self.staff.as_ref().is_some_and(|s| s.username == username)
    }

    fn staff_view(&self, username: &str) -> Option<UserView> {
        self.is_staff(username).then(|| UserView {
            username: username.to_owned(),
            display_name: "Bank staff".to_owned(),
            staff: true,
        })
    }
}
