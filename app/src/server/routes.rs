//! The whole HTTP surface: Leptos pages and server functions, the live
//! socket, statement downloads, static files and `/health`, behind the
//! session layer and the protections.

use axum::{Router, middleware, routing::get};
use leptos_axum::{LeptosRoutes, generate_route_list};
use tower_http::trace::TraceLayer;
use tower_sessions::SessionManagerLayer;
use tower_sessions_sqlx_store::PostgresStore;

use super::{
    health::health, live, protection, staff_export, staff_report_csv, state::AppState,
    statement_csv,
};
use crate::{App, shell};

pub fn router(state: AppState, sessions: SessionManagerLayer<PostgresStore>) -> Router {
    let routes = generate_route_list(App);
    Router::new()
        .route("/health", get(health))
        .route("/live", get(live::socket))
        .route(
            "/accounts/{account_id}/statement.csv",
            get(statement_csv::download),
        )
        .route("/staff/events.csv", get(staff_export::events_csv))
        .route("/staff/events.json", get(staff_export::events_json))
        .route("/staff/reports/{file}", get(staff_report_csv::report))
        .leptos_routes(&state, routes, {
            let options = state.leptos_options.clone();
            move || shell(options.clone())
        })
        .fallback(leptos_axum::file_and_error_handler::<AppState, _>(shell))
        .layer(middleware::from_fn(protection::same_origin))
        .layer(sessions)
        .layer(middleware::from_fn(protection::security_headers))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}
