//! The accounts service: accounts, balances, deposits, withdrawals, the
//! decision on every transfer, and statements.
//!
//! It applies `AccountCreated`, `ConfirmedCredit` and `ConfirmedDebit` to
//! its schema (`accounts`) and reacts to two commands:
//!
//! - `AccountCreationRequest`: allocates an id and publishes `AccountCreated`
//!   as the first event of `acc-N`, so two instances can never hand out the
//!   same id (the loser catches up and takes another).
//! - `PendingTransaction`: publishes in one atomic message either
//!   `AcceptedTransaction` + `ConfirmedDebit` + `ConfirmedCredit`, or
//!   `RejectedTransaction` with a reason (`insufficient funds`, `unknown
//!   account`, `same account`). The debit and credit carry the accounts'
//!   next consistency values: if either account moved meanwhile, the bus
//!   refuses, and the decision is made again on the new balance.
//!
//! # HTTP API
//!
//! Every route needs `Authorization: Bearer SERVICE_TOKEN` and
//! `X-Acting-User` (`X-Acting-Staff: true` for bank staff); an account is
//! visible only to its owner (the username of its `AccountCreated`) and
//! staff. Amounts are strings with at most two decimals (`"30.00"`), more
//! than zero and at most `10000000.00`. Errors are
//! `{"error": {"code", "message"}}`.
//!
//! | route | does |
//! |---|---|
//! | `GET /accounts?username=U` | U's accounts with balances |
//! | `GET /accounts/{id}` | `{account_id, username, balance, version, created_at}` |
//! | `POST /accounts/{id}/deposits` `{amount, note?}` | 201 with the new balance and statement entry |
//! | `POST /accounts/{id}/withdrawals` `{amount, note?}` | 201 likewise; 422 `insufficient_funds` |
//! | `GET /accounts/{id}/statement?from=&to=&before=&limit=` | entries newest first: `{version, recorded_at, description, kind, amount, balance}`; `from`/`to` are dates (inclusive), `before` a version to page from (`next_before` of the previous page), `limit` 1..=200 (50) |

mod reactions;
mod routes;
mod store;
pub mod transfer;

use events::{
    AccountCreated, AccountCreationRequest, ConfirmedCredit, ConfirmedDebit, DomainEvent,
    PendingTransaction,
};
use sqlx::PgConnection;
use superclient::{Emit, EventRecord, HandlerError, Service};

/// The accounts service.
pub struct Accounts;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();

impl Service for Accounts {
    const NAME: &'static str = "accounts";
    const DEFAULT_PORT: u16 = 8083;
    const APPLIES: &'static [&'static str] = &[
        AccountCreated::TYPE,
        ConfirmedCredit::TYPE,
        ConfirmedDebit::TYPE,
    ];
    const REACTS_TO: &'static [&'static str] =
        &[AccountCreationRequest::TYPE, PendingTransaction::TYPE];

    fn migrator(&self) -> &'static sqlx::migrate::Migrator {
        &MIGRATOR
    }

    async fn apply(&self, db: &mut PgConnection, event: &EventRecord) -> Result<(), HandlerError> {
        let data = event.data.get();
        let bad = |e| HandlerError::bad_data(event, e);
        match event.event_type.as_str() {
            AccountCreated::TYPE => {
                store::create_account(db, &AccountCreated::decode(data).map_err(bad)?, event)
                    .await?;
            }
            ConfirmedCredit::TYPE => {
                let credit = ConfirmedCredit::decode(data).map_err(bad)?;
                let movement = store::Movement::credit(&credit);
                store::book(db, &movement, event).await?;
            }
            ConfirmedDebit::TYPE => {
                let debit = ConfirmedDebit::decode(data).map_err(bad)?;
                let movement = store::Movement::debit(&debit);
                store::book(db, &movement, event).await?;
            }
            _ => {}
        }
        Ok(())
    }

    async fn react(
        &self,
        db: &mut PgConnection,
        event: &EventRecord,
    ) -> Result<Vec<Emit>, HandlerError> {
        match event.event_type.as_str() {
            AccountCreationRequest::TYPE => reactions::open_account(db, event).await,
            PendingTransaction::TYPE => reactions::decide_transfer(db, event).await,
            _ => Ok(Vec::new()),
        }
    }

    fn routes(&self) -> axum::Router<superclient::Ctx<Self>> {
        routes::router()
    }
}
