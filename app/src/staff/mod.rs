//! The staff console: the bank's event log as staff see it, read from the
//! reporting service (which keeps its own tables of every event but the
//! secret-bearing `UserCreated`) and, for subscriptions and parked events,
//! from the bus's staff endpoints.
//!
//! Every page and server function here is for staff only: a customer gets
//! the not-found page, exactly as for a page that does not exist, and
//! someone not logged in the log-in page.
//!
//! - [`browser`]: the event browser, with filters, seeking, export and a
//!   live mode; [`event`]: one event, its payload and its causation tree.
//! - [`history`]: one key's events; [`trace`]: one correlation's.
//! - [`time_travel`]: balances and totals as of a past time; [`diff`]:
//!   what changed between two.
//! - [`reports`] with [`chart`]: charts with their data tables.
//! - [`system`]: subscriptions, parked events, replays and skips, and the
//!   audit of what staff did.

pub mod browser;
pub mod browser_live;
pub mod chart;
pub mod diff;
pub mod event;
pub mod history;
pub mod reports;
pub mod system;
pub mod system_actions;
pub mod time_travel;
pub mod trace;

use leptos::prelude::*;
use leptos_router::components::A;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::{
    error::AppError,
    pages::{PageError, encode_query_value},
};

/// One event as the staff tables list it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventRow {
    pub position: i64,
    pub event_id: String,
    pub event_type: String,
    pub key: String,
    pub value: i64,
    pub correlation_id: String,
    pub causation_id: Option<String>,
    pub recorded_at: String,
    pub amount: Option<Decimal>,
    pub summary: String,
    /// The credential and connection that published it.
    #[serde(default)]
    pub published_by: Option<String>,
}

/// An RFC 3339 time as the console shows it: `2026-11-30 09:15:02` (UTC).
pub fn short_time(rfc3339: &str) -> String {
    rfc3339.replacen('T', " ", 1).chars().take(19).collect()
}

/// A time in a table: short to read, exact in its `datetime`.
#[component]
pub fn Time(at: String) -> impl IntoView {
    let shown = short_time(&at);
    view! { <time datetime=at>{shown}</time> }
}

/// A key as one segment of a path (a key may hold any character; `.` and
/// `..` alone would be read as steps up the path, and are no key's name).
pub fn key_segment(key: &str) -> Option<String> {
    (key != "." && key != "..").then(|| encode_query_value(key).replace('/', "%2F"))
}

/// The link to a key's history page.
pub fn key_href(key: &str) -> String {
    format!("/staff/keys/{}", key_segment(key).unwrap_or_default())
}

/// A staff page: checks who is logged in before anything of the console
/// shows, so a customer sees exactly the not-found page and someone not
/// logged in is sent to log in.
#[component]
pub fn StaffOnly(children: ChildrenFn) -> impl IntoView {
    let check = Resource::new(|| (), |_| staff_check());
    view! {
        <Suspense fallback=|| ()>
            {move || {
                let children = children.clone();
                Suspend::new(async move {
                    match check.await {
                        Ok(()) => view! { <div class="staff">{children()}</div> }.into_any(),
                        Err(error) => view! { <PageError error /> }.into_any(),
                    }
                })
            }}
        </Suspense>
    }
}

#[server(endpoint = "staff_check")]
pub async fn staff_check() -> Result<(), AppError> {
    staff_user().await.map(|_| ())
}

/// The heading every staff page starts with: its title, the console's
/// navigation, and how far behind the log its data is.
#[component]
pub fn StaffHeader(title: &'static str) -> impl IntoView {
    let freshness = Resource::new(|| (), |_| staff_freshness());
    view! {
        <nav class="staff-nav" aria-label="Staff console">
            <A href="/staff/events">"Events"</A>
            <A href="/staff/time-travel">"Time travel"</A>
            <A href="/staff/reports">"Reports"</A>
            <A href="/staff/system">"System"</A>
        </nav>
        <div class="staff-title">
            <h1>{title}</h1>
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    freshness
                        .await
                        .ok()
                        .map(|text| {
                            view! {
                                <p class="freshness" data-testid="freshness">
                                    {text}
                                </p>
                            }
                        })
                })}
            </Suspense>
        </div>
        <p class="hint">"Times are UTC. Type them as 2026-11-30 09:15:00, or in RFC 3339."</p>
    }
}

/// How far the reporting tables are behind the log, from the bus's own
/// account of the reporting subscription: "up to date" when it owes the
/// service nothing, else the age of the oldest event it has not yet had
/// acknowledged (and any parked events, which hold their keys back).
#[server(endpoint = "staff_freshness")]
pub async fn staff_freshness() -> Result<String, AppError> {
    use crate::server::state;
    #[derive(Deserialize)]
    struct Lag {
        client_type: String,
        unacknowledged: i64,
        parked: i64,
        in_flight: i64,
        oldest_unacknowledged_at: Option<chrono::DateTime<chrono::Utc>>,
    }
    staff_user().await?;
    let subscriptions: Vec<Lag> =
        state::bus_staff()?
            .get("/subscriptions")
            .await
            .map_err(|error| {
                tracing::warn!(%error, "the bus's staff endpoints did not answer");
                AppError::Unavailable("the bus is not answering".to_owned())
            })?;
    let Some(lag) = subscriptions
        .into_iter()
        .find(|s| s.client_type == "reporting")
    else {
        return Ok("the reporting service has not started yet".to_owned());
    };
    let parked = match lag.parked {
        0 => String::new(),
        n => format!("; {n} parked events hold their keys back"),
    };
    Ok(match lag.oldest_unacknowledged_at {
        None if lag.unacknowledged == 0 && lag.in_flight == 0 => format!("up to date{parked}"),
        None => format!("catching up{parked}"),
        Some(oldest) => {
            let seconds = (chrono::Utc::now() - oldest).num_seconds().max(0);
            format!("{seconds} s behind the log{parked}")
        }
    })
}

/// The staff member logged in: anyone else is told the page does not exist.
#[cfg(feature = "ssr")]
pub(crate) async fn staff_user() -> Result<crate::server::session::SessionUser, AppError> {
    let user = crate::server::session::signed_in().await?;
    if user.staff {
        Ok(user)
    } else {
        Err(AppError::NotFound)
    }
}

/// Reads `path` from the reporting service for `user` (a staff member).
#[cfg(feature = "ssr")]
pub(crate) async fn read_as<T: serde::de::DeserializeOwned>(
    user: &crate::server::session::SessionUser,
    path: &str,
) -> Result<T, AppError> {
    crate::server::state::services()?
        .reporting(path, &user.call())
        .await
        .map_err(read_error)
}

/// What a staff page shows when the reporting service said no.
#[cfg(feature = "ssr")]
pub(crate) fn read_error(error: crate::server::services::ServiceError) -> AppError {
    use crate::server::services::ServiceError;
    use reqwest::StatusCode;
    match error {
        ServiceError::Api { status, .. } if status == StatusCode::NOT_FOUND => AppError::NotFound,
        ServiceError::Api { status, .. } if status == StatusCode::UNAUTHORIZED => {
            AppError::NotSignedIn
        }
        ServiceError::Api {
            status, message, ..
        } if status == StatusCode::BAD_REQUEST => AppError::invalid("filter", message),
        other => {
            tracing::warn!(error = %other, "the reporting service did not answer");
            AppError::Unavailable(
                "the reporting service is not answering; please try again in a moment".to_owned(),
            )
        }
    }
}

/// A table of events, with links to each one, its key and its trace.
#[component]
pub fn EventTable(events: Vec<EventRow>, label: &'static str) -> impl IntoView {
    view! {
        <div class="table-scroll" tabindex="0" role="region" aria-label=label>
            <table class="statement events" data-testid="events">
                <thead>
                    <tr>
                        <th scope="col" class="num">"Position"</th>
                        <th scope="col">"Time (UTC)"</th>
                        <th scope="col">"Type"</th>
                        <th scope="col">"Key and value"</th>
                        <th scope="col">"Correlation"</th>
                        <th scope="col">"Payload"</th>
                    </tr>
                </thead>
                <tbody>
                    {events.into_iter().map(|event| view! { <EventLine event /> }).collect_view()}
                </tbody>
            </table>
        </div>
    }
}

#[component]
fn EventLine(event: EventRow) -> impl IntoView {
    // The end of the id: its start is a timestamp, the same for events
    // made close together.
    let skip = event.correlation_id.chars().count().saturating_sub(8);
    let correlation_short: String = event.correlation_id.chars().skip(skip).collect();
    view! {
        <tr data-testid="event-line" data-position=event.position>
            <td class="num">
                <A href=format!("/staff/events/{}", event.position)>{event.position}</A>
            </td>
            <td class="nowrap">
                <Time at=event.recorded_at />
            </td>
            <td>{event.event_type}</td>
            <td>
                <A href=key_href(&event.key)>{event.key}</A>
                " #"
                {event.value}
            </td>
            <td>
                <A
                    href=format!("/staff/traces/{}", event.correlation_id)
                    attr:title=event.correlation_id.clone()
                >
                    <span class="mono">{correlation_short}</span>
                </A>
            </td>
            <td class="summary">{event.summary}</td>
        </tr>
    }
}
