//! Asking for a transfer.

use axum::{
    Json,
    extract::{State, rejection::JsonRejection},
    http::StatusCode,
};
use events::{Amount, DomainEvent, PendingTransaction, account_key};
use serde::Deserialize;
use superclient::{ActingUser, ApiError, CorrelationId, Ctx, Emit, Expect};

use crate::{Transactions, store};

#[derive(Deserialize)]
pub struct TransferForm {
    from_account_id: i64,
    to_account_id: i64,
    amount: String,
    reference: Option<String>,
}

pub async fn create(
    State(ctx): State<Ctx<Transactions>>,
    acting: ActingUser,
    correlation: CorrelationId,
    body: Result<Json<TransferForm>, JsonRejection>,
) -> Result<(StatusCode, Json<store::TransferRow>), ApiError> {
    let Json(form) = body?;
    let amount: Amount = form
        .amount
        .parse()
        .map_err(|e: events::AmountError| ApiError::invalid(e.to_string()))?;
    if form.from_account_id == form.to_account_id {
        return Err(ApiError::invalid(
            "a transfer goes from one account to another",
        ));
    }
    if form.from_account_id <= 0 || form.to_account_id <= 0 {
        return Err(ApiError::invalid("account ids are positive whole numbers"));
    }
    let reference = form
        .reference
        .as_deref()
        .unwrap_or_default()
        .trim()
        .to_owned();
    if reference.chars().count() > 140 || reference.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            "a reference is at most 140 characters, with no control characters",
        ));
    }
    let owner = match store::owner(ctx.db(), form.from_account_id).await? {
        Some(owner) => Some(owner),
        None => {
            // Perhaps created a moment ago and not applied here yet.
            ctx.refresh(&[account_key(form.from_account_id)]).await?;
            store::owner(ctx.db(), form.from_account_id).await?
        }
    };
    let owner =
        owner.ok_or_else(|| ApiError::not_found(format!("no account {}", form.from_account_id)))?;
    if owner != acting.username {
        return Err(ApiError::forbidden(
            "a transfer can only leave one of your own accounts",
        ));
    }

    let (from_account_id, to_account_id) = (form.from_account_id, form.to_account_id);
    let transaction_id = ctx
        .decide(&[], correlation, |db| {
            let (reference, username) = (reference.clone(), acting.username.clone());
            Box::pin(async move {
                let pending = PendingTransaction {
                    transaction_id: store::next_transaction_id(&db).await?,
                    from_account_id,
                    to_account_id,
                    amount,
                    reference,
                    username,
                };
                // The first event of a new key: if the id is taken, the bus
                // says so, and the next attempt takes another.
                let emit = Emit::new(
                    PendingTransaction::TYPE,
                    pending.key(),
                    Expect::Value(0),
                    &pending,
                )?;
                Ok::<_, ApiError>((vec![emit], pending.transaction_id))
            })
        })
        .await?;
    let transfer = store::transfer(ctx.db(), transaction_id)
        .await?
        .ok_or_else(ApiError::internal)?;
    Ok((StatusCode::ACCEPTED, Json(transfer)))
}
