//! The transactions service: transfers between accounts, and their status.
//!
//! A transfer is asked for here: the service checks it (the amount, two
//! different accounts, the source owned by the acting user) and publishes
//! `PendingTransaction` as the first event of `trans-N`. The accounts
//! service decides; this service applies `PendingTransaction`,
//! `AcceptedTransaction` and `RejectedTransaction` (and `AccountCreated`,
//! to know the owners) to its schema (`transactions`).
//!
//! # HTTP API
//!
//! Every route needs a caller token (`Authorization: Bearer …`) and the
//! acting user's token (`X-User-Token`); asking for a transfer takes an
//! `Idempotency-Key` (a repeat gets the first answer, and the transfer is
//! asked for once). What the acting user may not see is a 404, exactly
//! like what does not exist. Errors are `{"error": {"code", "message"}}`.
//!
//! | route | does |
//! |---|---|
//! | `POST /transfers` `{from_account_id, to_account_id, amount, reference?}` + key | 202 with the transfer as asked for: `status: "pending"` (the accounts service decides it next); 400 on bad input; 404 when the source is not the acting user's account |
//! | `GET /transfers/{id}?wait=S` | the transfer, with its `status`: `pending`, `accepted`, or `rejected` with `reason`; visible to the user who asked, the receiving account's owner, and staff. With `wait` (1 to 30 seconds), a pending transfer is answered as soon as it is decided, or after `wait` seconds still pending |
//! | `GET /transfers?username=U` or `?account_id=N`, `&before=ID&limit=L` | `{transfers, next_before}`, newest first, `limit` 1..=200 (50) |
//!
//! A transfer is `{transaction_id, from_account_id, to_account_id, amount,
//! reference, username, status, reason, requested_at, decided_at}`;
//! `username` (who asked) is shown only to that user and staff: the
//! receiver sees the sending account and the reference. Amounts are
//! strings (`"30.00"`): more than zero, at most two decimals, at most
//! `10000000.00`.

mod apply;
mod decisions;
mod routes;
mod store;
mod view;

use events::{
    AcceptedTransaction, AccountCreated, DomainEvent, PendingTransaction, RejectedTransaction,
};
use sqlx::PgConnection;
use superclient::{EventRecord, HandlerError, Service};

/// The transactions service.
#[derive(Default)]
pub struct Transactions {
    /// Requests waiting for transfers to be decided.
    decisions: decisions::Decisions,
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();

impl Service for Transactions {
    fn name(&self) -> &'static str {
        "transactions"
    }
    fn default_port(&self) -> u16 {
        8084
    }
    fn applies(&self) -> &'static [&'static str] {
        &[
            AccountCreated::TYPE,
            PendingTransaction::TYPE,
            AcceptedTransaction::TYPE,
            RejectedTransaction::TYPE,
        ]
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

    fn routes(&self) -> axum::Router<superclient::Ctx<Self>> {
        routes::router()
    }
}
