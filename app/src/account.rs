//! One account: its balance, deposits and withdrawals, and its statement
//! (newest first, in pages, by date range, as CSV, and the balance as of
//! any date). Someone else's account is the same 404 as a missing one.

use leptos::prelude::*;
use leptos_router::{components::Form, hooks::use_params_map};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::{
    error::AppError,
    live::LiveTick,
    money::pounds,
    movements::{Deposit, DepositForm, Withdraw, WithdrawForm},
    overview::AccountSummary,
    pages::{PageError, query_param},
    statement::{StatementTable, statement},
};

/// One account of the person's.
#[server(endpoint = "account")]
pub async fn account(account_id: i64) -> Result<AccountSummary, AppError> {
    use crate::server::{session, state, wire::Account};
    let user = session::signed_in().await?;
    let path = format!("/accounts/{account_id}");
    let account: Account = state::services()?
        .accounts(reqwest::Method::GET, &path, &user.call(), None::<&()>)
        .await?;
    Ok(AccountSummary {
        account_id: account.account_id,
        balance: account.balance,
        opened_on: account.created_at.format("%-d %b %Y").to_string(),
    })
}

/// The balance at the end of `date` (UTC), from the statement's running
/// balance: the newest entry on or before it, or zero before the first.
#[server(endpoint = "balance_as_of")]
pub async fn balance_as_of(account_id: i64, date: String) -> Result<AsOf, AppError> {
    use crate::server::{
        session, state,
        wire::{StatementPage, checked_date, statement_path},
    };
    let user = session::signed_in().await?;
    let date = checked_date(Some(date), "date")
        .map_err(|message| AppError::invalid("as_of", message))?
        .ok_or_else(|| AppError::invalid("as_of", "enter a date such as 2026-11-28"))?;
    let path = statement_path(account_id, None, Some(&date), None, 1);
    let page: StatementPage = state::services()?
        .accounts(reqwest::Method::GET, &path, &user.call(), None::<&()>)
        .await?;
    Ok(AsOf {
        balance: page.entries.first().map_or(Decimal::ZERO, |e| e.balance),
        date,
    })
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AsOf {
    pub date: String,
    pub balance: Decimal,
}

/// The account number in the URL; anything else is a missing page.
fn account_id_param() -> Memo<Option<i64>> {
    let params = use_params_map();
    Memo::new(move |_| {
        params
            .read()
            .get("id")
            .and_then(|id| id.parse::<i64>().ok())
            .filter(|id| *id >= 0)
    })
}

#[component]
pub fn AccountPage() -> impl IntoView {
    let account_id = account_id_param();
    move || match account_id.get() {
        Some(account_id) => view! { <AccountSection account_id /> }.into_any(),
        None => view! { <PageError error=AppError::NotFound /> }.into_any(),
    }
}

#[component]
fn AccountSection(account_id: i64) -> impl IntoView {
    // Asked once: whether the page shows at all (someone else's account is
    // a 404). The balance below is asked again on every change.
    let found = Resource::new(|| (), move |_| account(account_id));
    view! {
        <Suspense fallback=|| view! { <p>"Loading the account…"</p> }>
            {move || Suspend::new(async move {
                match found.await {
                    Ok(summary) => view! { <AccountBody summary /> }.into_any(),
                    Err(error) => view! { <PageError error /> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn AccountBody(summary: AccountSummary) -> impl IntoView {
    let account_id = summary.account_id;
    let deposit = ServerAction::<Deposit>::new();
    let withdraw = ServerAction::<Withdraw>::new();
    let changes = move || {
        (
            LiveTick::get(),
            deposit.version().get(),
            withdraw.version().get(),
        )
    };
    let balance = Resource::new(changes, move |_| account(account_id));
    view! {
        <section class="card" aria-labelledby="account-title">
            <h1 id="account-title">"Account " {account_id}</h1>
            <p class="muted">"Opened " {summary.opened_on}</p>
            <p class="big-balance">
                "Balance "
                <strong aria-live="polite" data-testid="balance">
                    <Transition fallback=move || pounds(summary.balance)>
                        {move || Suspend::new(async move {
                            balance
                                .await
                                .map(|now| pounds(now.balance))
                                .unwrap_or_else(|_| pounds(summary.balance))
                        })}
                    </Transition>
                </strong>
            </p>
        </section>
        <div class="two-up">
            <DepositForm account_id action=deposit />
            <WithdrawForm account_id action=withdraw />
        </div>
        <StatementSection account_id changes=Signal::derive(changes) />
        <BalanceOnDate account_id changes=Signal::derive(changes) />
    }
}

#[component]
fn StatementSection(account_id: i64, changes: Signal<(u64, usize, usize)>) -> impl IntoView {
    let from = query_param("from");
    let to = query_param("to");
    let before = query_param("before");
    let page = Resource::new(
        move || (changes.get(), from.get(), to.get(), before.get()),
        move |(_, from, to, before)| statement(account_id, from, to, before),
    );
    let csv = move || {
        format!(
            "/accounts/{account_id}/statement.csv?from={}&to={}",
            from.get(),
            to.get()
        )
    };
    view! {
        <section class="card" aria-labelledby="statement-title">
            <h2 id="statement-title">"Statement"</h2>
            <Form method="GET" action="">
                <div class="inline-fields">
                    <div class="field">
                        <label for="from">"From"</label>
                        <input id="from" name="from" type="date" value=move || from.get() />
                    </div>
                    <div class="field">
                        <label for="to">"To"</label>
                        <input id="to" name="to" type="date" value=move || to.get() />
                    </div>
                    <button type="submit" class="secondary">"Show"</button>
                </div>
            </Form>
            <p>
                <a href=csv download="" rel="external" data-testid="download-csv">
                    "Download as CSV"
                </a>
            </p>
            <Transition fallback=|| view! { <p>"Loading the statement…"</p> }>
                {move || Suspend::new(async move {
                    match page.await {
                        Ok(page) => view! {
                            <StatementTable page from=from.get_untracked() to=to.get_untracked() />
                        }
                        .into_any(),
                        Err(error) => view! { <PageError error /> }.into_any(),
                    }
                })}
            </Transition>
        </section>
    }
}

#[component]
fn BalanceOnDate(account_id: i64, changes: Signal<(u64, usize, usize)>) -> impl IntoView {
    let date = query_param("as_of");
    let as_of = Resource::new(
        move || (changes.get(), date.get()),
        move |(_, date)| async move {
            if date.is_empty() {
                Ok(None)
            } else {
                balance_as_of(account_id, date).await.map(Some)
            }
        },
    );
    view! {
        <section class="card" aria-labelledby="as-of-title">
            <h2 id="as-of-title">"Balance on a date"</h2>
            <Form method="GET" action="">
                <div class="inline-fields">
                    <div class="field">
                        <label for="as_of">"At the end of"</label>
                        <input id="as_of" name="as_of" type="date" value=move || date.get() />
                    </div>
                    <button type="submit" class="secondary">"Show balance"</button>
                </div>
            </Form>
            <Transition fallback=|| ()>
                {move || Suspend::new(async move {
                    match as_of.await {
                        Ok(Some(as_of)) => view! {
                            <p data-testid="balance-as-of">
                                "Balance at the end of " {as_of.date} ": "
                                <strong>{pounds(as_of.balance)}</strong>
                            </p>
                        }
                        .into_any(),
                        Ok(None) => ().into_any(),
                        Err(error) => view! {
                            <p class="error" role="alert">{error.to_string()}</p>
                        }
                        .into_any(),
                    }
                })}
            </Transition>
        </section>
    }
}
