//! The event browser: the whole log, newest first, in pages; seek to a
//! position or a time; filter by type, time, key, correlation, account,
//! amount and payload text; export what the filters select; and a live
//! mode that puts new events on top while the reader is at the top.

use leptos::prelude::*;
use leptos_router::{components::A, hooks::use_query_map};
use serde::{Deserialize, Serialize};

use super::{EventRow, EventTable, StaffHeader, StaffOnly};
use crate::{
    error::AppError,
    pages::{PageError, encode_query_value},
};

/// Every event type the reporting service keeps (all but `UserCreated`).
pub const EVENT_TYPES: &[&str] = &[
    "AccountCreationRequest",
    "AccountCreated",
    "ConfirmedCredit",
    "ConfirmedDebit",
    "PendingTransaction",
    "AcceptedTransaction",
    "RejectedTransaction",
];

/// The browser's filters and where its page starts, as the page's query
/// string carries them. Empty means "not given" (and may be left out).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct EventFilter {
    pub types: Vec<String>,
    pub from: String,
    pub to: String,
    pub key: String,
    pub correlation: String,
    pub account: String,
    pub min_amount: String,
    pub max_amount: String,
    pub q: String,
    /// Paging: older than this position.
    pub before: String,
    /// Paging: newer than this position.
    pub after: String,
    /// Seek: the page that starts at this time.
    pub at: String,
    /// Seek: the page that starts at this position.
    pub position: String,
}

impl EventFilter {
    /// The filters (not the paging) as query parameters, for the page's
    /// own links and for export.
    pub fn filter_query(&self) -> String {
        let mut pairs: Vec<(&str, &str)> =
            self.types.iter().map(|t| ("type", t.as_str())).collect();
        for (name, value) in [
            ("from", &self.from),
            ("to", &self.to),
            ("key", &self.key),
            ("correlation", &self.correlation),
            ("account", &self.account),
            ("min_amount", &self.min_amount),
            ("max_amount", &self.max_amount),
            ("q", &self.q),
        ] {
            if !value.trim().is_empty() {
                pairs.push((name, value.trim()));
            }
        }
        pairs
            .iter()
            .map(|(name, value)| format!("{name}={}", encode_query_value(value)))
            .collect::<Vec<_>>()
            .join("&")
    }

    fn with_paging(&self, name: &str, value: i64) -> String {
        let filters = self.filter_query();
        let sep = if filters.is_empty() { "" } else { "&" };
        format!("/staff/events?{filters}{sep}{name}={value}")
    }
}

/// One page of the browser.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventPage {
    pub events: Vec<EventRow>,
    pub newer: Option<i64>,
    pub older: Option<i64>,
}

#[server(endpoint = "staff_events")]
pub async fn staff_events(filter: EventFilter) -> Result<EventPage, AppError> {
    let user = super::staff_user().await?;
    let query = crate::server::staff_query::events_query(&filter, 50)?;
    super::read_as(&user, &format!("/events?{query}")).await
}

/// The filters of the current address.
fn current_filter() -> Memo<EventFilter> {
    let query = use_query_map();
    Memo::new(move |_| {
        let query = query.read();
        let one = |name: &str| query.get(name).unwrap_or_default();
        EventFilter {
            types: query.get_all("type").unwrap_or_default(),
            from: one("from"),
            to: one("to"),
            key: one("key"),
            correlation: one("correlation"),
            account: one("account"),
            min_amount: one("min_amount"),
            max_amount: one("max_amount"),
            q: one("q"),
            before: one("before"),
            after: one("after"),
            at: one("at"),
            position: one("position"),
        }
    })
}

#[component]
pub fn EventBrowserPage() -> impl IntoView {
    let filter = current_filter();
    let page = Resource::new(move || filter.get(), staff_events);
    view! {
        <StaffOnly>
            <StaffHeader title="Events" />
            <section class="card" aria-labelledby="filters-title">
                <h2 id="filters-title">"Filters and seeking"</h2>
                {move || view! { <Filters filter=filter.get() /> }}
            </section>
            <section class="card" aria-labelledby="log-title">
                <h2 id="log-title">"The log, newest first"</h2>
                <Transition fallback=|| view! { <p>"Loading events…"</p> }>
                    {move || Suspend::new(async move {
                        let filter = filter.get_untracked();
                        match page.await {
                            Ok(page) => view! { <Results page filter /> }.into_any(),
                            Err(error) => view! { <PageError error /> }.into_any(),
                        }
                    })}
                </Transition>
            </section>
        </StaffOnly>
    }
}

/// The filter form: a plain GET form, so it works without JavaScript and
/// every filtered view has an address of its own.
#[component]
fn Filters(filter: EventFilter) -> impl IntoView {
    let text = |id: &'static str, label: &'static str, value: String, hint: &'static str| {
        view! {
            <div class="field">
                <label for=id>{label}</label>
                <input id=id name=id type="text" value=value placeholder=hint />
            </div>
        }
    };
    view! {
        <form method="get" action="/staff/events" class="filters">
            <fieldset class="types">
                <legend>"Event types (none ticked: all)"</legend>
                {EVENT_TYPES
                    .iter()
                    .map(|name| {
                        let checked = filter.types.iter().any(|t| t == name);
                        let id = format!("type-{name}");
                        let for_id = id.clone();
                        view! {
                            <label for=for_id class="check">
                                <input type="checkbox" id=id name="type" value=*name checked=checked />
                                {*name}
                            </label>
                        }
                    })
                    .collect_view()}
            </fieldset>
            <div class="filter-grid">
                {text("from", "From (UTC)", filter.from.clone(), "2026-11-30 09:00")}
                {text("to", "Until (UTC)", filter.to.clone(), "2026-11-30 18:00")}
                {text("key", "Consistency key", filter.key.clone(), "acc-7")}
                {text("correlation", "Correlation id", filter.correlation.clone(), "uuid")}
                {text("account", "Account", filter.account.clone(), "7")}
                {text("min_amount", "Amount from (£)", filter.min_amount.clone(), "10.00")}
                {text("max_amount", "Amount up to (£)", filter.max_amount.clone(), "500.00")}
                {text("q", "Text in the payload", filter.q.clone(), "rent")}
                {text("at", "Seek to a time (UTC)", filter.at.clone(), "2026-11-30 12:00:00")}
                {text("position", "Seek to a position", filter.position.clone(), "1200")}
            </div>
            <div class="actions">
                <button type="submit">"Show"</button>
                <a href="/staff/events">"Clear"</a>
            </div>
        </form>
    }
}

#[component]
fn Results(page: EventPage, filter: EventFilter) -> impl IntoView {
    let filters = filter.filter_query();
    let export = |format: &str| {
        let sep = if filters.is_empty() { "" } else { "?" };
        format!("/staff/events.{format}{sep}{filters}")
    };
    let newer = page.newer.map(|after| filter.with_paging("after", after));
    let older = page
        .older
        .map(|before| filter.with_paging("before", before));
    let newest = (page.newer.is_some()).then(|| {
        let sep = if filters.is_empty() { "" } else { "?" };
        format!("/staff/events{sep}{filters}")
    });
    let live_allowed = page.newer.is_none();
    let top = page.events.first().map(|event| event.position);
    view! {
        <div class="actions">
            <a href=export("csv") download>"Export CSV"</a>
            <a href=export("json") download>"Export JSON"</a>
        </div>
        {live_allowed.then(|| view! { <super::browser_live::LiveEvents filter=filter.clone() top /> })}
        {if page.events.is_empty() {
            view! { <p data-testid="no-events">"No event matches these filters."</p> }.into_any()
        } else {
            view! { <EventTable events=page.events label="Events" /> }.into_any()
        }}
        <nav class="pager" aria-label="Event pages">
            {newest.map(|href| view! { <A href=href>"Newest"</A> })}
            {newer.map(|href| view! { <A href=href>"Newer events"</A> })}
            {older.map(|href| view! { <A href=href>"Older events"</A> })}
        </nav>
    }
}
