//! Deposits and withdrawals: decided on the account's balance and version,
//! published with the version's next value.

use axum::{
    Json,
    extract::{Path, State, rejection::JsonRejection},
    http::StatusCode,
};
use events::{Amount, ConfirmedCredit, ConfirmedDebit, DomainEvent, account_key};
use serde::Deserialize;
use serde_json::{Value, json};
use superclient::{ActingUser, ApiError, CorrelationId, Ctx, Emit, Expect};

use super::{account_id, owned_account};
use crate::{Accounts, store};

#[derive(Deserialize)]
pub struct MovementForm {
    amount: String,
    note: Option<String>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Direction {
    In,
    Out,
}

pub async fn deposit(
    ctx: State<Ctx<Accounts>>,
    acting: ActingUser,
    correlation: CorrelationId,
    id: Path<String>,
    body: Result<Json<MovementForm>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    movement(ctx, acting, correlation, id, body, Direction::In).await
}

pub async fn withdraw(
    ctx: State<Ctx<Accounts>>,
    acting: ActingUser,
    correlation: CorrelationId,
    id: Path<String>,
    body: Result<Json<MovementForm>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    movement(ctx, acting, correlation, id, body, Direction::Out).await
}

async fn movement(
    State(ctx): State<Ctx<Accounts>>,
    acting: ActingUser,
    correlation: CorrelationId,
    Path(id): Path<String>,
    body: Result<Json<MovementForm>, JsonRejection>,
    direction: Direction,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let account_id = account_id(&id)?;
    let Json(form) = body?;
    let amount: Amount = form
        .amount
        .parse()
        .map_err(|e: events::AmountError| ApiError::invalid(e.to_string()))?;
    let note = check_note(form.note, direction)?;
    owned_account(&ctx, &acting, account_id).await?;

    let key = account_key(account_id);
    let (balance, version) = ctx
        .decide(std::slice::from_ref(&key), correlation, |db| {
            let (key, note) = (key.clone(), note.clone());
            Box::pin(async move {
                let account = store::account(&db, account_id)
                    .await?
                    .ok_or_else(|| ApiError::not_found(format!("no account {account_id}")))?;
                let expect = Expect::after(Some(account.version));
                let (emit, balance) = match direction {
                    Direction::In => {
                        let credit = ConfirmedCredit {
                            account_id,
                            amount,
                            note,
                            transaction_id: None,
                        };
                        (
                            Emit::new(ConfirmedCredit::TYPE, key, expect, &credit)?,
                            account.balance + amount.value(),
                        )
                    }
                    Direction::Out if account.balance < amount.value() => {
                        return Err(ApiError::refused(
                            "insufficient_funds",
                            format!("the balance is {}", events::format_money(account.balance)),
                        ));
                    }
                    Direction::Out => {
                        let debit = ConfirmedDebit {
                            account_id,
                            amount,
                            note,
                            transaction_id: None,
                        };
                        (
                            Emit::new(ConfirmedDebit::TYPE, key, expect, &debit)?,
                            account.balance - amount.value(),
                        )
                    }
                };
                Ok((vec![emit], (balance, account.version + 1)))
            })
        })
        .await?;
    let body = json!({
        "account_id": account_id,
        "amount": amount,
        "balance": events::format_money(balance),
        "version": version,
    });
    Ok((StatusCode::CREATED, Json(body)))
}

/// Up to 140 characters without control characters; "Deposit" or
/// "Withdrawal" when none is given.
fn check_note(note: Option<String>, direction: Direction) -> Result<String, ApiError> {
    let note = note.as_deref().map(str::trim).unwrap_or_default();
    if note.chars().count() > 140 || note.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            "a note is at most 140 characters, with no control characters",
        ));
    }
    Ok(match (note, direction) {
        ("", Direction::In) => "Deposit".to_owned(),
        ("", Direction::Out) => "Withdrawal".to_owned(),
        (note, _) => note.to_owned(),
    })
}
