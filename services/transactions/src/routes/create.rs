//! Asking for a transfer.

use axum::{
    Json,
    extract::{State, rejection::JsonRejection},
    http::StatusCode,
};
use events::{Amount, DomainEvent, PendingTransaction, account_key};
use serde::Deserialize;
use serde_json::{Value, json};
use superclient::{
    ActingUser, ApiError, Begin, CorrelationId, Ctx, Emit, Expect, Idempotency, IdempotencyKey,
    Service,
};

use crate::{Transactions, store, view::TransferView};

#[derive(Deserialize)]
pub struct TransferForm {
    from_account_id: i64,
    to_account_id: i64,
    amount: String,
    reference: Option<String>,
}

/// A transfer as asked for, checked.
#[derive(Clone)]
struct Asked {
    from_account_id: i64,
    to_account_id: i64,
    amount: Amount,
    reference: String,
}

pub async fn create(
    State(ctx): State<Ctx<Transactions>>,
    acting: ActingUser,
    correlation: CorrelationId,
    key: IdempotencyKey,
    body: Result<Json<TransferForm>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let Json(form) = body?;
    let asked = check(form)?;
    let from = asked.from_account_id;
    // The source must be the acting user's: anyone else's is answered like
    // an account that does not exist. Owners never change, so one known
    // here is current; an account created a moment ago may not be applied
    // here yet, and only then is the bus asked.
    let owner = match store::owner(ctx.db(), from).await? {
        Some(owner) => Some(owner),
        None => {
            ctx.refresh(&[account_key(from)]).await?;
            store::owner(ctx.db(), from).await?
        }
    };
    if owner.as_deref() != Some(acting.username.as_str()) {
        return Err(ApiError::not_found(format!("no account {from}")));
    }
    let fingerprint = json!({"route": "transfer", "from_account_id": from,
        "to_account_id": asked.to_account_id, "amount": asked.amount, "reference": asked.reference});
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
    let outcome = ask(&ctx, &mut request, &acting, correlation, asked).await;
    request.finish(outcome).await
}

fn check(form: TransferForm) -> Result<Asked, ApiError> {
    let amount: Amount = form
        .amount
        .parse()
        .map_err(|e: events::AmountError| ApiError::invalid(e.to_string()))?;
    if form.from_account_id <= 0 || form.to_account_id <= 0 {
        return Err(ApiError::invalid("account ids are positive whole numbers"));
    }
    if form.from_account_id == form.to_account_id {
        return Err(ApiError::invalid(
            "a transfer goes from one account to another",
        ));
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
    Ok(Asked {
        from_account_id: form.from_account_id,
        to_account_id: form.to_account_id,
        amount,
        reference,
    })
}

async fn ask(
    ctx: &Ctx<Transactions>,
    request: &mut Idempotency,
    acting: &ActingUser,
    correlation: CorrelationId,
    asked: Asked,
) -> Result<(StatusCode, Value), ApiError> {
    let stored = ctx
        .decide(request, &[], correlation, |db| {
            let (asked, username) = (asked.clone(), acting.username.clone());
            Box::pin(async move {
                let pending = PendingTransaction {
                    transaction_id: store::next_transaction_id(&db).await?,
                    from_account_id: asked.from_account_id,
                    to_account_id: asked.to_account_id,
                    amount: asked.amount,
                    reference: asked.reference,
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
                Ok::<_, ApiError>(vec![emit])
            })
        })
        .await?;
    let event = stored.first().ok_or_else(ApiError::internal)?;
    let pending = PendingTransaction::decode(event.data.get()).map_err(|_| ApiError::internal())?;
    Ok((
        StatusCode::ACCEPTED,
        json!(TransferView::asked(pending, event.timestamp)),
    ))
}
