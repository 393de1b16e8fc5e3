//! Live updates in the browser: a socket to `/live` while someone is
//! logged in. Each note from the server ("account 7 changed") moves
//! [`LiveTick`] on, and the pages' resources that read it fetch again, so
//! balances, statements and transfer statuses change without a reload.
//!
//! The server sends a heartbeat every 15 seconds; a socket silent for 40
//! is taken for dead. After a drop the browser reconnects with back-off
//! (0.5 s doubling to 10 s), and every (re)connect moves the tick too, so
//! the page catches up on whatever it missed meanwhile.

use leptos::prelude::*;

/// Moves on whenever something of the logged-in person may have changed.
#[derive(Clone, Copy)]
pub struct LiveTick(pub RwSignal<u64>);

impl LiveTick {
    pub fn provide() -> Self {
        let tick = Self(RwSignal::new(0));
        provide_context(tick);
        tick
    }

    /// The tick, for a resource's source: reading it subscribes.
    pub fn get() -> u64 {
        use_context::<Self>().map_or(0, |tick| tick.0.get())
    }
}

/// Keeps the socket open while it is on the page (the signed-in header).
#[component]
pub fn LiveUpdates() -> impl IntoView {
    #[cfg(feature = "hydrate")]
    {
        let tick = expect_context::<LiveTick>();
        Effect::new(move |_| browser::start(tick.0));
        on_cleanup(browser::stop);
    }
}

#[cfg(feature = "hydrate")]
mod browser {
    use std::{cell::RefCell, rc::Rc};

    use leptos::prelude::*;
    use wasm_bindgen::{JsCast, closure::Closure};
    use web_sys::{MessageEvent, WebSocket};

    /// Silence after which a socket is taken for dead.
    const SILENCE_MS: f64 = 40_000.0;
    const MAX_BACKOFF_MS: u32 = 10_000;

    struct Live {
        /// Moves on with every start and stop: events of an older
        /// connection's socket are ignored.
        generation: u64,
        socket: Option<WebSocket>,
        attempts: u32,
        last_heard: f64,
        running: bool,
        watchdog: Option<i32>,
    }

    thread_local! {
        static LIVE: Rc<RefCell<Live>> = Rc::new(RefCell::new(Live {
            generation: 0,
            socket: None,
            attempts: 0,
            last_heard: 0.0,
            running: false,
            watchdog: None,
        }));
    }

    fn now() -> f64 {
        js_sys::Date::now()
    }

    pub fn start(tick: RwSignal<u64>) {
        let live = LIVE.with(Rc::clone);
        {
            let mut state = live.borrow_mut();
            if state.running {
                return;
            }
            state.running = true;
            state.generation += 1;
        }
        connect(&live, tick);
        let watchdog = Closure::<dyn FnMut()>::new({
            let live = live.clone();
            move || {
                let state = live.borrow();
                if let Some(socket) = &state.socket
                    && now() - state.last_heard > SILENCE_MS
                {
                    // onclose reconnects.
                    let _ = socket.close();
                }
            }
        });
        let id = window()
            .set_interval_with_callback_and_timeout_and_arguments_0(
                watchdog.as_ref().unchecked_ref(),
                5_000,
            )
            .ok();
        watchdog.forget();
        live.borrow_mut().watchdog = id;
    }

    pub fn stop() {
        LIVE.with(|live| {
            let mut state = live.borrow_mut();
            state.running = false;
            state.generation += 1;
            if let Some(id) = state.watchdog.take() {
                window().clear_interval_with_handle(id);
            }
            if let Some(socket) = state.socket.take() {
                let _ = socket.close();
            }
        });
    }

    fn connect(live: &Rc<RefCell<Live>>, tick: RwSignal<u64>) {
        let location = window().location();
        let scheme = match location.protocol().as_deref() {
            Ok("https:") => "wss",
            _ => "ws",
        };
        let host = location.host().unwrap_or_default();
        let generation = {
            let mut state = live.borrow_mut();
            // A new socket has its own 40 seconds to be heard from.
            state.last_heard = now();
            state.generation
        };
        let current = move |live: &Rc<RefCell<Live>>| live.borrow().generation == generation;
        let Ok(socket) = WebSocket::new(&format!("{scheme}://{host}/live")) else {
            retry(live, tick);
            return;
        };

        let on_open = Closure::<dyn FnMut()>::new({
            let live = live.clone();
            move || {
                if !current(&live) {
                    return;
                }
                let mut state = live.borrow_mut();
                state.attempts = 0;
                state.last_heard = now();
                drop(state);
                // Whatever happened while the socket was down: fetch again.
                tick.update(|t| *t += 1);
            }
        });
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new({
            let live = live.clone();
            move |message: MessageEvent| {
                if !current(&live) {
                    return;
                }
                live.borrow_mut().last_heard = now();
                let text = message.data().as_string().unwrap_or_default();
                if !text.contains("\"heartbeat\"") {
                    tick.update(|t| *t += 1);
                }
            }
        });
        let on_close = Closure::<dyn FnMut()>::new({
            let live = live.clone();
            move || {
                if !current(&live) {
                    return;
                }
                live.borrow_mut().socket = None;
                retry(&live, tick);
            }
        });
        socket.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        socket.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        socket.set_onclose(Some(on_close.as_ref().unchecked_ref()));
        // One set per connection, alive as long as its socket may call them.
        on_open.forget();
        on_message.forget();
        on_close.forget();
        live.borrow_mut().socket = Some(socket);
    }

    fn retry(live: &Rc<RefCell<Live>>, tick: RwSignal<u64>) {
        let (delay, generation) = {
            let mut state = live.borrow_mut();
            if !state.running {
                return;
            }
            state.attempts += 1;
            (
                (250u32 << state.attempts.min(6)).min(MAX_BACKOFF_MS),
                state.generation,
            )
        };
        let live = live.clone();
        set_timeout(
            move || {
                let still = {
                    let state = live.borrow();
                    state.running && state.generation == generation
                };
                if still {
                    connect(&live, tick);
                }
            },
            std::time::Duration::from_millis(delay.into()),
        );
    }
}
