//! The one error type of the web app's server functions.
//!
//! Server functions return `Result<T, AppError>`. The variants say what a
//! person can act on; details that would leak internals (SQL, hosts,
//! services' codes) are logged on the server and never sent to the page.

use leptos::server_fn::{
    codec::JsonEncoding,
    error::{FromServerFnError, ServerFnErrorErr},
};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum AppError {
    /// No one is logged in (or the log-in has ended): the page sends the
    /// person to the log-in page.
    #[error("please log in")]
    NotSignedIn,
    /// Missing, or someone else's: the same answer for both.
    #[error("not found")]
    NotFound,
    /// One form field is wrong; `field` is its name.
    #[error("{message}")]
    Invalid { field: String, message: String },
    /// The bank said no, for a reason the person can read.
    #[error("{0}")]
    Refused(String),
    /// Not now: a service or the bus is busy or away; nothing was changed,
    /// or the outcome will show once it is known.
    #[error("{0}")]
    Unavailable(String),
    /// The database failed or did not answer.
    #[error("the database could not complete the request; please try again in a moment")]
    Database,
    /// The request never reached the function or its answer got lost.
    #[error("{0}")]
    ServerFn(ServerFnErrorErr),
}

impl AppError {
    /// The bank may have acted without saying so: the form keeps its key,
    /// so trying again cannot do it twice.
    pub fn unconfirmed() -> Self {
        Self::Unavailable(
            "the bank has not confirmed this yet; trying again is safe and will not do it twice"
                .to_owned(),
        )
    }

    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.to_owned(),
            message: message.into(),
        }
    }

    /// The message for the form field `field`, if this error is about it.
    pub fn for_field(&self, field: &str) -> Option<String> {
        match self {
            Self::Invalid { field: f, message } if f == field => Some(message.clone()),
            _ => None,
        }
    }

    /// Whether this answer is final: the request was refused or done, so a
    /// new request needs a new idempotency key. Otherwise (the bank did not
    /// say, or could not be reached) the same key must be sent again.
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            Self::NotSignedIn | Self::NotFound | Self::Invalid { .. } | Self::Refused(_)
        )
    }

    /// The message for the form as a whole (anything not about one field).
    pub fn for_form(&self) -> Option<String> {
        match self {
            Self::Invalid { .. } => None,
            other => Some(other.to_string()),
        }
    }
}

impl FromServerFnError for AppError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        Self::ServerFn(value)
    }
}

#[cfg(feature = "ssr")]
impl From<sqlx::Error> for AppError {
    fn from(error: sqlx::Error) -> Self {
        tracing::error!(%error, "database error in a server function");
        Self::Database
    }
}

#[cfg(feature = "ssr")]
impl From<crate::server::services::ServiceError> for AppError {
    /// What a person may read of a service's refusal. Codes the pages
    /// handle themselves (wrong credentials, insufficient funds) are turned
    /// into their own messages before this. Whenever the bank may have
    /// acted without saying so, the message says so: trying again with the
    /// same form is safe, and the form keeps its idempotency key for it.
    fn from(error: crate::server::services::ServiceError) -> Self {
        use crate::server::services::ServiceError;
        use reqwest::StatusCode;
        match &error {
            ServiceError::NotRun { .. } => Self::Refused(error.to_string()),
            ServiceError::Api { status, .. } if *status == StatusCode::NOT_FOUND => Self::NotFound,
            ServiceError::Api { status, .. } if *status == StatusCode::UNAUTHORIZED => {
                Self::NotSignedIn
            }
            ServiceError::Api { code, .. }
                if code == "outcome_pending" || code == "request_in_progress" =>
            {
                Self::unconfirmed()
            }
            // The form kept its key after an answer that left the outcome
            // open, and was then changed: the earlier try may have been done.
            ServiceError::Api { code, .. } if code == "idempotency_key_reused" => Self::Refused(
                "an earlier try of this form, with other details, may have gone through; \
                 reload the page to see it before trying again"
                    .to_owned(),
            ),
            ServiceError::Api {
                status, message, ..
            } if status.is_client_error() => Self::Refused(message.clone()),
            ServiceError::Api { code, .. } if code == "temporarily_unavailable" => {
                Self::Unavailable(
                    "this account cannot be changed right now; nothing was changed, please try again later"
                        .to_owned(),
                )
            }
            _ => {
                tracing::warn!(%error, "a service call failed");
                Self::unconfirmed()
            }
        }
    }
}

#[cfg(feature = "ssr")]
impl From<tower_sessions::session::Error> for AppError {
    fn from(error: tower_sessions::session::Error) -> Self {
        tracing::error!(%error, "the session store failed");
        Self::Database
    }
}
