//! The users service: sign-up, credentials, and the accounts users ask for.
//!
//! It applies `UserCreated`, `AccountCreationRequest` and `AccountCreated`
//! to its schema (`users`), and publishes `UserCreated` with the user's
//! first `AccountCreationRequest` (one atomic message), and further
//! requests. The accounts service answers each request with `AccountCreated`.
//!
//! # HTTP API
//!
//! Every route needs `Authorization: Bearer SERVICE_TOKEN`; the ones that
//! act for a user take `X-Acting-User` (and `X-Acting-Staff: true` for bank
//! staff). Errors are `{"error": {"code", "message"}}`.
//!
//! | route | does |
//! |---|---|
//! | `POST /users` `{username, display_name, password}` | signs up; 201 with the user and `first_account` (`request_id`, `status`, `account_id` once created); 409 `username_taken`; 400 on bad input |
//! | `POST /users/{username}/verify` `{password}` | 200 with the user, or 401 `wrong_credentials` |
//! | `GET /users/{username}` | the user (acting user: that user or staff) |
//! | `GET /users/{username}/accounts` | `{accounts: [{request_id, status, account_id, requested_at}]}`, oldest first |
//! | `POST /users/{username}/accounts` | requests another account; 201 when created in time, else 202 with `status: "pending"` |
//! | `GET /account-requests/{request_id}` | a request's status: `pending` or `created` with `account_id` |
//!
//! Usernames are 3 to 32 of `a-z`, `0-9` and `_`; display names 1 to 100
//! characters; passwords at least 10 characters, stored only as argon2id
//! hashes, which no response contains.
//!
//! The bank's staff login comes from `STAFF_USERNAME` and `STAFF_PASSWORD`:
//! it is configuration, not an event, so nobody can sign up under its name.

mod password;
mod routes;
mod rules;
mod staff;
mod store;

use events::{AccountCreated, AccountCreationRequest, DomainEvent, UserCreated};
use sqlx::PgConnection;
use superclient::{EventRecord, HandlerError, Service};

pub use staff::StaffLogin;

/// The users service.
pub struct Users {
    staff: Option<StaffLogin>,
}

impl Users {
    pub fn new(staff: Option<StaffLogin>) -> Self {
        Self { staff }
    }
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();

impl Service for Users {
    const NAME: &'static str = "users";
    const DEFAULT_PORT: u16 = 8082;
    const APPLIES: &'static [&'static str] = &[
        UserCreated::TYPE,
        AccountCreationRequest::TYPE,
        AccountCreated::TYPE,
    ];

    fn migrator(&self) -> &'static sqlx::migrate::Migrator {
        &MIGRATOR
    }

    async fn apply(&self, db: &mut PgConnection, event: &EventRecord) -> Result<(), HandlerError> {
        let data = event.data.get();
        let at = event.timestamp;
        match event.event_type.as_str() {
            UserCreated::TYPE => {
                let user =
                    UserCreated::decode(data).map_err(|e| HandlerError::bad_data(event, e))?;
                store::insert_user(db, &user, at).await?;
            }
            AccountCreationRequest::TYPE => {
                let request = AccountCreationRequest::decode(data)
                    .map_err(|e| HandlerError::bad_data(event, e))?;
                store::record_request(db, &request, at).await?;
            }
            AccountCreated::TYPE => {
                let created =
                    AccountCreated::decode(data).map_err(|e| HandlerError::bad_data(event, e))?;
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
