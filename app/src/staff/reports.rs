//! Reports: each a chart drawn on the server (readable without script),
//! its data table beside it, and a CSV of that table.

use std::collections::BTreeMap;

use leptos::prelude::*;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::{
    StaffHeader, StaffOnly,
    chart::{BarChart, Series},
    short_time,
};
use crate::{
    error::AppError,
    money::pounds,
    pages::{PageError, query_param},
};

/// The report and the part of its answer that a CSV file `name` holds.
pub fn csv_source(name: &str) -> Option<(&'static str, &'static str)> {
    Some(match name {
        "events" => ("events", "rows"),
        "transfers" => ("transfers", "rows"),
        "rejections" => ("rejections", "rows"),
        "cash" => ("cash", "rows"),
        "balances" => ("balances", "bands"),
        "largest" => ("balances", "largest"),
        "totals" => ("totals", "rows"),
        _ => return None,
    })
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventsRow {
    pub start: String,
    pub event_type: String,
    pub events: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransfersRow {
    pub hour: String,
    pub requested: i64,
    pub accepted: i64,
    pub rejected: i64,
    pub volume: Decimal,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectionRow {
    pub reason: String,
    pub transfers: i64,
    pub amount: Decimal,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CashRow {
    pub start: String,
    pub deposits: Decimal,
    pub deposit_count: i64,
    pub withdrawals: Decimal,
    pub withdrawal_count: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Band {
    pub label: String,
    pub accounts: i64,
    pub total: Decimal,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Largest {
    pub account_id: i64,
    pub username: String,
    pub balance: Decimal,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TotalRow {
    pub event_type: String,
    pub events: i64,
    pub amount: Option<Decimal>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reports {
    pub bucket: String,
    pub events: Vec<EventsRow>,
    pub transfers: Vec<TransfersRow>,
    pub rejections: Vec<RejectionRow>,
    pub cash: Vec<CashRow>,
    pub bands: Vec<Band>,
    pub largest: Vec<Largest>,
    pub totals: Vec<TotalRow>,
}

#[server(endpoint = "staff_reports")]
pub async fn staff_reports(bucket: String) -> Result<Reports, AppError> {
    #[derive(Deserialize)]
    struct Rows<T> {
        rows: Vec<T>,
    }
    #[derive(Deserialize)]
    struct Balances {
        bands: Vec<Band>,
        largest: Vec<Largest>,
    }
    let user = super::staff_user().await?;
    let bucket = match bucket.as_str() {
        "" | "hour" => "hour",
        "minute" => "minute",
        _ => {
            return Err(AppError::invalid(
                "bucket",
                "show events by minute or by hour",
            ));
        }
    };
    let events_path = format!("/reports/events?bucket={bucket}");
    let (events, transfers, rejections, cash, balances, totals) = futures_util::try_join!(
        super::read_as::<Rows<EventsRow>>(&user, &events_path),
        super::read_as::<Rows<TransfersRow>>(&user, "/reports/transfers"),
        super::read_as::<Rows<RejectionRow>>(&user, "/reports/rejections"),
        super::read_as::<Rows<CashRow>>(&user, "/reports/cash?bucket=hour"),
        super::read_as::<Balances>(&user, "/reports/balances"),
        super::read_as::<Rows<TotalRow>>(&user, "/reports/totals"),
    )?;
    Ok(Reports {
        bucket: bucket.to_owned(),
        events: events.rows,
        transfers: transfers.rows,
        rejections: rejections.rows,
        cash: cash.rows,
        bands: balances.bands,
        largest: balances.largest,
        totals: totals.rows,
    })
}

#[component]
pub fn ReportsPage() -> impl IntoView {
    let bucket = query_param("bucket");
    let reports = Resource::new(move || bucket.get(), staff_reports);
    view! {
        <StaffOnly>
            <StaffHeader title="Reports" />
            <Suspense fallback=|| view! { <p>"Loading the reports…"</p> }>
                {move || Suspend::new(async move {
                    match reports.await {
                        Ok(reports) => view! { <AllReports reports /> }.into_any(),
                        Err(error) => view! { <PageError error /> }.into_any(),
                    }
                })}
            </Suspense>
        </StaffOnly>
    }
}

/// A report's card: title, chart, table and CSV link.
#[component]
fn Report(id: &'static str, title: &'static str, csv: String, children: Children) -> impl IntoView {
    let heading = format!("{id}-title");
    let labelled_by = heading.clone();
    view! {
        <section class="card report" aria-labelledby=labelled_by data-testid=format!("report-{id}")>
            <h2 id=heading>{title}</h2>
            {children()}
            <p><a href=format!("/staff/reports/{csv}") download>"Download the table (CSV)"</a></p>
        </section>
    }
}

/// A short label of an RFC 3339 time: the hour and minute, or the date.
fn clock(rfc3339: &str) -> String {
    let full = short_time(rfc3339);
    full.get(11..16).map(str::to_owned).unwrap_or(full)
}

#[component]
fn AllReports(reports: Reports) -> impl IntoView {
    // Events by bucket and type: one stacked bar per bucket.
    let mut by_bucket: BTreeMap<String, BTreeMap<String, i64>> = BTreeMap::new();
    for row in &reports.events {
        *by_bucket
            .entry(row.start.clone())
            .or_default()
            .entry(row.event_type.clone())
            .or_default() += row.events;
    }
    let types: Vec<String> = {
        let mut types: Vec<String> = reports
            .events
            .iter()
            .map(|r| r.event_type.clone())
            .collect();
        types.sort();
        types.dedup();
        types
    };
    let event_labels: Vec<String> = by_bucket.keys().map(|start| clock(start)).collect();
    let event_series: Vec<Series> = types
        .iter()
        .map(|t| Series {
            name: t.clone(),
            values: by_bucket
                .values()
                .map(|counts| Decimal::from(counts.get(t).copied().unwrap_or(0)))
                .collect(),
        })
        .collect();
    let other_bucket = if reports.bucket == "hour" {
        ("minute", "By minute (last hour)")
    } else {
        ("hour", "By hour (last day)")
    };

    view! {
        <Report id="events" title="Events by type" csv=format!("events.csv?bucket={}", reports.bucket)>
            <p><a href=format!("/staff/reports?bucket={}", other_bucket.0)>{other_bucket.1}</a></p>
            <BarChart title=format!("Events per {} by type", reports.bucket) labels=event_labels series=event_series stacked=true />
            <Table head=vec!["Start (UTC)", "Type", "Events"] rows=reports.events.iter().map(|r| vec![short_time(&r.start), r.event_type.clone(), r.events.to_string()]).collect() />
        </Report>
        <Report id="transfers" title="Transfers per hour" csv="transfers.csv".to_owned()>
            <BarChart
                title="Accepted and rejected transfers per hour".to_owned()
                labels=reports.transfers.iter().map(|r| clock(&r.hour)).collect()
                series=vec![
                    Series { name: "accepted".into(), values: reports.transfers.iter().map(|r| Decimal::from(r.accepted)).collect() },
                    Series { name: "rejected".into(), values: reports.transfers.iter().map(|r| Decimal::from(r.rejected)).collect() },
                ]
                stacked=true
            />
            <Table
                head=vec!["Hour (UTC)", "Asked for", "Accepted", "Rejected", "Acceptance", "Volume"]
                rows=reports.transfers.iter().map(|r| {
                    let decided = r.accepted + r.rejected;
                    let rate = if decided == 0 { "–".to_owned() } else { format!("{}%", r.accepted * 100 / decided) };
                    vec![short_time(&r.hour), r.requested.to_string(), r.accepted.to_string(), r.rejected.to_string(), rate, pounds(r.volume)]
                }).collect()
            />
        </Report>
        <Report id="rejections" title="Rejected transfers by reason" csv="rejections.csv".to_owned()>
            <BarChart
                title="Rejected transfers by reason".to_owned()
                labels=reports.rejections.iter().map(|r| r.reason.clone()).collect()
                series=vec![Series { name: "transfers".into(), values: reports.rejections.iter().map(|r| Decimal::from(r.transfers)).collect() }]
            />
            <Table head=vec!["Reason", "Transfers", "Amount"] rows=reports.rejections.iter().map(|r| vec![r.reason.clone(), r.transfers.to_string(), pounds(r.amount)]).collect() />
        </Report>
        <Report id="cash" title="Deposits and withdrawals per hour" csv="cash.csv".to_owned()>
            <BarChart
                title="Deposits and withdrawals per hour, in pounds".to_owned()
                labels=reports.cash.iter().map(|r| clock(&r.start)).collect()
                series=vec![
                    Series { name: "deposits".into(), values: reports.cash.iter().map(|r| r.deposits).collect() },
                    Series { name: "withdrawals".into(), values: reports.cash.iter().map(|r| r.withdrawals).collect() },
                ]
            />
            <Table
                head=vec!["Hour (UTC)", "Deposits", "Deposited", "Withdrawals", "Withdrawn"]
                rows=reports.cash.iter().map(|r| vec![short_time(&r.start), r.deposit_count.to_string(), pounds(r.deposits), r.withdrawal_count.to_string(), pounds(r.withdrawals)]).collect()
            />
        </Report>
        <Report id="balances" title="Accounts by balance" csv="balances.csv".to_owned()>
            <BarChart
                title="Accounts by balance band".to_owned()
                labels=reports.bands.iter().map(|b| b.label.clone()).collect()
                series=vec![Series { name: "accounts".into(), values: reports.bands.iter().map(|b| Decimal::from(b.accounts)).collect() }]
            />
            <Table head=vec!["Balance", "Accounts", "Held"] rows=reports.bands.iter().map(|b| vec![b.label.clone(), b.accounts.to_string(), pounds(b.total)]).collect() />
            <h3>"The largest balances"</h3>
            <Table head=vec!["Account", "Customer", "Balance"] rows=reports.largest.iter().map(|l| vec![l.account_id.to_string(), l.username.clone(), pounds(l.balance)]).collect() />
            <p><a href="/staff/reports/largest.csv" download>"Download the largest balances (CSV)"</a></p>
        </Report>
        <Report id="totals" title="Totals by type" csv="totals.csv".to_owned()>
            <BarChart
                title="Events by type since the beginning".to_owned()
                labels=reports.totals.iter().map(|t| t.event_type.clone()).collect()
                series=vec![Series { name: "events".into(), values: reports.totals.iter().map(|t| Decimal::from(t.events)).collect() }]
            />
            <Table head=vec!["Type", "Events", "Amount"] rows=reports.totals.iter().map(|t| vec![t.event_type.clone(), t.events.to_string(), t.amount.map(pounds).unwrap_or_default()]).collect() />
        </Report>
    }
}

/// A report's data table.
#[component]
fn Table(head: Vec<&'static str>, rows: Vec<Vec<String>>) -> impl IntoView {
    view! {
        <div class="table-scroll" tabindex="0" role="region" aria-label="Data">
            <table class="statement data">
                <thead>
                    <tr>{head.into_iter().map(|h| view! { <th scope="col">{h}</th> }).collect_view()}</tr>
                </thead>
                <tbody>
                    {rows
                        .into_iter()
                        .map(|row| view! { <tr>{row.into_iter().map(|cell| view! { <td>{cell}</td> }).collect_view()}</tr> })
                        .collect_view()}
                </tbody>
            </table>
        </div>
    }
}
