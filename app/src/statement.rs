//! An account's statement as the page shows it: newest first, a page at a
//! time, each line with its date and time, description, signed amount and
//! the running balance after it.

use leptos::prelude::*;
use leptos_router::components::A;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::{
    error::AppError,
    money::{pounds, signed_pounds},
    pages::encode_query_value,
};

/// Lines on one page of the statement.
pub const PAGE_SIZE: u32 = 25;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatementLine {
    /// RFC 3339, for `<time datetime>`.
    pub at: String,
    /// As people read it, in UTC.
    pub when: String,
    pub description: String,
    pub credit: bool,
    pub amount: Decimal,
    pub balance: Decimal,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatementView {
    pub lines: Vec<StatementLine>,
    /// Where the next (older) page starts, if there is one.
    pub older: Option<i64>,
    /// Whether this is a later page (there is a newer one).
    pub paged: bool,
}

/// One page of the statement; `from`/`to` are dates (`YYYY-MM-DD`, or
/// empty) and `before` where an older page starts (or empty).
#[server(endpoint = "statement")]
pub async fn statement(
    account_id: i64,
    from: String,
    to: String,
    before: String,
) -> Result<StatementView, AppError> {
    use crate::server::{
        session, state,
        wire::{StatementPage, checked_date, statement_path},
    };
    let user = session::signed_in().await?;
    let from = checked_date(Some(from), "From").map_err(|m| AppError::invalid("from", m))?;
    let to = checked_date(Some(to), "To").map_err(|m| AppError::invalid("to", m))?;
    if let (Some(from), Some(to)) = (&from, &to)
        && from > to
    {
        return Err(AppError::invalid(
            "from",
            "the From date is after the To date",
        ));
    }
    let before = match before.trim() {
        "" => None,
        text => Some(
            text.parse::<i64>()
                .map_err(|_| AppError::invalid("before", "not a statement page"))?,
        ),
    };
    let path = statement_path(
        account_id,
        from.as_deref(),
        to.as_deref(),
        before,
        PAGE_SIZE,
    );
    let page: StatementPage = state::services()?
        .accounts(reqwest::Method::GET, &path, &user.call(), None::<&()>)
        .await?;
    Ok(StatementView {
        lines: page
            .entries
            .into_iter()
            .map(|entry| StatementLine {
                at: entry
                    .recorded_at
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                when: entry.recorded_at.format("%-d %b %Y, %H:%M").to_string(),
                description: entry.description,
                credit: entry.kind == "credit",
                amount: entry.amount,
                balance: entry.balance,
            })
            .collect(),
        older: page.next_before,
        paged: before.is_some(),
    })
}

#[component]
pub fn StatementTable(page: StatementView, from: String, to: String) -> impl IntoView {
    if page.lines.is_empty() {
        return view! { <p data-testid="statement-empty">"No entries for these dates."</p> }
            .into_any();
    }
    let dates = format!(
        "from={}&to={}",
        encode_query_value(&from),
        encode_query_value(&to)
    );
    let older = page.older.map(|before| format!("?{dates}&before={before}"));
    let newest = page.paged.then(|| format!("?{dates}"));
    view! {
        <div class="table-scroll" tabindex="0" role="region" aria-label="Statement entries">
            <table class="statement" data-testid="statement">
                <thead>
                    <tr>
                        <th scope="col">"Date (UTC)"</th>
                        <th scope="col">"Description"</th>
                        <th scope="col" class="num">"Amount"</th>
                        <th scope="col" class="num">"Balance"</th>
                    </tr>
                </thead>
                <tbody aria-live="polite">
                    {page
                        .lines
                        .into_iter()
                        .map(|line| {
                            let class = if line.credit { "num credit" } else { "num debit" };
                            view! {
                                <tr data-testid="statement-line">
                                    <td><time datetime=line.at>{line.when}</time></td>
                                    <td>{line.description}</td>
                                    <td class=class>{signed_pounds(line.amount, line.credit)}</td>
                                    <td class="num">{pounds(line.balance)}</td>
                                </tr>
                            }
                        })
                        .collect_view()}
                </tbody>
            </table>
        </div>
        <nav class="pager" aria-label="Statement pages">
            {newest.map(|href| view! { <A href=href>"Newest entries"</A> })}
            {older.map(|href| view! { <A href=href>"Older entries"</A> })}
        </nav>
    }
    .into_any()
}
