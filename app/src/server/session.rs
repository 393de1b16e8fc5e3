//! Who is logged in: the server-side session (tower-sessions, stored in
//! `web.sessions`) holds the person's user token from the users service.
//! The cookie carries only the session's id: `HttpOnly`, `SameSite=Lax`,
//! and `Secure` when the site is served over https.
//!
//! User tokens live 15 minutes; [`signed_in`] renews one that is more than
//! five minutes old (the users service allows that up to 12 hours after
//! logging in), and the session lasts as long as its token: a person stays
//! logged in while they use the site, and is logged out 10 to 15 minutes
//! after their last request.

use std::net::{IpAddr, SocketAddr};

use axum::extract::ConnectInfo;
use chrono::{DateTime, Duration, Utc};
use reqwest::Method;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use tower_sessions::{
    Expiry, Session, SessionManagerLayer, SessionStore, cookie::SameSite, session::Id,
    session_store::ExpiredDeletion,
};
use tower_sessions_sqlx_store::PostgresStore;

use super::services::{CallFor, ServiceError, Services};
use crate::error::AppError;

const USER_KEY: &str = "user";
const OPENING_KEY: &str = "opening_accounts";

/// How long a session lasts without a request: a user token's lifetime,
/// since only a token that has not expired yet can be renewed.
const IDLE_TIMEOUT: time::Duration = time::Duration::minutes(15);

/// Renew a user token when less than this is left of it. A token can only
/// be renewed before it expires, so this sets how long a person may be
/// away: between 10 and 15 minutes.
const RENEW_BEFORE: Duration = Duration::minutes(10);

/// The person of a session, and the token the services know them by.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SessionUser {
    pub username: String,
    pub display_name: String,
    pub staff: bool,
    pub token: String,
    pub expires_at: DateTime<Utc>,
}

/// What the users service answers for a log-in or a renewal.
#[derive(Deserialize)]
pub struct Issued {
    pub token: String,
    pub expires_at: DateTime<Utc>,
    pub user: UserView,
}

#[derive(Clone, Debug, Deserialize)]
pub struct UserView {
    pub username: String,
    pub display_name: String,
    pub staff: bool,
}

impl SessionUser {
    pub fn from_issued(issued: Issued) -> Self {
        Self {
            username: issued.user.username,
            display_name: issued.user.display_name,
            staff: issued.user.staff,
            token: issued.token,
            expires_at: issued.expires_at,
        }
    }

    /// The call made for this person.
    pub fn call(&self) -> CallFor<'_> {
        CallFor {
            user_token: Some(&self.token),
            ..CallFor::default()
        }
    }
}

/// The session store (`web.sessions`), with expired sessions deleted every
/// ten minutes.
pub async fn store(pool: PgPool) -> Result<PostgresStore, sqlx::Error> {
    let store = PostgresStore::new(pool)
        .with_schema_name("web")
        .map_err(|error| sqlx::Error::Configuration(error.to_string().into()))?
        .with_table_name("sessions")
        .map_err(|error| sqlx::Error::Configuration(error.to_string().into()))?;
    store.migrate().await?;
    tokio::spawn(
        store
            .clone()
            .continuously_delete_expired(tokio::time::Duration::from_secs(600)),
    );
    Ok(store)
}

/// The layer that puts a [`Session`] on every request.
pub fn layer(store: PostgresStore, secure_cookies: bool) -> SessionManagerLayer<PostgresStore> {
    SessionManagerLayer::new(store)
        .with_name("ledgerline_session")
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_secure(secure_cookies)
        .with_expiry(Expiry::OnInactivity(IDLE_TIMEOUT))
}

/// The person of the session `id` with a user token that has not expired,
/// read afresh from the store (a log-out elsewhere, or an idle session's
/// end, shows here).
pub async fn signed_in_user(store: &PostgresStore, id: &Id) -> Option<SessionUser> {
    let record = store.load(id).await.ok()??;
    if record.expiry_date <= time::OffsetDateTime::now_utc() {
        return None;
    }
    let user: SessionUser = serde_json::from_value(record.data.get(USER_KEY)?.clone()).ok()?;
    (user.expires_at > Utc::now()).then_some(user)
}

/// The session of the request a server function is answering.
pub async fn current_session() -> Result<Session, AppError> {
    leptos_axum::extract::<Session>()
        .await
        .map_err(|_| AppError::Database)
}

/// The browser's address, for the users service's log-in throttle.
pub async fn client_address() -> Option<IpAddr> {
    leptos_axum::extract::<ConnectInfo<SocketAddr>>()
        .await
        .ok()
        .map(|ConnectInfo(address)| address.ip())
}

/// Starts a session for a person who just logged in: a fresh session id
/// (so an id planted before the log-in is worth nothing afterwards).
pub async fn begin(session: &Session, user: &SessionUser) -> Result<(), AppError> {
    session.cycle_id().await?;
    session.insert(USER_KEY, user).await?;
    Ok(())
}

/// Whether this session asked for an account that has not opened yet.
pub async fn is_opening_accounts(session: &Session) -> Result<bool, AppError> {
    Ok(session.get::<bool>(OPENING_KEY).await?.unwrap_or(false))
}

pub async fn set_opening_accounts(session: &Session, opening: bool) -> Result<(), AppError> {
    if opening {
        session.insert(OPENING_KEY, true).await?;
    } else {
        session.remove::<bool>(OPENING_KEY).await?;
    }
    Ok(())
}

/// Ends the session on the server: the id is worth nothing afterwards.
pub async fn end(session: &Session) -> Result<(), AppError> {
    session.flush().await?;
    Ok(())
}

/// The person logged in to `session`, if any, with a user token good for
/// at least another ten minutes (renewed here when needed). A log-in the users
/// service will no longer renew ends the session.
pub async fn user_of(
    session: &Session,
    services: &Services,
) -> Result<Option<SessionUser>, AppError> {
    let Some(user) = session.get::<SessionUser>(USER_KEY).await? else {
        return Ok(None);
    };
    if user.expires_at - Utc::now() > RENEW_BEFORE {
        return Ok(Some(user));
    }
    let renewed = services
        .users::<Issued>(Method::POST, "/sessions/renew", &user.call(), None::<&()>)
        .await;
    match renewed {
        Ok(issued) => {
            let user = SessionUser::from_issued(issued);
            session.insert(USER_KEY, &user).await?;
            Ok(Some(user))
        }
        Err(ServiceError::Api { status, .. }) if status == reqwest::StatusCode::UNAUTHORIZED => {
            end(session).await?;
            Ok(None)
        }
        Err(error) => Err(error.into()),
    }
}

/// The person the current server function acts for, or
/// [`AppError::NotSignedIn`].
pub async fn signed_in() -> Result<SessionUser, AppError> {
    let session = current_session().await?;
    let services = super::state::services()?;
    user_of(&session, &services)
        .await?
        .ok_or(AppError::NotSignedIn)
}
