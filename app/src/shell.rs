//! The HTML document around every page, and the routes of the app.

use leptos::prelude::*;
use leptos_meta::{MetaTags, Stylesheet, Title, provide_meta_context};
use leptos_router::{
    SsrMode, StaticSegment,
    components::{Route, Router, Routes},
};

use crate::home::HomePage;

/// The document the server sends: head, hydration scripts and the app.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <AutoReload options=options.clone() />
                <HydrationScripts options />
                <MetaTags />
            </head>
            <body>
                <App />
            </body>
        </html>
    }
}

/// The root component: metadata, the stylesheet and the router.
#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    // Effects only run in the browser, so this marks the moment the WASM has
    // taken over the server-rendered page (tests wait for it).
    let hydrated = RwSignal::new(false);
    Effect::new(move || hydrated.set(true));

    view! {
        <Stylesheet id="leptos" href="/pkg/ledgerline.css" />
        <Title text="Ledgerline" />
        <Router>
            <header class="masthead">
                <a class="brand" href="/">"Ledgerline"</a>
            </header>
            <main data-hydrated=move || hydrated.get().then_some("true")>
                <Routes fallback=|| view! { <NotFound /> }>
                    // Rendered whole before it is sent, so that it reads right without
                    // JavaScript (streamed fragments need a script to be put in place).
                    <Route path=StaticSegment("") view=HomePage ssr=SsrMode::Async />
                </Routes>
            </main>
        </Router>
    }
}

#[component]
fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        response.set_status(axum::http::StatusCode::NOT_FOUND);
    }

    view! {
        <section class="card">
            <h1>"Page not found"</h1>
            <p>"There is no page at this address. " <a href="/">"Go to the home page"</a> "."</p>
        </section>
    }
}
