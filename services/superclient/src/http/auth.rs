//! Who calls a service, and for whom.
//!
//! Every route needs a caller token (`Authorization: Bearer …`): the
//! program calling (the web server, the load tool), known by the digest of
//! its token. A request that acts for a user also carries that user's
//! token (`X-User-Token`), signed by the users service: the service acts
//! for exactly the user it names, and checks ownership itself. No header
//! that merely names a user is trusted.

use std::net::{IpAddr, SocketAddr};

use axum::{
    extract::{ConnectInfo, FromRequestParts, Request, State},
    http::request::Parts,
    middleware::Next,
    response::{IntoResponse, Response},
};
use trust::user_token::{Role, TokenError};

use super::ApiError;
use crate::{context::Ctx, service::Service};

pub const USER_TOKEN_HEADER: &str = "x-user-token";
/// The end user's network address, as the caller saw it (for throttling).
pub const CLIENT_ADDRESS_HEADER: &str = "x-client-address";

/// The program calling, by the name its caller token has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller(pub String);

pub(crate) async fn require_caller<S: Service>(
    State(ctx): State<Ctx<S>>,
    mut request: Request,
    next: Next,
) -> Response {
    let presented = request
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    let Some(token) = presented else {
        return ApiError::unauthorized("a caller token is required (Authorization: Bearer …)")
            .into_response();
    };
    match ctx.callers().caller_of(token) {
        Some(name) => {
            tracing::Span::current().record("caller", name);
            request.extensions_mut().insert(Caller(name.to_owned()));
            next.run(request).await
        }
        None => ApiError::unauthorized("the caller token is not known").into_response(),
    }
}

/// The user a request acts for, as their signed token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActingUser {
    pub username: String,
    pub staff: bool,
    /// When the user logged in (Unix seconds): a renewed token keeps it.
    pub auth_time: i64,
}

impl ActingUser {
    /// Whether this user may see or act on what belongs to `owner`.
    pub fn may_access(&self, owner: &str) -> bool {
        self.staff || self.username == owner
    }

    /// Whether this user may move money or open accounts for `owner`:
    /// only the owner. Staff look, but act only through their own tools.
    pub fn may_act_for(&self, owner: &str) -> bool {
        !self.staff && self.username == owner
    }

    /// The refusal for staff acting on a customer's behalf.
    pub fn staff_may_not_act() -> ApiError {
        ApiError::forbidden("bank staff may look at customers' accounts but not act for them")
    }

    /// What the user's idempotency keys are scoped to.
    pub fn scope(&self) -> String {
        format!("user:{}", self.username)
    }
}

impl<S: Service> FromRequestParts<Ctx<S>> for ActingUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, ctx: &Ctx<S>) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get(USER_TOKEN_HEADER)
            .ok_or_else(|| ApiError::unauthorized("a user token is required (X-User-Token)"))?
            .to_str()
            .map_err(|_| ApiError::unauthorized("the user token is not valid"))?;
        match ctx.user_tokens().verify(token) {
            Ok(claims) => Ok(Self {
                username: claims.sub,
                staff: claims.role == Role::Staff,
                auth_time: claims.auth_time,
            }),
            Err(TokenError::Expired) => Err(ApiError::new(
                axum::http::StatusCode::UNAUTHORIZED,
                "user_token_expired",
                "the user token has expired; log in again",
            )),
            Err(error) => {
                tracing::info!(%error, "a user token was refused");
                Err(ApiError::unauthorized("the user token is not valid"))
            }
        }
    }
}

/// The address of the person behind the request: what the caller says
/// (`X-Client-Address`; callers are known programs), or the peer's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddress(pub IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddress {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        if let Some(value) = parts.headers.get(CLIENT_ADDRESS_HEADER) {
            return value
                .to_str()
                .ok()
                .and_then(|text| text.trim().parse().ok())
                .map(Self)
                .ok_or_else(|| ApiError::invalid("X-Client-Address must be an IP address"));
        }
        parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(address)| Self(address.ip()))
            .ok_or_else(ApiError::internal)
    }
}
