//! The system page: each subscription's health (instances, events owed,
//! the oldest unacknowledged event's age, parked events), the parked
//! events with what waits behind each, replaying or skipping one (a
//! preview, then a confirmation), and the audit of what staff did.

use leptos::prelude::*;
use leptos_router::components::A;
use serde::{Deserialize, Serialize};

use super::{StaffHeader, key_href, short_time};
use crate::{
    error::AppError,
    forms::action_error,
    pages::{FormError, PageError, query_param},
};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionRow {
    pub client_type: String,
    #[serde(default)]
    pub instances: i64,
    pub acked_through: i64,
    pub unacknowledged: i64,
    #[serde(default)]
    pub oldest_unacknowledged_at: Option<String>,
    pub parked: i64,
    pub blocked: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParkedRow {
    pub client_type: String,
    pub position: i64,
    pub event_type: String,
    pub consistency_key: String,
    pub deliveries: i64,
    pub reason: String,
    pub parked_at: String,
    pub blocked_count: i64,
    pub blocked_positions: Vec<i64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRow {
    pub staff: String,
    pub action: String,
    pub subject: String,
    pub note: String,
    pub outcome: String,
    pub at: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SystemView {
    pub now: String,
    pub subscriptions: Vec<SubscriptionRow>,
    pub parked: Vec<ParkedRow>,
    pub audit: Vec<AuditRow>,
}

#[server(endpoint = "staff_system")]
pub async fn staff_system() -> Result<SystemView, AppError> {
    use crate::server::{audit, state};
    #[derive(Deserialize)]
    struct Parked {
        parked: Vec<ParkedRow>,
    }
    super::staff_user().await?;
    let bus = state::bus_staff()?;
    let unavailable = |error: crate::server::bus_staff::BusStaffError| {
        tracing::warn!(%error, "the bus's staff endpoints did not answer");
        AppError::Unavailable("the bus is not answering; please try again in a moment".to_owned())
    };
    let subscriptions: Vec<SubscriptionRow> =
        bus.get("/subscriptions").await.map_err(unavailable)?;
    let parked: Parked = bus.get("/parked?limit=200").await.map_err(unavailable)?;
    let audit = audit::recent(&state::pool()?, None, 50)
        .await?
        .into_iter()
        .map(|entry| AuditRow {
            staff: entry.staff,
            action: entry.action,
            subject: entry.subject,
            note: entry.note,
            outcome: entry.outcome,
            at: entry.at.to_rfc3339(),
        })
        .collect();
    Ok(SystemView {
        now: chrono::Utc::now().to_rfc3339(),
        subscriptions,
        parked: parked.parked,
        audit,
    })
}

/// Replays or skips a parked event on the bus, and records it with the
/// staff member's name. Deciding on an event no longer parked changes
/// nothing and says so.
#[server(endpoint = "staff_decide")]
pub async fn decide_parked(
    client_type: String,
    position: i64,
    decision: String,
    note: String,
) -> Result<String, AppError> {
    use crate::server::{
        audit::{self, Action},
        bus_staff::BusStaffError,
        state,
    };
    let user = super::staff_user().await?;
    let action = match decision.as_str() {
        "replay" => "replay",
        "skip" => "skip",
        _ => return Err(AppError::invalid("decision", "replay or skip")),
    };
    let note = note.trim();
    if action == "skip" && note.is_empty() {
        return Err(AppError::invalid(
            "note",
            "say why this event is to be skipped",
        ));
    }
    if note.chars().count() > 500 {
        return Err(AppError::invalid("note", "at most 500 characters"));
    }
    // The bus records the console's credential; the note names the person.
    let body = serde_json::json!({ "note": format!("{note} (by {})", user.username).trim() });
    let path = format!(
        "/parked/{}/{position}/{action}",
        crate::pages::encode_query_value(&client_type)
    );
    #[derive(Deserialize)]
    struct Released {
        released: i64,
    }
    let answer = state::bus_staff()?.post::<Released>(&path, &body).await;
    let subject = format!("{client_type} position {position}");
    let record = Action {
        staff: &user.username,
        action,
        subject: &subject,
        note,
    };
    let pool = state::pool()?;
    match answer {
        Ok(released) => {
            let outcome = format!("released {} held events", released.released);
            audit::record(&pool, &record, &outcome).await?;
            Ok(format!("{subject}: {action} done; {outcome}."))
        }
        Err(BusStaffError::NotFound) => {
            audit::record(&pool, &record, "not parked any more").await?;
            Err(AppError::Refused(format!(
                "{subject} is not parked any more"
            )))
        }
        Err(BusStaffError::Refused(message)) => Err(AppError::invalid("note", message)),
        Err(error) => {
            tracing::warn!(%error, "a staff decision did not reach the bus");
            Err(AppError::Unavailable(
                "the bus did not answer; the event may or may not have been released, so look at the list before deciding again".to_owned(),
            ))
        }
    }
}

#[component]
pub fn SystemPage() -> impl IntoView {
    let decide = ServerAction::<DecideParked>::new();
    let system = Resource::new(move || decide.version().get(), |_| staff_system());
    let review = query_param("review");
    let client_type = query_param("client_type");
    let position = query_param("position");
    view! {
        <div class="staff">
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
        </div>
    }
}

/// Age of an RFC 3339 time relative to `now`, as people read it.
#[cfg(feature = "ssr")]
fn age(now: &str, then: &str) -> String {
    use chrono::DateTime;
    match (
        DateTime::parse_from_rfc3339(now),
        DateTime::parse_from_rfc3339(then),
    ) {
        (Ok(now), Ok(then)) => format!("{} s", (now - then).num_seconds().max(0)),
        _ => String::new(),
    }
}

#[cfg(not(feature = "ssr"))]
fn age(_now: &str, then: &str) -> String {
    short_time(then)
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
    let now = system.now.clone();
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
                            let oldest = s.oldest_unacknowledged_at.as_deref().map(|t| age(&now, t)).unwrap_or_else(|| "none".to_owned());
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
                    let review_href = |what: &str| format!("/staff/system?review={what}&client_type={}&position={}", p.client_type, p.position);
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
                    <input id="decision-note" name="note" type="text" required=skip maxlength="500"
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
