//! The person's transfers with their status, newest first, in pages:
//! those they asked for, or every transfer in or out of one account.

use leptos::prelude::*;
use leptos_router::components::{A, Form};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::{
    error::AppError,
    live::LiveTick,
    money::pounds,
    overview::accounts_overview,
    pages::{PageError, query_param},
};

#[cfg(feature = "ssr")]
const PAGE_SIZE: u32 = 25;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferLine {
    pub transaction_id: i64,
    pub from_account_id: i64,
    pub to_account_id: i64,
    pub amount: Decimal,
    pub reference: String,
    pub status: String,
    pub reason: Option<String>,
    pub when: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferList {
    pub transfers: Vec<TransferLine>,
    pub older: Option<i64>,
}

/// `account` empty: the transfers the person asked for; else those in or
/// out of that account (theirs, or a 404).
#[server(endpoint = "transfers")]
pub async fn transfers(account: String, before: String) -> Result<TransferList, AppError> {
    use crate::server::{session, state, wire::TransferPage};
    let user = session::signed_in().await?;
    let whole = |text: &str, field: &str| -> Result<Option<i64>, AppError> {
        match text.trim() {
            "" => Ok(None),
            text => text
                .parse::<i64>()
                .map(Some)
                .map_err(|_| AppError::invalid(field, "not an account number")),
        }
    };
    let mut path = match whole(&account, "account")? {
        Some(account) => format!("/transfers?account_id={account}&limit={PAGE_SIZE}"),
        None => format!("/transfers?username={}&limit={PAGE_SIZE}", user.username),
    };
    if let Some(before) = whole(&before, "before")? {
        path.push_str(&format!("&before={before}"));
    }
    let page: TransferPage = state::services()?
        .transactions(reqwest::Method::GET, &path, &user.call(), None::<&()>)
        .await?;
    Ok(TransferList {
        transfers: page
            .transfers
            .into_iter()
            .map(|t| TransferLine {
                transaction_id: t.transaction_id,
                from_account_id: t.from_account_id,
                to_account_id: t.to_account_id,
                amount: t.amount,
                reference: t.reference,
                status: t.status,
                reason: t.reason,
                when: t.requested_at.format("%-d %b %Y, %H:%M").to_string(),
            })
            .collect(),
        older: page.next_before,
    })
}

#[component]
pub fn TransfersPage() -> impl IntoView {
    let account = query_param("account");
    let before = query_param("before");
    let accounts = Resource::new(|| (), |_| accounts_overview());
    let list = Resource::new(
        move || (LiveTick::get(), account.get(), before.get()),
        |(_, account, before)| transfers(account, before),
    );
    view! {
        <section class="card" aria-labelledby="transfers-title">
            <h1 id="transfers-title">"Transfers"</h1>
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    let accounts = accounts.await.map(|o| o.accounts).unwrap_or_default();
                    let chosen = account.get_untracked();
                    view! {
                        <Form method="GET" action="/transfers">
                            <div class="inline-fields">
                                <div class="field">
                                    <label for="account-filter">"Show"</label>
                                    <select id="account-filter" name="account">
                                        <option value="">"Transfers I asked for"</option>
                                        {accounts
                                            .into_iter()
                                            .map(|a| {
                                                let id = a.account_id.to_string();
                                                let selected = id == chosen;
                                                view! {
                                                    <option value=id selected=selected>
                                                        "In and out of account " {a.account_id}
                                                    </option>
                                                }
                                            })
                                            .collect_view()}
                                    </select>
                                </div>
                                <button type="submit" class="secondary">"Show"</button>
                            </div>
                        </Form>
                    }
                })}
            </Suspense>
            <Transition fallback=|| view! { <p>"Loading transfers…"</p> }>
                {move || Suspend::new(async move {
                    match list.await {
                        Ok(list) => view! { <TransferTable list account=account.get_untracked() /> }
                            .into_any(),
                        Err(error) => view! { <PageError error /> }.into_any(),
                    }
                })}
            </Transition>
        </section>
    }
}

#[component]
fn TransferTable(list: TransferList, account: String) -> impl IntoView {
    if list.transfers.is_empty() {
        return view! { <p>"No transfers yet."</p> }.into_any();
    }
    let older = list
        .older
        .map(|before| format!("/transfers?account={account}&before={before}"));
    view! {
        <div class="table-scroll" tabindex="0" role="region" aria-label="Transfers">
            <table class="statement" data-testid="transfers">
                <thead>
                    <tr>
                        <th scope="col">"Date (UTC)"</th>
                        <th scope="col">"From"</th>
                        <th scope="col">"To"</th>
                        <th scope="col">"Reference"</th>
                        <th scope="col" class="num">"Amount"</th>
                        <th scope="col">"Status"</th>
                    </tr>
                </thead>
                <tbody aria-live="polite">
                    {list
                        .transfers
                        .into_iter()
                        .map(|t| {
                            let status = match (t.status.as_str(), &t.reason) {
                                ("rejected", Some(reason)) => format!("rejected: {reason}"),
                                (status, _) => status.to_owned(),
                            };
                            view! {
                                <tr data-testid="transfer-line">
                                    <td>
                                        <A href=format!("/transfers/{}", t.transaction_id)>{t.when}</A>
                                    </td>
                                    <td>{t.from_account_id}</td>
                                    <td>{t.to_account_id}</td>
                                    <td>{t.reference}</td>
                                    <td class="num">{pounds(t.amount)}</td>
                                    <td class=format!("status {}", t.status)>{status}</td>
                                </tr>
                            }
                        })
                        .collect_view()}
                </tbody>
            </table>
        </div>
        {older.map(|href| view! { <nav class="pager" aria-label="Transfer pages"><A href=href>"Older transfers"</A></nav> })}
    }
    .into_any()
}
