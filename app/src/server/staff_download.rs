//! Who may download what staff see: the logged-in staff member, asking
//! from the console itself.

use axum::{
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};
use tower_sessions::Session;

use super::{
    session::{self, SessionUser},
    state::AppState,
};

/// The logged-in staff member, or the answer for anyone else: the log-in
/// page for no one, not found for a customer, and a refusal for a download
/// another site started (a link elsewhere would otherwise export in a
/// staff member's name: the session cookie goes along with top-level GETs).
pub async fn staff_of(
    session: &Session,
    state: &AppState,
    headers: &HeaderMap,
    back: &str,
) -> Result<SessionUser, Response> {
    let fetched_from = headers
        .get("sec-fetch-site")
        .and_then(|value| value.to_str().ok());
    if fetched_from.is_some_and(|site| site != "same-origin" && site != "none") {
        return Err((
            StatusCode::FORBIDDEN,
            "downloads must be asked for from this site's pages\n",
        )
            .into_response());
    }
    match session::user_of(session, &state.services).await {
        Ok(Some(user)) if user.staff => Ok(user),
        Ok(Some(_)) => Err((StatusCode::NOT_FOUND, "not found\n").into_response()),
        Ok(None) => Err((
            StatusCode::SEE_OTHER,
            [(header::LOCATION, format!("/login?next={back}"))],
        )
            .into_response()),
        Err(_) => Err(StatusCode::SERVICE_UNAVAILABLE.into_response()),
    }
}
