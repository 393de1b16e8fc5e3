//! The users service: sign-up, log-in (signed user tokens), and the
//! accounts users ask for.
//!
//! It applies `UserCreated`, `AccountCreationRequest` and `AccountCreated`
//! to its schema (`users`), and publishes `UserCreated` with the user's
//! first `AccountCreationRequest` (one atomic message), and further
//! requests. The accounts service answers each request with `AccountCreated`.
//! It alone holds the private key that signs user tokens.
//!
//! # HTTP API
//!
//! Every route needs a caller token (`Authorization: Bearer …`). Routes
//! that act for a user take the user's token (`X-User-Token`); routes that
//! change state take an `Idempotency-Key` (a repeat gets the first answer;
//! the same key with another request is a 422 `idempotency_key_reused`).
//! Errors are `{"error": {"code", "message"}}`. What is not the acting
//! user's is a 404, like what does not exist.
//!
//! | route | does |
//! |---|---|
//! | `POST /users` `{username, display_name, password}` + key | signs up: 201 `{user, first_account}`; 409 `username_taken`; 400 on bad input |
//! | `POST /sessions` `{username, password}` | logs in: 200 `{token, expires_at, user}`; 401 `wrong_credentials` (one message for a wrong username or password); 429 `too_many_attempts` with `Retry-After` |
//! | `POST /sessions/renew` (user token) | a fresh token for the same log-in, up to 12 hours after it: 200 `{token, expires_at, user}`; 401 `session_expired` |
//! | `GET /users/{username}` | `{username, display_name, staff}` |
//! | `GET /users/{username}/accounts?after=&limit=` | `{accounts: [account request], next_after}`, oldest first, `limit` 1..=10 (10) |
//! | `POST /users/{username}/accounts` + key | asks for another account: 201 with the request once created, 202 while `pending`; 422 `too_many_accounts` past 10 |
//! | `GET /account-requests/{request_id}` | the account request |
//!
//! A user is `{username, display_name, staff}`; an account request is
//! `{request_id, status ("pending" or "created"), account_id, requested_at}`.
//! Usernames are 3 to 32 of `a-z`, `0-9` and `_`; display names 1 to 100
//! characters; passwords 10 to 1024 characters, stored only as argon2id
//! hashes, which no response contains.
//!
//! The bank's staff log-in comes from `STAFF_USERNAME` and `STAFF_PASSWORD`:
//! configuration, not an event, so nobody can sign up under its name. Its
//! token has the role `staff`.

mod password;
mod routes;
mod rules;
mod slots;
mod staff;
mod store;
mod throttle;

use events::{AccountCreated, AccountCreationRequest, DomainEvent, UserCreated};
use sqlx::PgConnection;
use superclient::{EventRecord, HandlerError, Service};
use trust::user_token::Issuer;

pub use password::Passwords;
pub use staff::StaffLogin;
use throttle::LoginThrottle;

/// The users service.
pub struct Users {
    staff: Option<StaffLogin>,
    issuer: Issuer,
    passwords: Passwords,
    throttle: LoginThrottle,
}

impl Users {
    /// `issuer` signs user tokens; `passwords` bounds the argon2 work.
    pub fn new(staff: Option<StaffLogin>, issuer: Issuer, passwords: Passwords) -> Self {
        Self {
            staff,
            issuer,
            passwords,
            throttle: LoginThrottle::default(),
        }
    }
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();

impl Service for Users {
    fn name(&self) -> &'static str {
        "users"
    }
    fn default_port(&self) -> u16 {
        8082
    }
    fn applies(&self) -> &'static [&'static str] {
        &[
            UserCreated::TYPE,
            AccountCreationRequest::TYPE,
            AccountCreated::TYPE,
        ]
    }

    fn migrator(&self) -> &'static sqlx::migrate::Migrator {
        &MIGRATOR
    }

    async fn apply(&self, db: &mut PgConnection, event: &EventRecord) -> Result<(), HandlerError> {
        let data = event.data.get();
        let at = event.timestamp;
        let bad = |e| HandlerError::bad_data(event, e);
        match event.event_type.as_str() {
            UserCreated::TYPE => {
                let user = UserCreated::decode(data).map_err(bad)?;
                HandlerError::check_key(event, &user.key())?;
                store::insert_user(db, &user, at).await?;
            }
            AccountCreationRequest::TYPE => {
                let request = AccountCreationRequest::decode(data).map_err(bad)?;
                HandlerError::check_key(event, &request.key())?;
                store::record_request(db, &request, at).await?;
            }
            AccountCreated::TYPE => {
                let created = AccountCreated::decode(data).map_err(bad)?;
                HandlerError::check_key(event, &created.key())?;
                store::record_account(db, &created, at).await?;
            }
            _ => {}
        }
        Ok(())
    }

    fn routes(&self) -> axum::Router<superclient::Ctx<Self>> {
        routes::router()
    }
}
