//! Who may call a service, and for whom.
//!
//! Only callers that present the internal service token (the web server,
//! the load tool) reach the API. They act for a user, named in
//! `X-Acting-User`; `X-Acting-Staff: true` says that user is bank staff.
//! Services check the acting user against their own data where they can
//! (an account's owner).

use axum::{
    extract::{FromRequestParts, Request, State},
    http::request::Parts,
    middleware::Next,
    response::{IntoResponse, Response},
};

use super::ApiError;
use crate::{runtime::Ctx, service::Service};

pub const USER_HEADER: &str = "x-acting-user";
pub const STAFF_HEADER: &str = "x-acting-staff";

pub(crate) async fn require_service_token<S: Service>(
    State(ctx): State<Ctx<S>>,
    request: Request,
    next: Next,
) -> Response {
    let presented = request
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    match presented {
        Some(token) if ctx.service_token_matches(token) => next.run(request).await,
        Some(_) => ApiError::unauthorized("the service token is wrong").into_response(),
        None => ApiError::unauthorized("a service token is required (Authorization: Bearer …)")
            .into_response(),
    }
}

/// The user a request acts for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActingUser {
    pub username: String,
    pub staff: bool,
}

impl ActingUser {
    /// Whether this user may see or act on what belongs to `owner`.
    pub fn may_access(&self, owner: &str) -> bool {
        self.staff || self.username == owner
    }

    /// Refuses unless [`Self::may_access`].
    pub fn require_access(&self, owner: &str, what: &str) -> Result<(), ApiError> {
        if self.may_access(owner) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "{what} belongs to another user"
            )))
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ActingUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let header = |name: &str| {
            parts
                .headers
                .get(name)
                .map(|value| {
                    value
                        .to_str()
                        .map_err(|_| ApiError::invalid(format!("{name} is not text")))
                })
                .transpose()
        };
        let username = header(USER_HEADER)?
            .filter(|name| !name.is_empty())
            .ok_or_else(|| {
                ApiError::invalid("X-Acting-User is required: the user this request acts for")
            })?
            .to_owned();
        let staff = match header(STAFF_HEADER)? {
            None | Some("false") => false,
            Some("true") => true,
            Some(_) => return Err(ApiError::invalid("X-Acting-Staff must be true or false")),
        };
        Ok(Self { username, staff })
    }
}
