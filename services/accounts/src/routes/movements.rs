//! Deposits and withdrawals: decided on the account's current balance and
//! version, published with the version's next value, answered with the
//! statement entry they booked.

use axum::{
    Json,
    extract::{Path, State, rejection::JsonRejection},
    http::StatusCode,
};
use events::{Amount, ConfirmedCredit, ConfirmedDebit, DomainEvent, account_key};
use serde::Deserialize;
use serde_json::{Value, json};
use superclient::{
    ActingUser, ApiError, Begin, CorrelationId, Ctx, Emit, Expect, Idempotency, IdempotencyKey,
    Service, consistency_value,
};

use super::{account_id, no_account};
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

impl Direction {
    fn route(self) -> &'static str {
        match self {
            Self::In => "deposit",
            Self::Out => "withdrawal",
        }
    }
}

pub async fn deposit(
    ctx: State<Ctx<Accounts>>,
    acting: ActingUser,
    correlation: CorrelationId,
    key: IdempotencyKey,
    id: Path<String>,
    body: Result<Json<MovementForm>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    movement(ctx, acting, correlation, key, id, body, Direction::In).await
}

pub async fn withdraw(
    ctx: State<Ctx<Accounts>>,
    acting: ActingUser,
    correlation: CorrelationId,
    key: IdempotencyKey,
    id: Path<String>,
    body: Result<Json<MovementForm>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    movement(ctx, acting, correlation, key, id, body, Direction::Out).await
}

/// A movement, checked before anything is decided.
#[derive(Clone)]
struct Movement {
    account_id: i64,
    amount: Amount,
    note: String,
    direction: Direction,
}

async fn movement(
    State(ctx): State<Ctx<Accounts>>,
    acting: ActingUser,
    correlation: CorrelationId,
    key: IdempotencyKey,
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
    let wanted = Movement {
        account_id,
        amount,
        note,
        direction,
    };
    let fingerprint = json!({"route": direction.route(), "account_id": account_id,
                             "amount": amount, "note": wanted.note});
    let mut request = match Idempotency::begin(
        ctx.db(),
        ctx.service().name(),
        &acting.scope(),
        &key,
        &fingerprint,
    )
    .await?
    {
        Begin::Repeat(status, body) => return Ok((status, body)),
        Begin::Proceed(request) => request,
    };
    let outcome = book(&ctx, &mut request, &acting, correlation, wanted).await;
    request.finish(outcome).await
}

async fn book(
    ctx: &Ctx<Accounts>,
    request: &mut Idempotency,
    acting: &ActingUser,
    correlation: CorrelationId,
    wanted: Movement,
) -> Result<(StatusCode, Value), ApiError> {
    let account_id = wanted.account_id;
    let key = account_key(account_id);
    let stored = ctx
        .decide(request, std::slice::from_ref(&key), correlation, |db| {
            let (key, wanted, acting) = (key.clone(), wanted.clone(), acting.clone());
            Box::pin(async move {
                let account = store::account(&db, account_id)
                    .await?
                    .filter(|account| acting.may_access(&account.username))
                    .ok_or_else(|| no_account(account_id))?;
                if !acting.may_act_for(&account.username) {
                    return Err(ActingUser::staff_may_not_act());
                }
                let expect = Expect::after(Some(account.version));
                let emit = match wanted.direction {
                    Direction::In => {
                        let credit = ConfirmedCredit {
                            account_id,
                            amount: wanted.amount,
                            note: wanted.note,
                            transaction_id: None,
                        };
                        Emit::new(ConfirmedCredit::TYPE, key, expect, &credit)?
                    }
                    Direction::Out if account.balance < wanted.amount.value() => {
                        return Err(ApiError::refused(
                            "insufficient_funds",
                            format!(
                                "insufficient funds: the balance is {}",
                                events::format_money(account.balance)
                            ),
                        ));
                    }
                    Direction::Out => {
                        let debit = ConfirmedDebit {
                            account_id,
                            amount: wanted.amount,
                            note: wanted.note,
                            transaction_id: None,
                        };
                        Emit::new(ConfirmedDebit::TYPE, key, expect, &debit)?
                    }
                };
                Ok(vec![emit])
            })
        })
        .await?;
    // The entry the stored event booked (now, or by an earlier try).
    let booked = stored
        .iter()
        .find(|event| {
            event.event_type == ConfirmedCredit::TYPE || event.event_type == ConfirmedDebit::TYPE
        })
        .ok_or_else(ApiError::internal)?;
    // Stored and applied: from here on, a failure must not read as if
    // nothing happened.
    let entry = store::entry(ctx.db(), account_id, consistency_value(booked))
        .await
        .map_err(|error| {
            tracing::error!(%error, "could not read a booked entry back");
            ApiError::outcome_pending()
        })?
        .ok_or_else(ApiError::internal)?;
    let body = json!({
        "account_id": account_id,
        "balance": events::format_money(entry.balance_after),
        "entry": entry,
    });
    Ok((StatusCode::CREATED, body))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_default_by_direction_and_are_bounded() {
        assert_eq!(check_note(None, Direction::In).unwrap(), "Deposit");
        assert_eq!(
            check_note(Some("  ".into()), Direction::Out).unwrap(),
            "Withdrawal"
        );
        assert_eq!(
            check_note(Some(" rent ".into()), Direction::Out).unwrap(),
            "rent"
        );
        assert!(check_note(Some("x".repeat(141)), Direction::In).is_err());
        assert!(check_note(Some("a\u{7}".into()), Direction::In).is_err());
    }
}
