//! The HTTP side every service shares: a caller token on every API route,
//! the acting user from a signed user token, correlation ids in spans and
//! responses, errors as JSON, `/health` and `/metrics`.

mod auth;
mod correlation;
mod error;
mod health;

use axum::{Router, middleware, routing::get};

pub use auth::{ActingUser, CLIENT_ADDRESS_HEADER, Caller, ClientAddress, USER_TOKEN_HEADER};
pub use error::ApiError;

use crate::{context::Ctx, service::Service};

/// The service's routes behind the caller token, beside the open `/health` and `/metrics`.
pub(crate) fn router<S: Service>(ctx: Ctx<S>) -> Router {
    let routes = ctx.service().routes();
    // A service may have no API of its own (a projection of events only).
    let api = if routes.has_routes() {
        routes.route_layer(middleware::from_fn_with_state(
            ctx.clone(),
            auth::require_caller::<S>,
        ))
    } else {
        routes
    };
    Router::new()
        .route("/health", get(health::health::<S>))
        .route("/metrics", get(health::metrics::<S>))
        .merge(api)
        .fallback(|| async { ApiError::not_found("no such route") })
        .layer(middleware::from_fn(correlation::trace_request))
        .with_state(ctx)
}
