//! Paying someone: a form, a review of exactly what will happen, then the
//! transfer's status as the bank decides it (pending, then accepted, or
//! rejected with the reason), live.
//!
//! The form is a GET to this same page: filled in, it shows the review
//! (amount, both accounts, reference) with a Confirm button, or the form
//! again with what to fix. Confirm posts once per idempotency key, so a
//! double click or a resent form pays once.

use leptos::prelude::*;
use leptos_router::{components::A, hooks::use_params_map};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::{
    error::AppError,
    forms::{AmountField, Field, FormKey, action_error, new_form_key, settled},
    live::LiveTick,
    money::pounds,
    overview::{AccountSummary, accounts_overview},
    pages::{FormError, PageError, encode_query_value, query_param},
};

/// What the person asked to pay, checked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferDraft {
    pub from_account_id: i64,
    pub to_account_id: i64,
    pub amount: Decimal,
    pub reference: String,
}

/// Checks a transfer as typed; the error names the field to fix.
pub fn check_draft(
    from: &str,
    to: &str,
    amount: &str,
    reference: &str,
) -> Result<TransferDraft, AppError> {
    let from_account_id = from
        .trim()
        .parse::<i64>()
        .map_err(|_| AppError::invalid("from", "choose the account to pay from"))?;
    let to_account_id = to
        .trim()
        .parse::<i64>()
        .ok()
        .filter(|id| *id >= 0)
        .ok_or_else(|| AppError::invalid("to", "enter the account number to pay, such as 12345"))?;
    if to_account_id == from_account_id {
        return Err(AppError::invalid(
            "to",
            "choose another account than the one you pay from",
        ));
    }
    let amount = crate::money::parse_amount(amount)
        .map_err(|message| AppError::invalid("amount", message))?;
    let reference = reference.trim().to_owned();
    if reference.chars().count() > 140 || reference.chars().any(char::is_control) {
        return Err(AppError::invalid(
            "reference",
            "a reference is at most 140 characters",
        ));
    }
    Ok(TransferDraft {
        from_account_id,
        to_account_id,
        amount,
        reference,
    })
}

/// Asks the bank to make the transfer, and goes to its status page.
#[server(endpoint = "send_transfer")]
pub async fn send_transfer(
    from: String,
    to: String,
    amount: String,
    reference: String,
    form_key: String,
) -> Result<(), AppError> {
    use crate::server::{session, state, wire::Transfer};
    let user = session::signed_in().await?;
    let draft = check_draft(&from, &to, &amount, &reference)?;
    let mut call = user.call();
    call.idempotency_key = Some(&form_key);
    let body = serde_json::json!({
        "from_account_id": draft.from_account_id,
        "to_account_id": draft.to_account_id,
        "amount": draft.amount.to_string(),
        "reference": draft.reference,
    });
    let transfer: Transfer = state::services()?
        .transactions(reqwest::Method::POST, "/transfers", &call, Some(&body))
        .await
        .map_err(|error| match AppError::from(error) {
            // The source account is not the person's (or does not exist).
            AppError::NotFound => AppError::invalid("from", "choose one of your accounts"),
            other => other,
        })?;
    leptos_axum::redirect(&format!("/transfers/{}", transfer.transaction_id));
    Ok(())
}

/// A transfer as its status page shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferView {
    pub transaction_id: i64,
    pub from_account_id: i64,
    pub to_account_id: i64,
    pub amount: Decimal,
    pub reference: String,
    pub status: String,
    /// Why it was rejected, as people read it.
    pub reason: Option<String>,
    pub requested_at: String,
}

#[server(endpoint = "transfer_status")]
pub async fn transfer_status(transaction_id: i64) -> Result<TransferView, AppError> {
    use crate::server::{
        session, state,
        wire::{Account, Transfer},
    };
    let user = session::signed_in().await?;
    let services = state::services()?;
    let transfer: Transfer = services
        .transactions(
            reqwest::Method::GET,
            &format!("/transfers/{transaction_id}"),
            &user.call(),
            None::<&()>,
        )
        .await?;
    let reason = match transfer.reason.as_deref() {
        None => None,
        Some("unknown account") => Some(format!("no account {}", transfer.to_account_id)),
        Some("insufficient funds") => {
            // The sender sees what is there now; the receiver cannot.
            let balance = services
                .accounts::<Account>(
                    reqwest::Method::GET,
                    &format!("/accounts/{}", transfer.from_account_id),
                    &user.call(),
                    None::<&()>,
                )
                .await
                .ok()
                .map(|account| format!(": available {}", pounds(account.balance)));
            Some(format!("insufficient funds{}", balance.unwrap_or_default()))
        }
        Some(other) => Some(other.to_owned()),
    };
    Ok(TransferView {
        transaction_id: transfer.transaction_id,
        from_account_id: transfer.from_account_id,
        to_account_id: transfer.to_account_id,
        amount: transfer.amount,
        reference: transfer.reference,
        status: transfer.status,
        reason,
        requested_at: transfer
            .requested_at
            .format("%-d %b %Y, %H:%M UTC")
            .to_string(),
    })
}

#[component]
pub fn TransferPage() -> impl IntoView {
    let from = query_param("from");
    let to = query_param("to");
    let amount = query_param("amount");
    let reference = query_param("reference");
    let review = query_param("review");
    // The payment's idempotency key travels in the URL from the form to
    // the review, so a retry of the review page (with or without
    // JavaScript) sends the same key.
    let key = query_param("key");
    let new_key = Resource::new(|| (), |_| new_form_key());
    let accounts = Resource::new(|| (), |_| accounts_overview());
    let draft = Memo::new(move |_| {
        (review.get() == "1")
            .then(|| check_draft(&from.get(), &to.get(), &amount.get(), &reference.get()))
    });

    view! {
        <Suspense fallback=|| view! { <p>"Loading your accounts…"</p> }>
            {move || {
                // Read here, outside the async block, so a new URL re-renders.
                let draft = draft.get();
                Suspend::new(async move {
                let accounts = match accounts.await {
                    Ok(overview) => overview.accounts,
                    Err(error) => return view! { <PageError error /> }.into_any(),
                };
                let key = match key.get_untracked() {
                    key if key.is_empty() => new_key.await.unwrap_or_default(),
                    key => key,
                };
                match draft {
                    Some(Ok(draft)) => view! { <Review draft key /> }.into_any(),
                    checked => {
                        let error = checked.and_then(Result::err);
                        view! {
                            <TransferForm accounts from to amount reference error key />
                        }
                        .into_any()
                    }
                }
                })
            }}
        </Suspense>
    }
}

#[component]
fn TransferForm(
    accounts: Vec<AccountSummary>,
    from: Memo<String>,
    to: Memo<String>,
    amount: Memo<String>,
    reference: Memo<String>,
    error: Option<AppError>,
    key: String,
) -> impl IntoView {
    let field = move |name: &'static str| {
        let message = error.as_ref().and_then(|e| e.for_field(name));
        Signal::derive(move || message.clone())
    };
    let from_error = field("from");
    let chosen = from.get_untracked();
    view! {
        <section class="card narrow" aria-labelledby="transfer-title">
            <h1 id="transfer-title">"Pay someone"</h1>
            // A plain form: the review is a page of its own, with or without
            // JavaScript.
            <form method="get" action="/transfer">
                <input type="hidden" name="review" value="1" />
                <input type="hidden" name="key" value=key />
                <div class="field">
                    <label for="field-from">"Pay from"</label>
                    <select
                        id="field-from"
                        name="from"
                        aria-invalid=move || from_error.get().map(|_| "true")
                        aria-describedby="field-from-error"
                    >
                        {accounts
                            .into_iter()
                            .map(|account| {
                                let id = account.account_id.to_string();
                                let selected = id == chosen;
                                view! {
                                    <option value=id selected=selected>
                                        "Account " {account.account_id} " (" {pounds(account.balance)} ")"
                                    </option>
                                }
                            })
                            .collect_view()}
                    </select>
                    <p class="field-error" id="field-from-error" aria-live="polite">{move || from_error.get()}</p>
                </div>
                <Field
                    name="to"
                    label="Account number to pay"
                    autocomplete="off"
                    value=to
                    error=field("to")
                />
                <AmountField value=amount server_error=field("amount") />
                <Field
                    name="reference"
                    label="Reference (optional)"
                    required=false
                    hint="Shown to the person you pay"
                    value=reference
                    error=field("reference")
                />
                <button type="submit">"Review"</button>
            </form>
        </section>
    }
}

#[component]
fn Review(draft: TransferDraft, key: String) -> impl IntoView {
    let send = ServerAction::<SendTransfer>::new();
    // The URL's key until an answer is final; a fresh one after that.
    let settled = settled(send);
    let key = Resource::new(
        move || settled.get(),
        move |settled| {
            let key = key.clone();
            async move {
                if settled == 0 {
                    Ok(key)
                } else {
                    new_form_key().await
                }
            }
        },
    );
    let error = action_error(send);
    let change = format!(
        "/transfer?from={}&to={}&amount={}&reference={}",
        draft.from_account_id,
        draft.to_account_id,
        draft.amount,
        encode_query_value(&draft.reference)
    );
    let reference = if draft.reference.is_empty() {
        "(none)".to_owned()
    } else {
        draft.reference.clone()
    };
    view! {
        <section class="card narrow" aria-labelledby="review-title">
            <h1 id="review-title">"Check your payment"</h1>
            <dl class="review" data-testid="review">
                <dt>"Amount"</dt>
                <dd data-testid="review-amount">{pounds(draft.amount)}</dd>
                <dt>"From"</dt>
                <dd>"Account " {draft.from_account_id}</dd>
                <dt>"To"</dt>
                <dd>"Account " {draft.to_account_id}</dd>
                <dt>"Reference"</dt>
                <dd>{reference}</dd>
            </dl>
            <ActionForm action=send>
                <FormKey key />
                <input type="hidden" name="from" value=draft.from_account_id />
                <input type="hidden" name="to" value=draft.to_account_id />
                <input type="hidden" name="amount" value=draft.amount.to_string() />
                <input type="hidden" name="reference" value=draft.reference.clone() />
                <FormError error=Signal::derive(move || error.get().map(|e| e.to_string())) />
                <div class="actions">
                    <button
                        type="submit"
                        data-testid="confirm-transfer"
                        disabled=move || send.pending().get()
                    >
                        "Confirm and pay"
                    </button>
                    <A href=change>"Change"</A>
                </div>
            </ActionForm>
        </section>
    }
}

#[component]
pub fn TransferStatusPage() -> impl IntoView {
    let params = use_params_map();
    let id = Memo::new(move |_| {
        params
            .read()
            .get("id")
            .and_then(|id| id.parse::<i64>().ok())
    });
    let transfer = Resource::new(
        move || (LiveTick::get(), id.get()),
        |(_, id)| async move {
            match id {
                Some(id) => transfer_status(id).await,
                None => Err(AppError::NotFound),
            }
        },
    );
    view! {
        <Transition fallback=|| view! { <p>"Loading the transfer…"</p> }>
            {move || Suspend::new(async move {
                match transfer.await {
                    Ok(transfer) => view! { <TransferDetails transfer /> }.into_any(),
                    Err(error) => view! { <PageError error /> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn TransferDetails(transfer: TransferView) -> impl IntoView {
    let (status, class) = match transfer.status.as_str() {
        "accepted" => ("Paid".to_owned(), "status accepted"),
        "rejected" => (
            format!(
                "Not paid: {}",
                transfer
                    .reason
                    .clone()
                    .unwrap_or_else(|| "rejected".to_owned())
            ),
            "status rejected",
        ),
        _ => ("Pending: the bank is deciding".to_owned(), "status pending"),
    };
    view! {
        <section class="card narrow" aria-labelledby="status-title">
            <h1 id="status-title">"Transfer " {transfer.transaction_id}</h1>
            <p class=class aria-live="polite" data-testid="transfer-status" data-status=transfer.status>
                {status}
            </p>
            <dl class="review">
                <dt>"Amount"</dt>
                <dd>{pounds(transfer.amount)}</dd>
                <dt>"From"</dt>
                <dd>"Account " {transfer.from_account_id}</dd>
                <dt>"To"</dt>
                <dd>"Account " {transfer.to_account_id}</dd>
                <dt>"Reference"</dt>
                <dd>{transfer.reference}</dd>
                <dt>"Asked for"</dt>
                <dd>{transfer.requested_at}</dd>
            </dl>
            <p><A href="/transfer">"Make another payment"</A></p>
        </section>
    }
}
