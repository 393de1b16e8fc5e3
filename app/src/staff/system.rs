//! The system page: each subscription's health (instances, events owed,
//! the oldest unacknowledged event's age, parked events), the parked
//! events with what waits behind each, replaying or skipping one (a
//! preview, then a confirmation), and the audit of what staff did.

use leptos::prelude::*;
use leptos_router::components::A;

use super::{
    StaffHeader, StaffOnly, key_href, short_time,
    system_actions::{DecideParked, ParkedRow, SystemView, staff_system},
};
use crate::{
    forms::action_error,
    pages::{FormError, PageError, encode_query_value, query_param},
};

#[component]
pub fn SystemPage() -> impl IntoView {
    let decide = ServerAction::<DecideParked>::new();
    let system = Resource::new(move || decide.version().get(), |_| staff_system());
    let review = query_param("review");
    let client_type = query_param("client_type");
    let position = query_param("position");
    view! {
        <StaffOnly>
            <StaffHeader title="System" />
            <Suspense fallback=|| view! { <p>"Asking the bus…"</p> }>
                {move || Suspend::new(async move {
                    let reviewing = (review.get(), client_type.get(), position.get());
                    match system.await {
                        Ok(system) => view! { <System system reviewing decide /> }.into_any(),
                        Err(error) => view! { <PageError error /> }.into_any(),
                    }
                })}
            </Suspense>
        </StaffOnly>
    }
}

#[component]
fn System(
    system: SystemView,
    reviewing: (String, String, String),
    decide: ServerAction<DecideParked>,
) -> impl IntoView {
    let (review, client_type, position) = reviewing;
    let under_review = system
        .parked
        .iter()
        .find(|p| p.client_type == client_type && p.position.to_string() == position)
        .cloned()
        .filter(|_| review == "replay" || review == "skip");
    view! {
        <section class="card" aria-labelledby="subs-title">
            <h2 id="subs-title">"Subscriptions"</h2>
            <div class="table-scroll" tabindex="0" role="region" aria-label="Subscriptions">
                <table class="statement" data-testid="subscriptions">
                    <thead>
                        <tr>
                            <th scope="col">"Client type"</th>
                            <th scope="col" class="num">"Instances"</th>
                            <th scope="col" class="num">"Events owed"</th>
                            <th scope="col">"Oldest unacknowledged"</th>
                            <th scope="col" class="num">"Parked"</th>
                            <th scope="col" class="num">"Held behind parked"</th>
                        </tr>
                    </thead>
                    <tbody>
                        {system.subscriptions.into_iter().map(|s| {
                            let oldest = s.oldest_age_seconds.map(|age| format!("{age} s ago")).unwrap_or_else(|| "none".to_owned());
                            view! {
                                <tr>
                                    <td>{s.client_type}</td>
                                    <td class="num">{s.instances}</td>
                                    <td class="num">{s.unacknowledged}</td>
                                    <td>{oldest}</td>
                                    <td class="num">{s.parked}</td>
                                    <td class="num">{s.blocked}</td>
                                </tr>
                            }
                        }).collect_view()}
                    </tbody>
                </table>
            </div>
        </section>
        {under_review.map(|parked| view! { <Review parked decision=review.clone() decide /> })}
        <DecisionResult decide />
        <section class="card" aria-labelledby="parked-title">
            <h2 id="parked-title">"Parked events"</h2>
            {system.parked.is_empty().then(|| view! { <p data-testid="no-parked">"No event is parked."</p> })}
            <ul class="plain parked" data-testid="parked">
                {system.parked.into_iter().map(|p| {
                    let review_href = |what: &str| format!(
                        "/staff/system?review={what}&client_type={}&position={}",
                        encode_query_value(&p.client_type),
                        p.position
                    );
                    view! {
                        <li data-testid="parked-event" data-position=p.position>
                            <p>
                                <strong>{p.client_type.clone()}</strong>
                                " could not process "
                                <A href=format!("/staff/events/{}", p.position)>{format!("{} at position {}", p.event_type, p.position)}</A>
                                " on "
                                <A href=key_href(&p.consistency_key)>{p.consistency_key.clone()}</A>
                                {format!(" ({} deliveries, parked {})", p.deliveries, short_time(&p.parked_at))}
                            </p>
                            <p class="error">"Last error: " {p.reason.clone()}</p>
                            <p>{format!("{} later events of this key wait behind it.", p.blocked_count)}</p>
                            <p class="actions">
                                <A href=review_href("replay")>"Replay…"</A>
                                <A href=review_href("skip")>"Skip…"</A>
                            </p>
                        </li>
                    }
                }).collect_view()}
            </ul>
        </section>
        <section class="card" aria-labelledby="audit-title">
            <h2 id="audit-title">"What staff did"</h2>
            <div class="table-scroll" tabindex="0" role="region" aria-label="Audit">
                <table class="statement" data-testid="audit">
                    <thead>
                        <tr>
                            <th scope="col">"When (UTC)"</th>
                            <th scope="col">"Who"</th>
                            <th scope="col">"Did"</th>
                            <th scope="col">"What"</th>
                            <th scope="col">"Note"</th>
                            <th scope="col">"Outcome"</th>
                        </tr>
                    </thead>
                    <tbody>
                        {system.audit.into_iter().map(|a| view! {
                            <tr>
                                <td class="nowrap">{short_time(&a.at)}</td>
                                <td>{a.staff}</td>
                                <td>{a.action}</td>
                                <td>{a.subject}</td>
                                <td>{a.note}</td>
                                <td>{a.outcome}</td>
                            </tr>
                        }).collect_view()}
                    </tbody>
                </table>
            </div>
        </section>
    }
}

/// The preview of a replay or skip, and its confirmation.
#[component]
fn Review(
    parked: ParkedRow,
    decision: String,
    decide: ServerAction<DecideParked>,
) -> impl IntoView {
    let error = action_error(decide);
    let skip = decision == "skip";
    let effect = if skip {
        format!(
            "Skipping steps {} over event {} without processing it, then delivers the {} events held behind it, in order.",
            parked.client_type, parked.position, parked.blocked_count
        )
    } else {
        format!(
            "Replaying delivers event {} to {} again, first, then the {} events held behind it, in order.",
            parked.position, parked.client_type, parked.blocked_count
        )
    };
    let held: Vec<String> = parked
        .blocked_positions
        .iter()
        .take(20)
        .map(i64::to_string)
        .collect();
    view! {
        <section class="card" aria-labelledby="review-title" data-testid="decision-review">
            <h2 id="review-title">{if skip { "Skip this parked event?" } else { "Replay this parked event?" }}</h2>
            <p>{effect}</p>
            {(!held.is_empty()).then(|| view! { <p class="muted">"Held behind it: positions " {held.join(", ")} {(parked.blocked_count > 20).then_some(", …")}</p> })}
            <ActionForm action=decide>
                <input type="hidden" name="client_type" value=parked.client_type.clone() />
                <input type="hidden" name="position" value=parked.position />
                <input type="hidden" name="decision" value=decision.clone() />
                <div class="field">
                    <label for="decision-note">{if skip { "Why it is skipped (required)" } else { "Note (optional)" }}</label>
                    <input id="decision-note" name="note" type="text" required=skip maxlength="400"
                        aria-invalid=move || error.get().and_then(|e| e.for_field("note")).is_some().then_some("true")
                        aria-describedby="decision-note-error" />
                    <p class="field-error" id="decision-note-error">{move || error.get().and_then(|e| e.for_field("note"))}</p>
                </div>
                <FormError error=Signal::derive(move || error.get().and_then(|e| e.for_form())) />
                <div class="actions">
                    <button type="submit" disabled=move || decide.pending().get()>
                        {if skip { "Confirm the skip" } else { "Confirm the replay" }}
                    </button>
                    <A href="/staff/system">"Cancel"</A>
                </div>
            </ActionForm>
        </section>
    }
}

/// What the last decision did, announced.
#[component]
fn DecisionResult(decide: ServerAction<DecideParked>) -> impl IntoView {
    view! {
        <p role="status" data-testid="decision-result">
            {move || decide.value().get().and_then(Result::ok)}
        </p>
    }
}
