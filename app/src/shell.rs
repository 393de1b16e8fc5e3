//! The HTML document around every page, the layout and the routes.

use leptos::prelude::*;
use leptos_meta::{MetaTags, Stylesheet, Title, provide_meta_context};
use leptos_router::{
    ParamSegment, SsrMode, StaticSegment,
    components::{A, Route, Router, Routes},
};

use crate::{
    account::AccountPage,
    auth::{LogIn, LogOut, LoginPage, SignUp, SignupPage, UserSummary, current_user},
    home::HomePage,
    live::{LiveTick, LiveUpdates},
    overview::OverviewPage,
    pages::NotFound,
    staff::{
        browser::EventBrowserPage, event::EventPage, history::KeyHistoryPage, reports::ReportsPage,
        system::SystemPage, time_travel::TimeTravelPage, trace::TracePage,
    },
    transfer::{TransferPage, TransferStatusPage},
    transfers::TransfersPage,
};

/// The document the server sends: head, hydration scripts and the app.
/// Inline scripts carry a fresh nonce, which the page's Content Security
/// Policy names, so no other inline script can run.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    #[cfg(feature = "ssr")]
    provide_page_policy(&options);
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

#[cfg(feature = "ssr")]
fn provide_page_policy(options: &LeptosOptions) {
    use leptos::nonce::{provide_nonce, use_nonce};
    provide_nonce();
    // Under `cargo leptos watch`, the page reloads itself over a socket of
    // the watcher's.
    let reload = std::env::var_os("LEPTOS_WATCH")
        .map(|_| format!("ws://{}:{}", options.site_addr.ip(), options.reload_port));
    if let (Some(nonce), Some(response)) =
        (use_nonce(), use_context::<leptos_axum::ResponseOptions>())
        && let Ok(policy) = crate::server::protection::page_csp(&nonce, reload.as_deref()).parse()
    {
        response.insert_header(axum::http::header::CONTENT_SECURITY_POLICY, policy);
    }
}

/// The account actions' shared state: who is logged in, refetched after
/// logging in or out.
#[derive(Clone, Copy)]
pub struct Viewer(pub Resource<Result<Option<UserSummary>, crate::error::AppError>>);

/// The root component: metadata, the stylesheet, the layout and the router.
#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    // Effects only run in the browser, so this marks the moment the WASM has
    // taken over the server-rendered page (tests wait for it).
    let hydrated = RwSignal::new(false);
    Effect::new(move || hydrated.set(true));
    LiveTick::provide();
    // Logging in, signing up and logging out change who the header shows.
    let log_in = ServerAction::<LogIn>::new();
    let sign_up = ServerAction::<SignUp>::new();
    let log_out = ServerAction::<LogOut>::new();
    provide_context(log_in);
    provide_context(sign_up);
    let viewer = Viewer(Resource::new(
        move || {
            (
                log_in.version().get(),
                sign_up.version().get(),
                log_out.version().get(),
            )
        },
        |_| current_user(),
    ));
    provide_context(viewer);

    view! {
        <Stylesheet id="leptos" href="/pkg/ledgerline.css" />
        <Title text="Ledgerline" />
        <Router>
            <a class="skip-link" href="#content">"Skip to content"</a>
            <header class="masthead">
                <a class="brand" href="/">"Ledgerline"</a>
                <Transition fallback=|| ()>
                    {move || Suspend::new(async move {
                        match viewer.0.await {
                            Ok(Some(user)) => view! { <SignedInNav user log_out /> }.into_any(),
                            _ => view! {
                                <nav aria-label="Account">
                                    <A href="/login">"Log in"</A>
                                    <A href="/signup">"Open an account"</A>
                                </nav>
                            }
                            .into_any(),
                        }
                    })}
                </Transition>
            </header>
            <main id="content" tabindex="-1" data-hydrated=move || hydrated.get().then_some("true")>
                // Pages are rendered whole before they are sent, so that they
                // read right without JavaScript and can answer 404 or redirect.
                <Routes fallback=|| view! { <NotFound /> }>
                    <Route path=StaticSegment("") view=HomePage ssr=SsrMode::Async />
                    <Route path=StaticSegment("login") view=LoginPage ssr=SsrMode::Async />
                    <Route path=StaticSegment("signup") view=SignupPage ssr=SsrMode::Async />
                    <Route path=StaticSegment("accounts") view=OverviewPage ssr=SsrMode::Async />
                    <Route
                        path=(StaticSegment("accounts"), ParamSegment("id"))
                        view=AccountPage
                        ssr=SsrMode::Async
                    />
                    <Route path=StaticSegment("transfer") view=TransferPage ssr=SsrMode::Async />
                    <Route path=StaticSegment("transfers") view=TransfersPage ssr=SsrMode::Async />
                    <Route
                        path=(StaticSegment("transfers"), ParamSegment("id"))
                        view=TransferStatusPage
                        ssr=SsrMode::Async
                    />
                    <Route path=(StaticSegment("staff"), StaticSegment("events")) view=EventBrowserPage ssr=SsrMode::Async />
                    <Route
                        path=(StaticSegment("staff"), StaticSegment("events"), ParamSegment("position"))
                        view=EventPage
                        ssr=SsrMode::Async
                    />
                    <Route
                        path=(StaticSegment("staff"), StaticSegment("keys"), ParamSegment("key"))
                        view=KeyHistoryPage
                        ssr=SsrMode::Async
                    />
                    <Route
                        path=(StaticSegment("staff"), StaticSegment("traces"), ParamSegment("id"))
                        view=TracePage
                        ssr=SsrMode::Async
                    />
                    <Route path=(StaticSegment("staff"), StaticSegment("time-travel")) view=TimeTravelPage ssr=SsrMode::Async />
                    <Route path=(StaticSegment("staff"), StaticSegment("reports")) view=ReportsPage ssr=SsrMode::Async />
                    <Route path=(StaticSegment("staff"), StaticSegment("system")) view=SystemPage ssr=SsrMode::Async />
                </Routes>
            </main>
        </Router>
    }
}

#[component]
fn SignedInNav(user: UserSummary, log_out: ServerAction<LogOut>) -> impl IntoView {
    view! {
        {if user.staff {
            view! {
                <nav aria-label="Main">
                    <A href="/staff/events">"Staff console"</A>
                </nav>
            }
            .into_any()
        } else {
            view! {
                <nav aria-label="Main">
                    <A href="/accounts">"Accounts"</A>
                    <A href="/transfer">"Pay someone"</A>
                    <A href="/transfers">"Transfers"</A>
                </nav>
            }
            .into_any()
        }}
        <div class="who">
            <span class="who-name">{user.display_name}</span>
            <ActionForm action=log_out>
                <button type="submit" class="link-button">"Log out"</button>
            </ActionForm>
        </div>
        <LiveUpdates />
    }
}
