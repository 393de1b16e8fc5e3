//! The event browser's live mode (with JavaScript only): while it is on,
//! the newest matching events are asked for every two seconds and put on
//! top. While the reader has scrolled the top of the list out of sight,
//! they are held back and counted, so that the rows being read do not move.

use leptos::prelude::*;

use super::{EventRow, EventTable, browser::EventFilter};

/// How often live mode asks for new events.
#[cfg(feature = "hydrate")]
const POLL: std::time::Duration = std::time::Duration::from_secs(2);

/// Whether the reader has scrolled the top of the list (where new rows
/// go, under the live switch) out of sight: then they are reading, and new
/// rows are held.
#[cfg(feature = "hydrate")]
fn reading() -> bool {
    web_sys::window()
        .and_then(|window| window.document())
        .and_then(|document| document.get_element_by_id("live-mode"))
        .is_some_and(|switch| switch.get_bounding_client_rect().top() < 0.0)
}

#[component]
pub fn LiveEvents(filter: EventFilter, top: Option<i64>) -> impl IntoView {
    // Effects run only in the browser: without WASM the switch never shows.
    let hydrated = RwSignal::new(false);
    Effect::new(move || hydrated.set(true));
    let on = RwSignal::new(false);
    let shown = RwSignal::new(Vec::<EventRow>::new());
    let held = RwSignal::new(Vec::<EventRow>::new());
    #[cfg(feature = "hydrate")]
    poll_while_on(on, shown, held, filter, top);
    #[cfg(not(feature = "hydrate"))]
    let _ = (filter, top);

    view! {
        <Show when=move || hydrated.get()>
            <div class="live-switch">
                <label class="check" for="live-mode">
                    <input
                        type="checkbox"
                        id="live-mode"
                        prop:checked=move || on.get()
                        on:change=move |ev| on.set(event_target_checked(&ev))
                    />
                    "Live: new events appear at the top"
                </label>
                <p class="muted" aria-live="polite" data-testid="live-held">
                    {move || {
                        let count = held.read().len();
                        (count > 0)
                            .then(|| format!("{count} new events held while you scroll down."))
                    }}
                </p>
                <Show when=move || !held.read().is_empty()>
                    <button type="button" class="secondary" on:click=move |_| release(shown, held)>
                        "Show them"
                    </button>
                </Show>
            </div>
        </Show>
        <Show when=move || !shown.read().is_empty()>
            {move || view! { <EventTable events=shown.get() label="New events" /> }}
        </Show>
    }
}

/// Moves the held rows on top of those shown.
fn release(shown: RwSignal<Vec<EventRow>>, held: RwSignal<Vec<EventRow>>) {
    let mut fresh = held.try_update(std::mem::take).unwrap_or_default();
    shown.update(|shown| {
        fresh.append(shown);
        *shown = fresh;
    });
}

/// While `on`, asks every [`POLL`] for the events newer than the newest
/// one known, one request at a time; shows them, or holds them while the
/// reader is scrolled down, and shows what is held once they are back up.
#[cfg(feature = "hydrate")]
fn poll_while_on(
    on: RwSignal<bool>,
    shown: RwSignal<Vec<EventRow>>,
    held: RwSignal<Vec<EventRow>>,
    filter: EventFilter,
    top: Option<i64>,
) {
    use super::browser::staff_events;
    let newest = StoredValue::new(top);
    let filter = StoredValue::new(filter);
    let asking = StoredValue::new(false);

    Effect::new(move || {
        if !on.get() {
            return;
        }
        let poll = move || {
            if !reading() {
                release(shown, held);
            }
            if asking.get_value() {
                return;
            }
            asking.set_value(true);
            leptos::task::spawn_local(async move {
                let mut ask = filter.get_value();
                ask.before.clear();
                ask.at.clear();
                ask.position.clear();
                ask.after = newest
                    .get_value()
                    .map(|p| p.to_string())
                    .unwrap_or_default();
                let answer = staff_events(ask).await;
                asking.set_value(false);
                let Ok(page) = answer else {
                    return;
                };
                // Only what is newer than anything known: an answer that
                // crossed a switch off and on again adds nothing twice.
                let known = newest.get_value().unwrap_or(0);
                let fresh: Vec<EventRow> = page
                    .events
                    .into_iter()
                    .filter(|e| e.position > known)
                    .collect();
                if fresh.is_empty() || !on.get_untracked() {
                    return;
                }
                newest.set_value(fresh.first().map(|e| e.position));
                held.update(|held| {
                    let mut fresh = fresh;
                    fresh.append(held);
                    *held = fresh;
                });
                if !reading() {
                    release(shown, held);
                }
            });
        };
        if let Ok(handle) = set_interval_with_handle(poll, POLL) {
            on_cleanup(move || handle.clear());
        }
    });
}
