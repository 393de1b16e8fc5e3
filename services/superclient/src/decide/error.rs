//! What can keep a decision from being published and answered, and how
//! each case is answered over HTTP.

use axum::http::StatusCode;
use bus::{client::ClientError, protocol::ErrorCode};

use crate::{
    apply::ApplyError, http::ApiError, idempotency::RecordError, publish::PublishError,
    service::HandlerError,
};

#[derive(Debug, thiserror::Error)]
pub enum DecideError {
    #[error("other changes to the same data kept coming first; try again")]
    Contention,
    #[error("{key} cannot be brought up to date: {reason}")]
    Unavailable { key: String, reason: String },
    #[error("the bus gave no definite answer; the outcome is not known yet")]
    Uncertain,
    #[error("the bus: {0}")]
    Bus(ClientError),
    #[error("the bus refused the events ({code:?}): {message}")]
    Refused {
        code: Option<ErrorCode>,
        message: String,
    },
    #[error("an earlier try of this request published different events under its ids")]
    Conflict,
    #[error("the events are stored but could not be applied here yet: {0}")]
    NotYetVisible(ApplyError),
    #[error("another try of this request took it over")]
    LeaseLost,
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Handler(#[from] HandlerError),
}

impl From<PublishError> for DecideError {
    fn from(error: PublishError) -> Self {
        match error {
            error if error.is_uncertain() => Self::Uncertain,
            PublishError::Bus(error) => Self::Bus(error),
            PublishError::Refused { code, message } => Self::Refused { code, message },
        }
    }
}

/// A key that could not be made current: its event is parked, or the bus
/// or the database failed.
pub(super) fn not_current(error: ApplyError) -> DecideError {
    match error {
        ApplyError::Database(error) => DecideError::Database(error),
        ApplyError::Bus(error) => DecideError::Bus(error),
        error => DecideError::Unavailable {
            key: error.failed_key().unwrap_or_default().to_owned(),
            reason: error.to_string(),
        },
    }
}

impl From<RecordError> for DecideError {
    fn from(error: RecordError) -> Self {
        match error {
            RecordError::LeaseLost => Self::LeaseLost,
            RecordError::Database(error) => Self::Database(error),
        }
    }
}

impl From<DecideError> for ApiError {
    fn from(error: DecideError) -> Self {
        let unavailable = |code, message: &str| {
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, code, message.to_owned())
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
                ApiError::outcome_pending()
            }
            DecideError::Bus(_) => {
                tracing::warn!(%error, "the bus did not answer");
                unavailable("unavailable", "the event bus is unavailable; try again")
            }
            DecideError::Conflict => ApiError::refused(
                "idempotency_conflict",
                "an earlier try of this request was decided differently; use a new \
                 Idempotency-Key",
            ),
            DecideError::LeaseLost => ApiError::conflict(
                "request_in_progress",
                "a request with this Idempotency-Key is still being handled; try again in a moment",
            ),
            DecideError::Refused { .. } | DecideError::Database(_) | DecideError::Handler(_) => {
                tracing::error!(%error, "a decision failed");
                ApiError::internal()
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
