//! The one error type of the services' HTTP APIs, answered as
//! `{"error": {"code": "...", "message": "..."}}`.

use axum::{
    Json,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde_json::json;

use crate::{decide::DecideError, service::HandlerError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    /// A stable, machine-readable name (`insufficient_funds`).
    pub code: &'static str,
    /// What went wrong, for a person.
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    /// Input that is malformed or out of range.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_input", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// The acting user may not see or touch this.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// A business rule refused the request (`insufficient_funds`, `username_taken`).
    pub fn refused(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }

    /// The request clashes with what exists (`username_taken`).
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
    }

    /// Something failed after the request's events were stored: it has
    /// taken effect, and a retry with the same idempotency key answers it.
    pub fn outcome_pending() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "outcome_pending",
            "the request may have taken effect; send it again with the same \
             Idempotency-Key to learn its outcome",
        )
    }

    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "something went wrong on our side; it has been logged",
        )
    }
}

impl ApiError {
    /// The JSON body every error is answered with.
    pub fn body(&self) -> serde_json::Value {
        json!({"error": {"code": self.code, "message": self.message}})
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body())).into_response()
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(error: sqlx::Error) -> Self {
        tracing::error!(%error, "database error");
        Self::internal()
    }
}

impl From<DecideError> for ApiError {
    fn from(error: DecideError) -> Self {
        let unavailable = |code, message: &str| {
            Self::new(StatusCode::SERVICE_UNAVAILABLE, code, message.to_owned())
        };
        match error {
            DecideError::Contention => unavailable(
                "contention",
                "other changes to the same data kept coming first; try again",
            ),
            DecideError::Unavailable { ref key, .. } => {
                tracing::warn!(%error, "a decision waits for a key that cannot be brought up to date");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "temporarily_unavailable",
                    format!(
                        "{} is temporarily unavailable; nothing was done. Bank staff have been alerted",
                        describe_key(key)
                    ),
                )
            }
            DecideError::Uncertain | DecideError::NotYetVisible(_) => {
                tracing::warn!(%error, "a decision's outcome is not known yet");
                Self::outcome_pending()
            }
            DecideError::Bus(_) => {
                tracing::warn!(%error, "the bus did not answer");
                unavailable("unavailable", "the event bus is unavailable; try again")
            }
            DecideError::Conflict => Self::refused(
                "idempotency_conflict",
                "an earlier try of this request was decided differently; use a new \
                 Idempotency-Key",
            ),
            DecideError::LeaseLost => Self::conflict(
                "request_in_progress",
                "a request with this Idempotency-Key is still being handled; try again in a moment",
            ),
            DecideError::Refused { .. } | DecideError::Database(_) | DecideError::Handler(_) => {
                tracing::error!(%error, "a decision failed");
                Self::internal()
            }
        }
    }
}

/// A consistency key as a customer would name it: `acc-7` is account 7.
fn describe_key(key: &str) -> String {
    match key.strip_prefix("acc-") {
        Some(id) => format!("account {id}"),
        None => key.to_owned(),
    }
}

impl From<axum::extract::rejection::JsonRejection> for ApiError {
    fn from(rejection: axum::extract::rejection::JsonRejection) -> Self {
        Self::invalid(rejection.body_text())
    }
}

impl From<HandlerError> for ApiError {
    fn from(error: HandlerError) -> Self {
        tracing::error!(%error, "a handler failed");
        Self::internal()
    }
}
