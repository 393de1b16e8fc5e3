//! The landing page.

use leptos::prelude::*;
use leptos_router::components::A;

use crate::status::SystemStatus;

#[component]
pub fn HomePage() -> impl IntoView {
    view! {
        <section class="hero">
            <h1>"Ledgerline"</h1>
            <p>
                "An event-sourced bank: every deposit, withdrawal and transfer is an event "
                "on one durable log, and every balance is rebuilt from it."
            </p>
            <p class="actions">
                <A href="/accounts" attr:class="button">"Your accounts"</A>
                <A href="/signup">"Open an account"</A>
            </p>
        </section>
        <SystemStatus />
    }
}
