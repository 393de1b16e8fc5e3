//! One event: everything about it, its full payload (with a copy button),
//! links to its key's history, its correlation's trace, the event that
//! caused it and those it caused, and the causation tree it belongs to:
//! for money on an account, where the money came from.

use leptos::prelude::*;
use leptos_router::{components::A, hooks::use_params_map};
use serde::{Deserialize, Serialize};

use super::{EventRow, StaffHeader, StaffOnly, key_href, short_time};
use crate::{error::AppError, pages::PageError};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventDetail {
    pub event: EventRow,
    /// The payload, pretty-printed.
    pub payload: String,
    pub cause: Option<EventRow>,
    pub caused: Vec<EventRow>,
    pub tree: TreeNode,
}

/// An event of a causation tree and the events it caused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreeNode {
    pub event: EventRow,
    pub children: Vec<TreeNode>,
}

#[server(endpoint = "staff_event")]
pub async fn staff_event(position: String) -> Result<EventDetail, AppError> {
    #[derive(Deserialize)]
    struct Detail {
        event: EventRow,
        data: serde_json::Value,
        cause: Option<EventRow>,
        caused: Vec<EventRow>,
    }
    #[derive(Deserialize)]
    struct Tree {
        root: TreeNode,
    }
    let user = super::staff_user().await?;
    let position = position.parse::<i64>().map_err(|_| AppError::NotFound)?;
    let (event, tree) = (
        format!("/events/{position}"),
        format!("/events/{position}/tree"),
    );
    let (detail, tree) = futures_util::try_join!(
        super::read_as::<Detail>(&user, &event),
        super::read_as::<Tree>(&user, &tree),
    )?;
    Ok(EventDetail {
        event: detail.event,
        payload: serde_json::to_string_pretty(&detail.data).unwrap_or_default(),
        cause: detail.cause,
        caused: detail.caused,
        tree: tree.root,
    })
}

#[component]
pub fn EventPage() -> impl IntoView {
    let params = use_params_map();
    let position = Memo::new(move |_| params.read().get("position").unwrap_or_default());
    let detail = Resource::new(move || position.get(), staff_event);
    view! {
        <StaffOnly>
            <StaffHeader title="Event" />
            <Suspense fallback=|| view! { <p>"Loading the event…"</p> }>
                {move || Suspend::new(async move {
                    match detail.await {
                        Ok(detail) => view! { <Detail detail /> }.into_any(),
                        Err(error) => view! { <PageError error /> }.into_any(),
                    }
                })}
            </Suspense>
        </StaffOnly>
    }
}

#[component]
fn Detail(detail: EventDetail) -> impl IntoView {
    let event = detail.event;
    let position = event.position;
    view! {
        <section class="card" aria-labelledby="event-title">
            <h2 id="event-title">{format!("{} at position {}", event.event_type, position)}</h2>
            <dl class="review" data-testid="event-facts">
                <dt>"Time (UTC)"</dt>
                <dd>{short_time(&event.recorded_at)}</dd>
                <dt>"Key and value"</dt>
                <dd>
                    <A href=key_href(&event.key)>{event.key.clone()}</A>
                    " #"
                    {event.value}
                </dd>
                <dt>"Correlation"</dt>
                <dd>
                    <A href=format!("/staff/traces/{}", event.correlation_id)>
                        <span class="mono">{event.correlation_id.clone()}</span>
                    </A>
                </dd>
                <dt>"Published by"</dt>
                <dd class="mono">{event.published_by.clone().unwrap_or_else(|| "not recorded".to_owned())}</dd>
                <dt>"Event id"</dt>
                <dd class="mono">{event.event_id.clone()}</dd>
                <dt>"Caused by"</dt>
                <dd>
                    {match detail.cause {
                        Some(cause) => view! {
                            <A href=format!("/staff/events/{}", cause.position)>
                                {format!("{} at position {}", cause.event_type, cause.position)}
                            </A>
                        }
                        .into_any(),
                        None => view! { "nothing on the log (a person's request)" }.into_any(),
                    }}
                </dd>
                <dt>"Caused"</dt>
                <dd>
                    {if detail.caused.is_empty() {
                        view! { "nothing" }.into_any()
                    } else {
                        view! {
                            <ul class="plain">
                                {detail
                                    .caused
                                    .into_iter()
                                    .map(|caused| view! {
                                        <li>
                                            <A href=format!("/staff/events/{}", caused.position)>
                                                {format!("{} at position {}", caused.event_type, caused.position)}
                                            </A>
                                        </li>
                                    })
                                    .collect_view()}
                            </ul>
                        }
                        .into_any()
                    }}
                </dd>
            </dl>
        </section>
        <section class="card" aria-labelledby="payload-title">
            <h2 id="payload-title">"Payload"</h2>
            <CopyButton text=detail.payload.clone() />
            <pre class="payload" data-testid="payload" tabindex="0">{detail.payload}</pre>
        </section>
        <section class="card" aria-labelledby="tree-title" id="origin">
            <h2 id="tree-title">"Causation tree"</h2>
            <p class="muted">
                "Where this event came from and what came of it: each event below the one that caused it. This event is marked."
            </p>
            <ul class="tree" data-testid="causation-tree">
                <Node node=detail.tree current=position />
            </ul>
        </section>
    }
}

#[component]
fn Node(node: TreeNode, current: i64) -> AnyView {
    let event = node.event;
    let here = event.position == current;
    view! {
        <li data-testid="tree-node" aria-current=here.then_some("true")>
            <A href=format!("/staff/events/{}", event.position)>
                {format!("{} #{} at {}", event.event_type, event.position, short_time(&event.recorded_at))}
            </A>
            " "
            <span class="summary">{event.summary}</span>
            {(!node.children.is_empty()).then(|| view! {
                <ul>
                    {node
                        .children
                        .into_iter()
                        .map(|child| view! { <Node node=child current /> })
                        .collect_view()}
                </ul>
            })}
        </li>
    }
    .into_any()
}

/// Copies `text` to the clipboard (with JavaScript; without it, the text
/// is there to select).
#[component]
fn CopyButton(text: String) -> impl IntoView {
    let copied = RwSignal::new(false);
    let hydrated = RwSignal::new(false);
    Effect::new(move || hydrated.set(true));
    let copy = move |_| {
        #[cfg(feature = "hydrate")]
        if let Some(window) = web_sys::window() {
            let _ = window.navigator().clipboard().write_text(&text);
            copied.set(true);
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = &text;
    };
    view! {
        <Show when=move || hydrated.get()>
            <button type="button" class="secondary" on:click=copy.clone()>
                "Copy the payload"
            </button>
            <span role="status" class="muted">
                {move || copied.get().then_some(" Copied.")}
            </span>
        </Show>
    }
}
