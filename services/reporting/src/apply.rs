//! Applying a batch of events: their rows in the browser, the accounts
//! they concern, the running balances, the transfers, the users, and the
//! totals, with a few set-based statements per table (`store::write`).
//!
//! The framework applies each key's events exactly once and in value
//! order, but keys in any order: a transfer's decision comes after its
//! `PendingTransaction` (value 0 of the same `trans-N`), an account's money
//! after its `AccountCreated`, and nothing else is assumed. So a batch is
//! written table by table in that order (accounts before their lines,
//! transfers before their decisions). Users keep the earliest event that
//! names them by position, and totals are sums, so neither depends on the
//! order keys are applied in.

use events::{
    AcceptedTransaction, AccountCreated, AccountCreationRequest, ConfirmedCredit, ConfirmedDebit,
    DomainEvent, PendingTransaction, RejectedTransaction,
};
use sqlx::PgConnection;
use superclient::{EventRecord, HandlerError};

use crate::{
    store::write::{self, Decision, Derived, Line, TransferFacts},
    summary,
};

/// An event, decoded.
enum Fact {
    Requested(AccountCreationRequest),
    Created(AccountCreated),
    Moved(Line, char),
    Asked(PendingTransaction),
    Decided(Decision),
}

impl Fact {
    fn decode(event: &EventRecord) -> Result<Self, HandlerError> {
        let data = event.data.get();
        let bad = |e| HandlerError::bad_data(event, e);
        Ok(match event.event_type.as_str() {
            AccountCreationRequest::TYPE => {
                let request = AccountCreationRequest::decode(data).map_err(bad)?;
                HandlerError::check_key(event, &request.key())?;
                Self::Requested(request)
            }
            AccountCreated::TYPE => {
                let created = AccountCreated::decode(data).map_err(bad)?;
                HandlerError::check_key(event, &created.key())?;
                Self::Created(created)
            }
            ConfirmedCredit::TYPE => {
                let credit = ConfirmedCredit::decode(data).map_err(bad)?;
                HandlerError::check_key(event, &credit.key())?;
                let line = Line {
                    account_id: credit.account_id,
                    amount: credit.amount.value(),
                    delta: credit.amount.value(),
                    transaction_id: credit.transaction_id,
                    note: credit.note,
                };
                Self::Moved(line, '+')
            }
            ConfirmedDebit::TYPE => {
                let debit = ConfirmedDebit::decode(data).map_err(bad)?;
                HandlerError::check_key(event, &debit.key())?;
                let line = Line {
                    account_id: debit.account_id,
                    amount: debit.amount.value(),
                    delta: -debit.amount.value(),
                    transaction_id: debit.transaction_id,
                    note: debit.note,
                };
                Self::Moved(line, '-')
            }
            PendingTransaction::TYPE => {
                let pending = PendingTransaction::decode(data).map_err(bad)?;
                HandlerError::check_key(event, &pending.key())?;
                Self::Asked(pending)
            }
            AcceptedTransaction::TYPE => {
                let accepted = AcceptedTransaction::decode(data).map_err(bad)?;
                HandlerError::check_key(event, &accepted.key())?;
                Self::Decided(Decision {
                    transaction_id: accepted.transaction_id,
                    status: "accepted",
                    reason: None,
                    at: event.timestamp,
                })
            }
            RejectedTransaction::TYPE => {
                let rejected = RejectedTransaction::decode(data).map_err(bad)?;
                HandlerError::check_key(event, &rejected.key())?;
                Self::Decided(Decision {
                    transaction_id: rejected.transaction_id,
                    status: "rejected",
                    reason: Some(rejected.reason),
                    at: event.timestamp,
                })
            }
            // The bus delivers only the types the service registered for.
            other => {
                return Err(HandlerError::Other(format!(
                    "the reporting service does not apply {other}"
                )));
            }
        })
    }
}

pub async fn apply_all(db: &mut PgConnection, events: &[&EventRecord]) -> Result<(), HandlerError> {
    let facts: Vec<(Fact, &EventRecord)> = events
        .iter()
        .map(|event| Ok((Fact::decode(event)?, *event)))
        .collect::<Result<_, HandlerError>>()?;

    let mut users = Vec::new();
    let mut opened = Vec::new();
    let mut lines = Vec::new();
    let mut asked = Vec::new();
    let mut decisions = Vec::new();
    for (fact, event) in &facts {
        match fact {
            Fact::Requested(request) => users.push((request.username.as_str(), *event)),
            Fact::Created(created) => {
                users.push((created.username.as_str(), *event));
                opened.push((created.account_id, created.username.as_str(), *event));
            }
            Fact::Moved(line, _) => lines.push((line, *event)),
            Fact::Asked(pending) => asked.push((pending, event.timestamp)),
            Fact::Decided(decision) => decisions.push(decision),
        }
    }
    write::see_users(db, &users).await?;
    write::open_accounts(db, &opened).await?;
    write::insert_transfers(db, &asked).await?;
    let mut balances = write::book_lines(db, &lines).await?.into_iter();
    let decided = write::decide_transfers(db, &decisions).await?;

    let mut rows = Vec::with_capacity(facts.len());
    for (fact, event) in &facts {
        let derived = match fact {
            Fact::Requested(request) => {
                Derived::plain(summary::account_requested(&request.username))
            }
            Fact::Created(created) => Derived {
                balance_after: Some(rust_decimal::Decimal::ZERO),
                accounts: vec![created.account_id],
                ..Derived::plain(summary::account_created(
                    created.account_id,
                    &created.username,
                ))
            },
            Fact::Moved(line, sign) => Derived {
                amount: Some(line.amount),
                transaction_id: line.transaction_id,
                balance_after: balances.next(),
                accounts: vec![line.account_id],
                cash: line.transaction_id.is_none(),
                ..Derived::plain(summary::movement(
                    line.account_id,
                    *sign,
                    line.amount,
                    line.transaction_id,
                ))
            },
            Fact::Asked(pending) => {
                let facts = TransferFacts::of(pending);
                transfer(&facts, summary::pending(&facts.summary()))
            }
            Fact::Decided(decision) => {
                let facts = &decided[&decision.transaction_id];
                let summary = match &decision.reason {
                    None => summary::accepted(&facts.summary()),
                    Some(reason) => summary::rejected(reason),
                };
                transfer(facts, summary)
            }
        };
        rows.push((*event, derived));
    }
    write::insert_events(db, &rows).await
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
