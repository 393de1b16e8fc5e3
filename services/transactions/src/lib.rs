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
//! Every route needs `Authorization: Bearer SERVICE_TOKEN` and
//! `X-Acting-User` (`X-Acting-Staff: true` for bank staff). Errors are
//! `{"error": {"code", "message"}}`.
//!
//! | route | does |
//! |---|---|
//! | `POST /transfers` `{from_account_id, to_account_id, amount, reference?}` | 202 with the transfer, `status: "pending"`; 400 on bad input; 403 when the source belongs to someone else; 404 when it does not exist |
//! | `GET /transfers/{id}` | the transfer: `status` `pending`, `accepted` or `rejected` with `reason`; 404 when unknown; visible to the user who asked, the receiving account's owner and staff |
//! | `GET /transfers?username=U` or `?account_id=N`, `&before=ID&limit=L` | transfers newest first (`next_before` pages on) |
//!
//! A transfer is `{transaction_id, from_account_id, to_account_id, amount,
//! reference, username, status, reason, requested_at, decided_at}`;
//! amounts are strings (`"30.00"`): more than zero, at most two decimals,
//! at most `10000000.00`.

mod routes;
mod store;

use events::{
    AcceptedTransaction, AccountCreated, DomainEvent, PendingTransaction, RejectedTransaction,
};
use sqlx::PgConnection;
use superclient::{EventRecord, HandlerError, Service};

/// The transactions service.
pub struct Transactions;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();

impl Service for Transactions {
    const NAME: &'static str = "transactions";
    const DEFAULT_PORT: u16 = 8084;
    const APPLIES: &'static [&'static str] = &[
        AccountCreated::TYPE,
        PendingTransaction::TYPE,
        AcceptedTransaction::TYPE,
        RejectedTransaction::TYPE,
    ];

    fn migrator(&self) -> &'static sqlx::migrate::Migrator {
        &MIGRATOR
    }

    async fn apply(&self, db: &mut PgConnection, event: &EventRecord) -> Result<(), HandlerError> {
        let data = event.data.get();
        let bad = |e| HandlerError::bad_data(event, e);
        match event.event_type.as_str() {
            AccountCreated::TYPE => {
                store::record_owner(db, &AccountCreated::decode(data).map_err(bad)?).await?
            }
            PendingTransaction::TYPE => {
                store::insert_transfer(
                    db,
                    &PendingTransaction::decode(data).map_err(bad)?,
                    event.timestamp,
                )
                .await?;
            }
            AcceptedTransaction::TYPE => {
                let accepted = AcceptedTransaction::decode(data).map_err(bad)?;
                store::decide(
                    db,
                    accepted.transaction_id,
                    "accepted",
                    None,
                    event.timestamp,
                )
                .await?;
            }
            RejectedTransaction::TYPE => {
                let rejected = RejectedTransaction::decode(data).map_err(bad)?;
                store::decide(
                    db,
                    rejected.transaction_id,
                    "rejected",
                    Some(&rejected.reason),
                    event.timestamp,
                )
                .await?;
            }
            _ => {}
        }
        Ok(())
    }

    fn routes(&self) -> axum::Router<superclient::Ctx<Self>> {
        routes::router()
    }
}
