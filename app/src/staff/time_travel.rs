//! Time travel: the bank as the log says it was at a past moment (money
//! held, accounts, users), any account's balance and statement as of
//! then, and what changed between two moments ([`super::diff`]).

use leptos::prelude::*;
use leptos_router::components::A;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::{
    StaffHeader, StaffOnly,
    diff::{Diff, DiffView},
    short_time,
};
use crate::{
    error::AppError,
    money::{pounds, signed_pounds},
    pages::{PageError, query_param},
};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    pub at: String,
    pub money_held: Decimal,
    pub accounts: i64,
    pub users: i64,
    pub events: i64,
    pub deposits: Decimal,
    pub withdrawals: Decimal,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line {
    pub value: i64,
    pub position: i64,
    pub recorded_at: String,
    pub event_type: String,
    pub delta: Decimal,
    pub balance_after: Decimal,
    pub note: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountAsOf {
    pub account_id: i64,
    pub username: String,
    pub balance: Decimal,
    pub lines: Vec<Line>,
    pub next_before_value: Option<i64>,
}

/// What the page shows for the moments and account asked for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeTravel {
    pub totals: Option<Totals>,
    pub account: Option<AccountAsOf>,
    /// The account asked for did not exist at that moment.
    pub no_account: bool,
    /// The moment asked for, as typed (for the statement's page links).
    pub at: String,
    pub diff: Option<Diff>,
}

/// Statement lines a page.
#[cfg(feature = "ssr")]
const LINES: u32 = 50;

#[server(endpoint = "staff_time_travel")]
pub async fn staff_time_travel(
    at: String,
    account: String,
    before: String,
    from: String,
    to: String,
) -> Result<TimeTravel, AppError> {
    use crate::server::staff_query::{parse_moment, parse_time, parse_whole};
    let user = super::staff_user().await?;
    let at = parse_moment(&at, "at")?;
    let account = parse_whole(&account, "account", 1)?;
    let before = parse_whole(&before, "before", 1)?;
    let from = parse_time(&from, "from")?;
    let to = parse_time(&to, "until")?;
    let mut travel = TimeTravel {
        totals: None,
        account: None,
        no_account: false,
        at: at.map(|at| at.to_rfc3339()).unwrap_or_default(),
        diff: None,
    };
    if let Some(at) = at {
        let at = crate::pages::encode_query_value(&at.to_rfc3339());
        travel.totals = Some(super::read_as(&user, &format!("/as-of?at={at}")).await?);
        if let Some(account) = account {
            let mut path = format!("/accounts/{account}/as-of?at={at}&limit={LINES}");
            if let Some(before) = before {
                path.push_str(&format!("&before_value={before}"));
            }
            match super::read_as(&user, &path).await {
                Ok(as_of) => travel.account = Some(as_of),
                Err(AppError::NotFound) => travel.no_account = true,
                Err(other) => return Err(other),
            }
        }
    }
    match (from, to) {
        (Some(from), Some(to)) if from < to => {
            let (from, to) = (
                crate::pages::encode_query_value(&from.to_rfc3339()),
                crate::pages::encode_query_value(&to.to_rfc3339()),
            );
            travel.diff = Some(super::read_as(&user, &format!("/diff?from={from}&to={to}")).await?);
        }
        (Some(_), Some(_)) => return Err(AppError::invalid("to", "until must be after from")),
        (Some(_), None) | (None, Some(_)) => {
            return Err(AppError::invalid("to", "a diff needs both from and until"));
        }
        (None, None) => {}
    }
    Ok(travel)
}

#[component]
pub fn TimeTravelPage() -> impl IntoView {
    let at = query_param("at");
    let account = query_param("account");
    let before = query_param("before");
    let from = query_param("from");
    let to = query_param("to");
    let travel = Resource::new(
        move || (at.get(), account.get(), before.get(), from.get(), to.get()),
        |(at, account, before, from, to)| staff_time_travel(at, account, before, from, to),
    );
    view! {
        <StaffOnly>
            <StaffHeader title="Time travel" />
            <section class="card" aria-labelledby="when-title">
                <h2 id="when-title">"As of a moment"</h2>
                <form method="get" action="/staff/time-travel" class="inline-fields">
                    <div class="field">
                        <label for="at">"Date and time (UTC)"</label>
                        <input id="at" name="at" type="text" value=move || at.get() placeholder="2026-11-30 09:00:00" />
                    </div>
                    <div class="field">
                        <label for="account">"Account (optional)"</label>
                        <input id="account" name="account" type="text" inputmode="numeric" value=move || account.get() />
                    </div>
                    <button type="submit">"Travel"</button>
                </form>
            </section>
            <section class="card" aria-labelledby="diff-title">
                <h2 id="diff-title">"What changed between two moments"</h2>
                <form method="get" action="/staff/time-travel" class="inline-fields">
                    <div class="field">
                        <label for="from">"From (UTC)"</label>
                        <input id="from" name="from" type="text" value=move || from.get() />
                    </div>
                    <div class="field">
                        <label for="to">"Until (UTC)"</label>
                        <input id="to" name="to" type="text" value=move || to.get() />
                    </div>
                    <button type="submit">"Compare"</button>
                </form>
            </section>
            <Suspense fallback=|| view! { <p>"Reading the log…"</p> }>
                {move || Suspend::new(async move {
                    match travel.await {
                        Ok(travel) => view! { <Results travel /> }.into_any(),
                        Err(error) => view! { <PageError error /> }.into_any(),
                    }
                })}
            </Suspense>
        </StaffOnly>
    }
}

#[component]
fn Results(travel: TimeTravel) -> impl IntoView {
    view! {
        {travel.totals.map(|totals| view! {
            <section class="card" aria-labelledby="totals-title">
                <h2 id="totals-title">{format!("The bank as of {}", short_time(&totals.at))}</h2>
                <TotalsList totals />
            </section>
        })}
        {travel.no_account.then(|| view! {
            <section class="card"><p data-testid="no-account">"That account did not exist yet at that moment."</p></section>
        })}
        {travel.account.map(|account| view! { <AccountThen account at=travel.at.clone() /> })}
        {travel.diff.map(|diff| view! { <DiffView diff /> })}
    }
}

#[component]
fn TotalsList(totals: Totals) -> impl IntoView {
    view! {
        <dl class="review" data-testid="totals">
            <dt>"Money held"</dt>
            <dd data-testid="money-held">{pounds(totals.money_held)}</dd>
            <dt>"Accounts"</dt>
            <dd>{totals.accounts}</dd>
            <dt>"Customers with an account"</dt>
            <dd>{totals.users}</dd>
            <dt>"Events"</dt>
            <dd>{totals.events}</dd>
            <dt>"Deposited, all told"</dt>
            <dd>{pounds(totals.deposits)}</dd>
            <dt>"Withdrawn, all told"</dt>
            <dd>{pounds(totals.withdrawals)}</dd>
        </dl>
    }
}

#[component]
fn AccountThen(account: AccountAsOf, at: String) -> impl IntoView {
    let older = account.next_before_value.map(|before| {
        format!(
            "/staff/time-travel?at={}&account={}&before={before}",
            crate::pages::encode_query_value(&at),
            account.account_id
        )
    });
    view! {
        <section class="card" aria-labelledby="account-then-title">
            <h2 id="account-then-title">
                {format!("Account {} ({}) then", account.account_id, account.username)}
            </h2>
            <p class="big-balance" data-testid="balance-then">{pounds(account.balance)}</p>
            <div class="table-scroll" tabindex="0" role="region" aria-label="Statement as of then">
                <table class="statement">
                    <thead>
                        <tr>
                            <th scope="col">"Time (UTC)"</th>
                            <th scope="col">"Event"</th>
                            <th scope="col">"Note"</th>
                            <th scope="col" class="num">"Amount"</th>
                            <th scope="col" class="num">"Balance"</th>
                        </tr>
                    </thead>
                    <tbody>
                        {account
                            .lines
                            .into_iter()
                            .map(|line| view! {
                                <tr>
                                    <td class="nowrap">{short_time(&line.recorded_at)}</td>
                                    <td>
                                        <A href=format!("/staff/events/{}", line.position)>{line.event_type}</A>
                                    </td>
                                    <td>{line.note.unwrap_or_default()}</td>
                                    <td class="num">{signed_pounds(line.delta, !line.delta.is_sign_negative())}</td>
                                    <td class="num">{pounds(line.balance_after)}</td>
                                </tr>
                            })
                            .collect_view()}
                    </tbody>
                </table>
            </div>
            {older.map(|href| view! { <nav class="pager" aria-label="Statement pages"><A href=href>"Older lines"</A></nav> })}
        </section>
    }
}
