//! What every request handler and server function can reach.

use axum::extract::FromRef;
use leptos::prelude::*;
use leptos::server_fn::error::ServerFnErrorErr;
use sqlx::PgPool;
use tower_sessions_sqlx_store::PostgresStore;

use super::{bus_staff::BusStaff, live::LiveHub, services::Services};
use crate::error::AppError;

#[derive(Clone, FromRef)]
pub struct AppState {
    pub leptos_options: LeptosOptions,
    pub pool: PgPool,
    pub services: Services,
    pub live: LiveHub,
    pub sessions: PostgresStore,
    pub bus_staff: BusStaff,
}

fn state() -> Result<AppState, AppError> {
    use_context::<AppState>().ok_or_else(|| {
        AppError::ServerFn(ServerFnErrorErr::ServerError(
            "the server state is missing from the request context".into(),
        ))
    })
}

/// The database pool, from inside a server function or a render.
pub fn pool() -> Result<PgPool, AppError> {
    state().map(|state| state.pool)
}

/// The bus's staff endpoints, from inside a server function.
pub fn bus_staff() -> Result<BusStaff, AppError> {
    state().map(|state| state.bus_staff)
}

/// The banking services, from inside a server function or a render.
pub fn services() -> Result<Services, AppError> {
    state().map(|state| state.services)
}
