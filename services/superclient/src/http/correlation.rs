//! Correlation ids: taken from `X-Correlation-Id` or made, put in the
//! request's tracing span, and echoed in the response.

use axum::{
    extract::{FromRequestParts, Request},
    http::{HeaderValue, request::Parts},
    middleware::Next,
    response::Response,
};
use tracing::Instrument;
use uuid::Uuid;

use super::ApiError;
use crate::origin::CorrelationId;

pub const HEADER: &str = "x-correlation-id";

/// Gives every request a correlation id and a span that names it.
pub(crate) async fn trace_request(mut request: Request, next: Next) -> Response {
    let given = request.headers().get(HEADER).map(|value| {
        value
            .to_str()
            .ok()
            .and_then(|text| Uuid::parse_str(text).ok())
            .ok_or(())
    });
    let id = match given {
        Some(Ok(id)) => id,
        Some(Err(())) => {
            use axum::response::IntoResponse;
            return ApiError::invalid("X-Correlation-Id must be a UUID").into_response();
        }
        None => Uuid::now_v7(),
    };
    request.extensions_mut().insert(CorrelationId(id));
    let span = tracing::info_span!(
        "request",
        method = %request.method(),
        path = %request.uri().path(),
        correlation_id = %id,
        caller = tracing::field::Empty,
    );
    let started = std::time::Instant::now();
    let mut response = next.run(request).instrument(span.clone()).await;
    span.in_scope(|| {
        tracing::info!(
            status = response.status().as_u16(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "answered"
        );
    });
    if let Ok(value) = HeaderValue::from_str(&id.to_string()) {
        response.headers_mut().insert(HEADER, value);
    }
    response
}

impl<S: Send + Sync> FromRequestParts<S> for CorrelationId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<CorrelationId>()
            .copied()
            .unwrap_or_else(|| CorrelationId(Uuid::now_v7())))
    }
}
