//! One consistency key's history: every event of the key in value order.
//! For an account (`acc-N`), its whole life with the running balance, and
//! on every line a link to where the money came from (the line's event
//! with its causation tree: the transfer, its request and who asked).

use leptos::prelude::*;
use leptos_router::{components::A, hooks::use_params_map};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::{StaffHeader, StaffOnly, Time, key_href};
use crate::{
    error::AppError,
    money::pounds,
    pages::{PageError, query_param},
};

#[cfg(feature = "ssr")]
const PAGE_SIZE: u32 = 100;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryLine {
    pub position: i64,
    pub value: i64,
    pub event_type: String,
    pub recorded_at: String,
    pub amount: Option<Decimal>,
    pub summary: String,
    pub correlation_id: String,
    pub balance_after: Option<Decimal>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyHistory {
    pub key: String,
    pub events: Vec<HistoryLine>,
    pub next_after_value: Option<i64>,
}

#[server(endpoint = "staff_key_history")]
pub async fn staff_key_history(key: String, after: String) -> Result<KeyHistory, AppError> {
    use crate::server::staff_query::parse_whole;
    let user = super::staff_user().await?;
    let key = key.trim();
    let segment = super::key_segment(key)
        .filter(|_| !key.is_empty() && key.chars().count() <= 256)
        .ok_or(AppError::NotFound)?;
    let mut path = format!("/keys/{segment}/events?limit={PAGE_SIZE}");
    if let Some(after) = parse_whole(&after, "after", 0)? {
        path.push_str(&format!("&after_value={after}"));
    }
    super::read_as(&user, &path).await
}

#[component]
pub fn KeyHistoryPage() -> impl IntoView {
    let params = use_params_map();
    let key = Memo::new(move |_| params.read().get("key").unwrap_or_default());
    let after = query_param("after");
    let history = Resource::new(
        move || (key.get(), after.get()),
        |(key, after)| staff_key_history(key, after),
    );
    view! {
        <StaffOnly>
            <StaffHeader title="Key history" />
            <Suspense fallback=|| view! { <p>"Loading the key's history…"</p> }>
                {move || Suspend::new(async move {
                    match history.await {
                        Ok(history) => view! { <History history /> }.into_any(),
                        Err(error) => view! { <PageError error /> }.into_any(),
                    }
                })}
            </Suspense>
        </StaffOnly>
    }
}

#[component]
fn History(history: KeyHistory) -> impl IntoView {
    let account = history.key.starts_with("acc-");
    let next = history
        .next_after_value
        .map(|after| format!("{}?after={after}", key_href(&history.key)));
    let empty = history.events.is_empty();
    view! {
        <section class="card" aria-labelledby="key-title">
            <h2 id="key-title">
                <span class="mono">{history.key.clone()}</span>
                {if account { ": the account's life" } else { "" }}
            </h2>
            {empty.then(|| view! { <p>"No event has this key."</p> })}
            <div class="table-scroll" tabindex="0" role="region" aria-label="Key history">
                <table class="statement" data-testid="key-history">
                    <thead>
                        <tr>
                            <th scope="col" class="num">"Value"</th>
                            <th scope="col">"Time (UTC)"</th>
                            <th scope="col">"Type"</th>
                            <th scope="col">"What"</th>
                            {account.then(|| view! { <th scope="col" class="num">"Balance after"</th> })}
                            <th scope="col">"Links"</th>
                        </tr>
                    </thead>
                    <tbody>
                        {history
                            .events
                            .into_iter()
                            .map(|line| {
                                let origin = if line.event_type == "ConfirmedCredit" {
                                    "Where did this money come from?"
                                } else {
                                    "Causation"
                                };
                                view! {
                                    <tr data-testid="history-line">
                                        <td class="num">{line.value}</td>
                                        <td class="nowrap"><Time at=line.recorded_at /></td>
                                        <td>{line.event_type}</td>
                                        <td>{line.summary}</td>
                                        {account.then(|| view! {
                                            <td class="num" data-testid="balance-after">
                                                {line.balance_after.map(pounds).unwrap_or_default()}
                                            </td>
                                        })}
                                        <td class="links">
                                            <A href=format!("/staff/events/{}#origin", line.position)>{origin}</A>
                                            " · "
                                            <A href=format!("/staff/traces/{}", line.correlation_id)>"Trace"</A>
                                        </td>
                                    </tr>
                                }
                            })
                            .collect_view()}
                    </tbody>
                </table>
            </div>
            {next.map(|href| view! { <nav class="pager" aria-label="History pages"><A href=href>"Later events"</A></nav> })}
        </section>
    }
}
