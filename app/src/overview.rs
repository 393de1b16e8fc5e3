//! The overview: every account of the person with its balance and its
//! loyalty points, redeeming the points, and opening another account. A
//! new account shows as pending until the accounts service has opened it,
//! then appears without a reload.

use leptos::prelude::*;
use leptos_router::components::A;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::{
    error::AppError,
    forms::{FormKey, action_error, form_key},
    live::LiveTick,
    money::pounds,
    pages::{FormError, PageError},
    points::{Loyalty, PointsSection, RedeemPoints, points_text},
};

/// Most accounts a customer may hold (the users service's limit).
pub const MAX_ACCOUNTS: usize = 10;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountSummary {
    pub account_id: i64,
    pub balance: Decimal,
    pub opened_on: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Overview {
    pub display_name: String,
    pub staff: bool,
    pub accounts: Vec<AccountSummary>,
    /// Accounts asked for and not opened yet.
    pub pending: usize,
    pub total: Decimal,
    pub loyalty: Loyalty,
}

/// The person's accounts (at most ten, so one page of each list).
#[server(endpoint = "accounts_overview")]
pub async fn accounts_overview() -> Result<Overview, AppError> {
    use crate::server::{
        session, state,
        wire::{AccountPage, AccountRequestPage},
    };
    let user = session::signed_in().await?;
    let services = state::services()?;
    if user.staff {
        return Ok(Overview {
            display_name: user.display_name,
            staff: true,
            accounts: Vec::new(),
            pending: 0,
            total: Decimal::ZERO,
            loyalty: Loyalty::NotOffered,
        });
    }
    let method = reqwest::Method::GET;
    let accounts_path = format!("/accounts?username={}&limit=50", user.username);
    let requests_path = format!("/users/{}/accounts?limit=10", user.username);
    let call = user.call();
    // Accounts being opened are asked for only while this session opened
    // one that has not shown up yet: one service call a page, not two.
    let session = session::current_session().await?;
    let opening = session::is_opening_accounts(&session).await?;
    let accounts_and_requests = futures_util::future::try_join(
        services.accounts::<AccountPage>(method.clone(), &accounts_path, &call, None::<&()>),
        async {
            if opening {
                services
                    .users::<AccountRequestPage>(method, &requests_path, &call, None::<&()>)
                    .await
                    .map(Some)
            } else {
                Ok(None)
            }
        },
    );
    let (fetched, loyalty) = futures_util::join!(
        accounts_and_requests,
        crate::points::loyalty(&services, &user)
    );
    let (accounts, requests) = fetched?;
    // Every account comes from a request; the users service may learn of
    // an opening later than the accounts service, so count, not statuses.
    let pending = requests.map_or(0, |requests| {
        requests
            .accounts
            .len()
            .saturating_sub(accounts.accounts.len())
    });
    if opening && pending == 0 {
        session::set_opening_accounts(&session, false).await?;
    }
    Ok(Overview {
        display_name: user.display_name,
        staff: false,
        total: accounts.accounts.iter().map(|a| a.balance).sum(),
        accounts: accounts
            .accounts
            .into_iter()
            .map(|account| AccountSummary {
                account_id: account.account_id,
                balance: account.balance,
                opened_on: account.created_at.format("%-d %b %Y").to_string(),
            })
            .collect(),
        pending,
        loyalty,
    })
}

/// Asks for another account.
#[server(endpoint = "open_account")]
pub async fn open_account(form_key: String) -> Result<(), AppError> {
    use crate::server::{session, state};
    let user = session::signed_in().await?;
    let mut call = user.call();
    call.idempotency_key = Some(&form_key);
    let path = format!("/users/{}/accounts", user.username);
    let answer = state::services()?
        .users::<serde_json::Value>(reqwest::Method::POST, &path, &call, None::<&()>)
        .await;
    match answer {
        Ok(_) => {
            let session = session::current_session().await?;
            session::set_opening_accounts(&session, true).await
        }
        Err(error) if error.code() == Some("too_many_accounts") => Err(AppError::Refused(format!(
            "you already have {MAX_ACCOUNTS} accounts, the most one customer may hold"
        ))),
        Err(error) => Err(error.into()),
    }
}

#[component]
pub fn OverviewPage() -> impl IntoView {
    let open = ServerAction::<OpenAccount>::new();
    let redeem = ServerAction::<RedeemPoints>::new();
    let data = Resource::new(
        move || {
            (
                LiveTick::get(),
                open.version().get(),
                redeem.version().get(),
            )
        },
        |_| accounts_overview(),
    );
    let key = form_key(open);
    let open_error = action_error(open);

    view! {
        <Transition fallback=|| view! { <p>"Loading your accounts…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(overview) if overview.staff => view! { <StaffNote overview /> }.into_any(),
                    Ok(overview) => view! { <Accounts overview /> }.into_any(),
                    Err(error) => view! { <PageError error /> }.into_any(),
                }
            })}
        </Transition>
        <PointsSection overview=data action=redeem />
        <section class="card" aria-labelledby="open-title">
            <h2 id="open-title">"Open another account"</h2>
            <p>"Up to " {MAX_ACCOUNTS} " accounts, each with its own number and statement."</p>
            <ActionForm action=open>
                <FormKey key />
                <FormError error=Signal::derive(move || open_error.get().map(|e| e.to_string())) />
                <button type="submit" disabled=move || open.pending().get()>
                    "Open an account"
                </button>
            </ActionForm>
        </section>
    }
}

#[component]
fn StaffNote(overview: Overview) -> impl IntoView {
    view! {
        <section class="card">
            <h1>"Hello, " {overview.display_name}</h1>
            <p>"You are logged in as bank staff. Staff hold no accounts of their own."</p>
            <p><a href="/staff/events">"Open the staff console"</a></p>
        </section>
    }
}

#[component]
fn Accounts(overview: Overview) -> impl IntoView {
    let pending = overview.pending;
    let points = overview.loyalty.points().cloned();
    let points_of = move |account_id: i64| {
        points.as_ref().map(|points| {
            view! {
                <span class="points" data-testid="account-points">
                    {points_text(points.of(account_id))}
                </span>
            }
        })
    };
    view! {
        <section class="card" aria-labelledby="accounts-title">
            <h1 id="accounts-title">"Your accounts"</h1>
            <p class="muted">"Hello, " {overview.display_name.clone()} "."</p>
            <ul class="accounts" aria-live="polite" data-testid="accounts">
                {overview
                    .accounts
                    .into_iter()
                    .map(|account| {
                        let href = format!("/accounts/{}", account.account_id);
                        view! {
                            <li class="account" data-testid="account">
                                <A href=href>
                                    <span class="account-name">
                                        "Account " {account.account_id}
                                    </span>
                                </A>
                                {points_of(account.account_id)}
                                <span class="balance" data-testid="account-balance">
                                    {pounds(account.balance)}
                                </span>
                                <span class="muted">"Opened " {account.opened_on}</span>
                            </li>
                        }
                    })
                    .collect_view()}
                {(0..pending)
                    .map(|_| {
                        view! {
                            <li class="account pending" data-testid="account-pending">
                                <span class="account-name">"New account"</span>
                                <span class="muted">"Being opened…"</span>
                            </li>
                        }
                    })
                    .collect_view()}
            </ul>
            <p class="total">"Total " <strong>{pounds(overview.total)}</strong></p>
        </section>
    }
}
