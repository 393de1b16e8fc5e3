//! What changed between two moments: the bank's totals at each, the
//! events in between by type, and the accounts that changed most.

use leptos::prelude::*;
use leptos_router::components::A;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::{short_time, time_travel::Totals};
use crate::money::{pounds, signed_pounds};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountChange {
    pub account_id: i64,
    pub username: String,
    pub balance_from: Decimal,
    pub balance_to: Decimal,
    pub change: Decimal,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TypeCount {
    pub event_type: String,
    pub events: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Diff {
    pub from: Totals,
    pub to: Totals,
    pub by_type: Vec<TypeCount>,
    pub accounts: Vec<AccountChange>,
}

#[component]
pub fn DiffView(diff: Diff) -> impl IntoView {
    let held_change = diff.to.money_held - diff.from.money_held;
    view! {
        <section class="card" aria-labelledby="diff-result-title">
            <h2 id="diff-result-title">
                {format!("From {} until {}", short_time(&diff.from.at), short_time(&diff.to.at))}
            </h2>
            <p data-testid="diff-money">
                "Money held: " {pounds(diff.from.money_held)} " → " {pounds(diff.to.money_held)}
                " (" {signed_pounds(held_change, !held_change.is_sign_negative())} "); accounts: " {diff.from.accounts} " → " {diff.to.accounts}
                "; customers: " {diff.from.users} " → " {diff.to.users} "."
            </p>
            <h3>"Events in between, by type"</h3>
            <ul class="plain">
                {diff
                    .by_type
                    .into_iter()
                    .map(|t| view! { <li>{format!("{}: {}", t.event_type, t.events)}</li> })
                    .collect_view()}
            </ul>
            <h3>"Accounts that changed most"</h3>
            <div class="table-scroll" tabindex="0" role="region" aria-label="Accounts that changed">
                <table class="statement">
                    <thead>
                        <tr>
                            <th scope="col">"Account"</th>
                            <th scope="col" class="num">"Before"</th>
                            <th scope="col" class="num">"After"</th>
                            <th scope="col" class="num">"Change"</th>
                        </tr>
                    </thead>
                    <tbody>
                        {diff
                            .accounts
                            .into_iter()
                            .map(|a| view! {
                                <tr>
                                    <td>
                                        <A href=super::key_href(&format!("acc-{}", a.account_id))>
                                            {format!("{} ({})", a.account_id, a.username)}
                                        </A>
                                    </td>
                                    <td class="num">{pounds(a.balance_from)}</td>
                                    <td class="num">{pounds(a.balance_to)}</td>
                                    <td class="num">{signed_pounds(a.change, !a.change.is_sign_negative())}</td>
                                </tr>
                            })
                            .collect_view()}
                    </tbody>
                </table>
            </div>
        </section>
    }
}
