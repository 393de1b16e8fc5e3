//! Deposits and withdrawals: a form each on the account page, posted
//! with an idempotency key, and checked in the browser, here, and by the
//! accounts service (which alone decides whether the money is there).

use leptos::prelude::*;

use crate::{
    error::AppError,
    forms::{AmountField, Field, FormKey, action_error, form_key},
    pages::FormError,
};

/// The longest note a person may add to a deposit or withdrawal.
#[cfg(feature = "ssr")]
const MAX_NOTE: usize = 140;

#[server(endpoint = "deposit")]
pub async fn deposit(
    account_id: i64,
    amount: String,
    note: String,
    form_key: String,
) -> Result<(), AppError> {
    movement(account_id, amount, note, form_key, "deposits").await
}

#[server(endpoint = "withdraw")]
pub async fn withdraw(
    account_id: i64,
    amount: String,
    note: String,
    form_key: String,
) -> Result<(), AppError> {
    movement(account_id, amount, note, form_key, "withdrawals").await
}

#[cfg(feature = "ssr")]
async fn movement(
    account_id: i64,
    amount: String,
    note: String,
    form_key: String,
    kind: &str,
) -> Result<(), AppError> {
    use crate::{
        money::{parse_amount, pounds},
        server::{session, state, wire::Account},
    };
    let user = session::signed_in().await?;
    let amount = parse_amount(&amount).map_err(|message| AppError::invalid("amount", message))?;
    let note = note.trim();
    if note.chars().count() > MAX_NOTE {
        return Err(AppError::invalid(
            "note",
            format!("at most {MAX_NOTE} characters"),
        ));
    }
    let services = state::services()?;
    let mut call = user.call();
    call.idempotency_key = Some(&form_key);
    let body = serde_json::json!({ "amount": amount.to_string(), "note": note });
    let path = format!("/accounts/{account_id}/{kind}");
    let answer = services
        .accounts::<serde_json::Value>(reqwest::Method::POST, &path, &call, Some(&body))
        .await;
    match answer {
        Ok(_) => Ok(()),
        Err(error) if error.code() == Some("insufficient_funds") => {
            let account: Account = services
                .accounts(
                    reqwest::Method::GET,
                    &format!("/accounts/{account_id}"),
                    &user.call(),
                    None::<&()>,
                )
                .await?;
            Err(AppError::invalid(
                "amount",
                format!("insufficient funds: available {}", pounds(account.balance)),
            ))
        }
        Err(error) => Err(error.into()),
    }
}

#[component]
pub fn DepositForm(account_id: i64, action: ServerAction<Deposit>) -> impl IntoView {
    let key = form_key(action);
    let error = action_error(action);
    view! {
        <section class="card" aria-labelledby="deposit-title">
            <h2 id="deposit-title">"Pay in"</h2>
            <ActionForm action attr:data-testid="deposit-form">
                <input type="hidden" name="account_id" value=account_id />
                <FormKey key />
                <AmountField
                    form="deposit"
                    label="Amount to pay in (£)"
                    server_error=Signal::derive(move || error.get().and_then(|e| e.for_field("amount")))
                />
                <Field
                    name="note"
                    form="deposit"
                    label="Note (optional)"
                    required=false
                    error=Signal::derive(move || error.get().and_then(|e| e.for_field("note")))
                />
                <FormError error=Signal::derive(move || error.get().and_then(|e| e.for_form())) />
                <button type="submit" disabled=move || action.pending().get()>
                    "Pay in"
                </button>
            </ActionForm>
        </section>
    }
}

#[component]
pub fn WithdrawForm(account_id: i64, action: ServerAction<Withdraw>) -> impl IntoView {
    let key = form_key(action);
    let error = action_error(action);
    view! {
        <section class="card" aria-labelledby="withdraw-title">
            <h2 id="withdraw-title">"Take out"</h2>
            <ActionForm action attr:data-testid="withdraw-form">
                <input type="hidden" name="account_id" value=account_id />
                <FormKey key />
                <AmountField
                    form="withdraw"
                    label="Amount to take out (£)"
                    server_error=Signal::derive(move || error.get().and_then(|e| e.for_field("amount")))
                />
                <Field
                    name="note"
                    form="withdraw"
                    label="Note (optional)"
                    required=false
                    error=Signal::derive(move || error.get().and_then(|e| e.for_field("note")))
                />
                <FormError error=Signal::derive(move || error.get().and_then(|e| e.for_form())) />
                <button type="submit" disabled=move || action.pending().get()>
                    "Take out"
                </button>
            </ActionForm>
        </section>
    }
}
