//! One unit of work (a correlation id) as a timeline: every event it
//! produced in log order, with the time from one step to the next. For a
//! transfer: pending, then accepted (or rejected), debit and credit.

use leptos::prelude::*;
use leptos_router::{components::A, hooks::use_params_map};
use serde::{Deserialize, Serialize};

use super::{StaffHeader, StaffOnly, Time, key_href};
use crate::{error::AppError, pages::PageError};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceStep {
    pub position: i64,
    pub event_type: String,
    pub key: String,
    pub value: i64,
    pub recorded_at: String,
    pub summary: String,
    pub since_previous_ms: Option<i64>,
    pub since_first_ms: i64,
    #[serde(default)]
    pub published_by: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trace {
    pub correlation_id: String,
    pub events: Vec<TraceStep>,
}

#[server(endpoint = "staff_trace")]
pub async fn staff_trace(correlation: String) -> Result<Trace, AppError> {
    let user = super::staff_user().await?;
    let id = uuid::Uuid::parse_str(correlation.trim()).map_err(|_| AppError::NotFound)?;
    super::read_as(&user, &format!("/correlations/{id}")).await
}

#[component]
pub fn TracePage() -> impl IntoView {
    let params = use_params_map();
    let id = Memo::new(move |_| params.read().get("id").unwrap_or_default());
    let trace = Resource::new(move || id.get(), staff_trace);
    view! {
        <StaffOnly>
            <StaffHeader title="Correlation trace" />
            <Suspense fallback=|| view! { <p>"Loading the trace…"</p> }>
                {move || Suspend::new(async move {
                    match trace.await {
                        Ok(trace) => view! { <Timeline trace /> }.into_any(),
                        Err(error) => view! { <PageError error /> }.into_any(),
                    }
                })}
            </Suspense>
        </StaffOnly>
    }
}

/// Milliseconds as people read a delay.
fn delay(ms: i64) -> String {
    if ms < 1_000 {
        format!("+{ms} ms")
    } else {
        format!("+{}.{:03} s", ms / 1_000, ms % 1_000)
    }
}

#[component]
fn Timeline(trace: Trace) -> impl IntoView {
    let total = trace
        .events
        .last()
        .map(|step| step.since_first_ms)
        .unwrap_or(0);
    let steps = trace.events.len();
    view! {
        <section class="card" aria-labelledby="trace-title">
            <h2 id="trace-title">
                "Correlation " <span class="mono">{trace.correlation_id.clone()}</span>
            </h2>
            <p data-testid="trace-summary">
                {format!("{steps} steps over {}.", delay(total).trim_start_matches('+'))}
            </p>
            <ol class="timeline" data-testid="trace">
                {trace
                    .events
                    .into_iter()
                    .map(|step| {
                        let gap = step
                            .since_previous_ms
                            .map(|ms| format!("{} after the previous step", delay(ms)))
                            .unwrap_or_else(|| "the first step".to_owned());
                        view! {
                            <li data-testid="trace-step">
                                <p class="step-head">
                                    <A href=format!("/staff/events/{}", step.position)>
                                        <strong>{step.event_type}</strong>
                                    </A>
                                    " on "
                                    <A href=key_href(&step.key)>{step.key}</A>
                                    " #"
                                    {step.value}
                                </p>
                                <p class="muted">
                                    <Time at=step.recorded_at /> " · " {gap}
                                </p>
                                <p>{step.summary}</p>
                                <p class="muted" data-testid="published-by">
                                    {match step.published_by {
                                        Some(by) => format!("published by {by}"),
                                        None => "publisher not recorded".to_owned(),
                                    }}
                                </p>
                            </li>
                        }
                    })
                    .collect_view()}
            </ol>
        </section>
    }
}
