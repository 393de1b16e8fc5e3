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
//! Every route needs a caller token (`Authorization: Bearer …`) and the
//! acting user's token (`X-User-Token`); deposits and withdrawals take an
//! `Idempotency-Key` (a repeat gets the first answer). An account is
//! visible only to its owner (the username of its `AccountCreated`) and
//! staff; anyone else's is a 404 exactly like one that does not exist.
//! Amounts are strings with at most two decimals (`"30.00"`), more than
//! zero and at most `10000000.00`. Errors are `{"error": {"code", "message"}}`.
//!
//! | route | does |
//! |---|---|
//! | `GET /accounts?username=U&after=&limit=` | `{accounts: [account], next_after}`, by id, `limit` 1..=50 (50) |
//! | `GET /accounts/{id}` | the account |
//! | `POST /accounts/{id}/deposits` `{amount, note?}` + key | 201 `{account_id, balance, entry}`: the new balance and statement entry |
//! | `POST /accounts/{id}/withdrawals` `{amount, note?}` + key | 201 likewise; 422 `insufficient_funds` |
//! | `GET /accounts/{id}/statement?from=&to=&before=&limit=` | `{account_id, balance, entries, next_before}`, newest first; `from`/`to` are dates (inclusive), `before` a version to page from (`next_before` of the previous page), `limit` 1..=200 (50) |
//!
//! An account is `{account_id, username, balance, version, created_at}`;
//! a statement entry `{version, recorded_at, description, kind ("credit" or
//! "debit"), amount, balance, transaction_id}`. A decision on an account
//! whose events cannot all be applied here (one is parked, waiting for
//! staff) is refused with 503 `temporarily_unavailable` and changes nothing.

mod apply;
mod reactions;
mod routes;
mod store;
pub mod transfer;

use events::{
    AccountCreated, AccountCreationRequest, ConfirmedCredit, ConfirmedDebit, DomainEvent,
    PendingTransaction,
};
use sqlx::PgConnection;
use superclient::{EventRecord, HandlerError, Reaction, Service};

/// The accounts service.
pub struct Accounts;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();

impl Service for Accounts {
    fn name(&self) -> &'static str {
        "accounts"
    }
    fn default_port(&self) -> u16 {
        8083
    }
    fn applies(&self) -> &'static [&'static str] {
        &[
            AccountCreated::TYPE,
            ConfirmedCredit::TYPE,
            ConfirmedDebit::TYPE,
        ]
    }
    fn reacts_to(&self) -> &'static [&'static str] {
        &[AccountCreationRequest::TYPE, PendingTransaction::TYPE]
    }

    fn migrator(&self) -> &'static sqlx::migrate::Migrator {
        &MIGRATOR
    }

    async fn apply(&self, db: &mut PgConnection, event: &EventRecord) -> Result<(), HandlerError> {
        apply::apply_all(db, &[event]).await
    }

    async fn apply_all(
        &self,
        db: &mut PgConnection,
        events: &[&EventRecord],
    ) -> Result<(), HandlerError> {
        apply::apply_all(db, events).await
    }

    async fn react(
        &self,
        db: &mut PgConnection,
        event: &EventRecord,
    ) -> Result<Reaction, HandlerError> {
        let mut reactions = reactions::react_all(db, &[event]).await;
        reactions.pop().unwrap_or_else(|| Ok(Reaction::default()))
    }

    async fn react_all(
        &self,
        db: &mut PgConnection,
        commands: &[&EventRecord],
    ) -> Vec<Result<Reaction, HandlerError>> {
        reactions::react_all(db, commands).await
    }

    fn routes(&self) -> axum::Router<superclient::Ctx<Self>> {
        routes::router()
    }
}
