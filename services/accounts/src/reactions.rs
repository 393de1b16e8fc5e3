//! The commands the accounts service answers.

use std::collections::HashMap;

use events::account_key;
use events::{
    AcceptedTransaction, AccountCreated, AccountCreationRequest, ConfirmedCredit, ConfirmedDebit,
    DomainEvent, PendingTransaction, RejectedTransaction,
};
use sqlx::PgConnection;
use superclient::{Emit, EventRecord, Expect, HandlerError, Reaction, Read};

use crate::{
    store,
    transfer::{self, Verdict},
};

/// An `AccountCreated` for the request, unless it has its account already.
async fn open_account(
    db: &mut PgConnection,
    event: &EventRecord,
) -> Result<Reaction, HandlerError> {
    let request = AccountCreationRequest::decode(event.data.get())
        .map_err(|e| HandlerError::bad_data(event, e))?;
    HandlerError::check_key(event, &request.key())?;
    if store::account_of_request(db, request.request_id)
        .await?
        .is_some()
    {
        return Ok(Reaction::default());
    }
    let created = AccountCreated {
        account_id: store::next_account_id(db).await?,
        request_id: request.request_id,
        username: request.username,
    };
    // A new key: value 0 is taken by exactly one decision, whichever
    // instance makes it; a loser decides again with the next id.
    Ok(Reaction {
        emits: vec![Emit::new(
            AccountCreated::TYPE,
            created.key(),
            Expect::Value(0),
            &created,
        )?],
        reads: Vec::new(),
    })
}

/// Decides each of `commands`: the accounts every transfer among them
/// reads are read with one query, and each transfer is decided on the
/// balances the accepted transfers before it leave. The framework
/// publishes such a chain of decisions as one message, so one busy account
/// answers many transfers a round, and no decision outlives one it rests
/// on.
pub async fn react_all(
    db: &mut PgConnection,
    commands: &[&EventRecord],
) -> Vec<Result<Reaction, HandlerError>> {
    let transfers: Vec<Option<Result<PendingTransaction, HandlerError>>> = commands
        .iter()
        .map(|command| (command.event_type == PendingTransaction::TYPE).then(|| pending(command)))
        .collect();
    let mut read: Vec<i64> = transfers
        .iter()
        .flatten()
        .flatten()
        .flat_map(|p| [p.from_account_id, p.to_account_id])
        .collect();
    read.sort_unstable();
    read.dedup();
    let mut states = if read.is_empty() {
        Ok(HashMap::new())
    } else {
        store::states(db, &read).await
    };
    let mut reactions = Vec::with_capacity(commands.len());
    for (command, transfer) in commands.iter().zip(transfers) {
        reactions.push(match (transfer, &mut states) {
            (Some(Ok(pending)), Ok(states)) => {
                let observed = |id| states.get(&id).copied().unwrap_or_default();
                let (from, to) = (
                    observed(pending.from_account_id),
                    observed(pending.to_account_id),
                );
                let verdict = transfer::decide(
                    pending.from_account_id,
                    pending.to_account_id,
                    pending.amount,
                    from.account,
                    to.account,
                );
                if let Verdict::Accept { from, to } = verdict {
                    let amount = pending.amount.value();
                    let (debited, credited) = (from.moved(-amount), to.moved(amount));
                    states.insert(pending.from_account_id, debited.into());
                    states.insert(pending.to_account_id, credited.into());
                }
                let reads = [from.version, to.version];
                decide_transfer(command, pending, reads, verdict)
            }
            (Some(Ok(_)), Err(error)) => Err(HandlerError::Other(format!(
                "database: could not read the accounts: {error}"
            ))),
            (Some(Err(error)), _) => Err(error),
            (None, _) if command.event_type == AccountCreationRequest::TYPE => {
                open_account(db, command).await
            }
            (None, _) => Ok(Reaction::default()),
        });
    }
    reactions
}

fn pending(event: &EventRecord) -> Result<PendingTransaction, HandlerError> {
    let pending = PendingTransaction::decode(event.data.get())
        .map_err(|e| HandlerError::bad_data(event, e))?;
    HandlerError::check_key(event, &pending.key())?;
    Ok(pending)
}

/// Accepted (with the debit and the credit) or rejected, in one message.
/// The accounts it read (at these versions) go with the decision: an
/// acceptance pins them (explicit values), and a rejection is published
/// only once the bus confirms they were current.
fn decide_transfer(
    event: &EventRecord,
    pending: PendingTransaction,
    [from_version, to_version]: [Option<i64>; 2],
    verdict: Verdict,
) -> Result<Reaction, HandlerError> {
    let reads = vec![
        Read {
            key: account_key(pending.from_account_id),
            version: from_version,
        },
        Read {
            key: account_key(pending.to_account_id),
            version: to_version,
        },
    ];
    // The transfer's own key: the decision is its second event.
    let decided = Expect::Value(superclient::consistency_value(event) + 1);
    let id = pending.transaction_id;
    match verdict {
        Verdict::Reject(reason) => {
            let rejected = RejectedTransaction {
                transaction_id: id,
                reason: reason.to_owned(),
            };
            Ok(Reaction {
                emits: vec![Emit::new(
                    RejectedTransaction::TYPE,
                    rejected.key(),
                    decided,
                    &rejected,
                )?],
                reads,
            })
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
            Ok(Reaction {
                emits: vec![
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
                ],
                reads,
            })
        }
    }
}
