//! Applying an event: its row in the browser, the accounts it concerns,
//! the running balance, the transfer, the user, and the totals.
//!
//! The framework applies each key's events exactly once and in value
//! order, but keys in any order: a transfer's decision comes after its
//! `PendingTransaction` (value 0 of the same `trans-N`), an account's money
//! after its `AccountCreated`, and nothing else is assumed. Users keep the
//! earliest event that names them by position, and totals are sums, so
//! neither depends on the order keys are applied in.

use events::{
    AcceptedTransaction, AccountCreated, AccountCreationRequest, ConfirmedCredit, ConfirmedDebit,
    DomainEvent, PendingTransaction, RejectedTransaction,
};
use sqlx::PgConnection;
use superclient::{EventRecord, HandlerError};

use crate::{
    store::write::{self, Derived, Line, TransferFacts},
    summary,
};

pub async fn apply(db: &mut PgConnection, event: &EventRecord) -> Result<(), HandlerError> {
    let data = event.data.get();
    let bad = |e| HandlerError::bad_data(event, e);
    let derived = match event.event_type.as_str() {
        AccountCreationRequest::TYPE => {
            let request = AccountCreationRequest::decode(data).map_err(bad)?;
            HandlerError::check_key(event, &request.key())?;
            write::see_user(db, &request.username, event).await?;
            Derived::plain(summary::account_requested(&request.username))
        }
        AccountCreated::TYPE => {
            let created = AccountCreated::decode(data).map_err(bad)?;
            HandlerError::check_key(event, &created.key())?;
            write::see_user(db, &created.username, event).await?;
            write::open_account(db, created.account_id, &created.username, event).await?;
            Derived {
                balance_after: Some(rust_decimal::Decimal::ZERO),
                accounts: vec![created.account_id],
                ..Derived::plain(summary::account_created(
                    created.account_id,
                    &created.username,
                ))
            }
        }
        ConfirmedCredit::TYPE => {
            let credit = ConfirmedCredit::decode(data).map_err(bad)?;
            HandlerError::check_key(event, &credit.key())?;
            let line = Line {
                account_id: credit.account_id,
                amount: credit.amount.value(),
                delta: credit.amount.value(),
                transaction_id: credit.transaction_id,
                note: &credit.note,
            };
            book(db, event, line, '+').await?
        }
        ConfirmedDebit::TYPE => {
            let debit = ConfirmedDebit::decode(data).map_err(bad)?;
            HandlerError::check_key(event, &debit.key())?;
            let line = Line {
                account_id: debit.account_id,
                amount: debit.amount.value(),
                delta: -debit.amount.value(),
                transaction_id: debit.transaction_id,
                note: &debit.note,
            };
            book(db, event, line, '-').await?
        }
        PendingTransaction::TYPE => {
            let pending = PendingTransaction::decode(data).map_err(bad)?;
            HandlerError::check_key(event, &pending.key())?;
            write::insert_transfer(db, &pending, event.timestamp).await?;
            let facts = TransferFacts::of(&pending);
            transfer(&facts, summary::pending(&facts.summary()))
        }
        AcceptedTransaction::TYPE => {
            let accepted = AcceptedTransaction::decode(data).map_err(bad)?;
            HandlerError::check_key(event, &accepted.key())?;
            let facts =
                write::decide_transfer(db, accepted.transaction_id, "accepted", None, event)
                    .await?;
            transfer(&facts, summary::accepted(&facts.summary()))
        }
        RejectedTransaction::TYPE => {
            let rejected = RejectedTransaction::decode(data).map_err(bad)?;
            HandlerError::check_key(event, &rejected.key())?;
            let facts = write::decide_transfer(
                db,
                rejected.transaction_id,
                "rejected",
                Some(&rejected.reason),
                event,
            )
            .await?;
            write::count_rejection(db, &rejected.reason, facts.amount).await?;
            transfer(&facts, summary::rejected(&rejected.reason))
        }
        // The bus delivers only the types the service registered for.
        other => {
            return Err(HandlerError::Other(format!(
                "the reporting service does not apply {other}"
            )));
        }
    };
    write::insert_event(db, event, &derived).await?;
    Ok(())
}

/// A credit or a debit: the account's balance moves, and the line records
/// the balance after it.
async fn book(
    db: &mut PgConnection,
    event: &EventRecord,
    line: Line<'_>,
    sign: char,
) -> Result<Derived, HandlerError> {
    let balance = write::book_line(db, event, &line).await?;
    Ok(Derived {
        amount: Some(line.amount),
        transaction_id: line.transaction_id,
        balance_after: Some(balance),
        accounts: vec![line.account_id],
        cash: line.transaction_id.is_none(),
        ..Derived::plain(summary::movement(
            line.account_id,
            sign,
            line.amount,
            line.transaction_id,
        ))
    })
}

/// A transfer's event concerns both its accounts.
fn transfer(facts: &TransferFacts, summary: String) -> Derived {
    let mut accounts = vec![facts.from_account_id, facts.to_account_id];
    accounts.dedup();
    Derived {
        amount: Some(facts.amount),
        transaction_id: Some(facts.transaction_id),
        accounts,
        ..Derived::plain(summary)
    }
}
