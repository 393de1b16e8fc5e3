//! What every request handler and server function can reach.

use axum::extract::FromRef;
use leptos::prelude::*;
use leptos::server_fn::error::ServerFnErrorErr;
use sqlx::PgPool;

use crate::error::AppError;

#[derive(Clone, Debug, FromRef)]
pub struct AppState {
    pub leptos_options: LeptosOptions,
    pub pool: PgPool,
}

/// The database pool, from inside a server function or a render.
pub fn pool() -> Result<PgPool, AppError> {
    use_context::<AppState>()
        .map(|state| state.pool)
        .ok_or_else(|| {
            AppError::ServerFn(ServerFnErrorErr::ServerError(
                "the server state is missing from the request context".into(),
            ))
        })
}
