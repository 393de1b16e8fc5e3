//! The one error type of the web app's server functions.
//!
//! Server functions return `Result<T, AppError>`. The variants say what a
//! person can act on; details that would leak internals (SQL, hosts) are
//! logged on the server and never sent to the page.

use leptos::server_fn::{
    codec::JsonEncoding,
    error::{FromServerFnError, ServerFnErrorErr},
};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum AppError {
    /// The database failed or did not answer.
    #[error("the database could not complete the request; please try again in a moment")]
    Database,
    /// The request never reached the function or its answer got lost.
    #[error("{0}")]
    ServerFn(ServerFnErrorErr),
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
