//! The commands the accounts service answers.

use events::{
    AcceptedTransaction, AccountCreated, AccountCreationRequest, ConfirmedCredit, ConfirmedDebit,
    DomainEvent, PendingTransaction, RejectedTransaction,
};
use sqlx::PgConnection;
use superclient::{Emit, EventRecord, Expect, HandlerError};

use crate::{
    store,
    transfer::{self, Verdict},
};

/// An `AccountCreated` for the request, unless it has its account already.
pub async fn open_account(
    db: &mut PgConnection,
    event: &EventRecord,
) -> Result<Vec<Emit>, HandlerError> {
    let request = AccountCreationRequest::decode(event.data.get())
        .map_err(|e| HandlerError::bad_data(event, e))?;
    if store::account_of_request(db, request.request_id)
        .await?
        .is_some()
    {
        return Ok(Vec::new());
    }
    let created = AccountCreated {
        account_id: store::next_account_id(db).await?,
        request_id: request.request_id,
        username: request.username,
    };
    Ok(vec![Emit::new(
        AccountCreated::TYPE,
        created.key(),
        Expect::Value(0),
        &created,
    )?])
}

/// Accepted (with the debit and the credit) or rejected, in one message.
pub async fn decide_transfer(
    db: &mut PgConnection,
    event: &EventRecord,
) -> Result<Vec<Emit>, HandlerError> {
    let pending = PendingTransaction::decode(event.data.get())
        .map_err(|e| HandlerError::bad_data(event, e))?;
    let from = store::state(db, pending.from_account_id).await?;
    let to = store::state(db, pending.to_account_id).await?;
    let verdict = transfer::decide(
        pending.from_account_id,
        pending.to_account_id,
        pending.amount,
        from,
        to,
    );
    // The transfer's own key: the decision is its second event.
    let decided = Expect::Value(superclient::consistency_value(event) + 1);
    let id = pending.transaction_id;
    match verdict {
        Verdict::Reject(reason) => {
            let rejected = RejectedTransaction {
                transaction_id: id,
                reason: reason.to_owned(),
            };
            Ok(vec![Emit::new(
                RejectedTransaction::TYPE,
                rejected.key(),
                decided,
                &rejected,
            )?])
        }
        Verdict::Accept { from, to } => {
            let reference = match pending.reference.trim() {
                "" => String::new(),
                text => format!(": {text}"),
            };
            let debit = ConfirmedDebit {
                account_id: pending.from_account_id,
                amount: pending.amount,
                note: format!("Transfer to account {}{reference}", pending.to_account_id),
                transaction_id: Some(id),
            };
            let credit = ConfirmedCredit {
                account_id: pending.to_account_id,
                amount: pending.amount,
                note: format!(
                    "Transfer from account {}{reference}",
                    pending.from_account_id
                ),
                transaction_id: Some(id),
            };
            let accepted = AcceptedTransaction { transaction_id: id };
            Ok(vec![
                Emit::new(
                    AcceptedTransaction::TYPE,
                    accepted.key(),
                    decided,
                    &accepted,
                )?,
                Emit::new(
                    ConfirmedDebit::TYPE,
                    debit.key(),
                    Expect::after(Some(from.version)),
                    &debit,
                )?,
                Emit::new(
                    ConfirmedCredit::TYPE,
                    credit.key(),
                    Expect::after(Some(to.version)),
                    &credit,
                )?,
            ])
        }
    }
}
