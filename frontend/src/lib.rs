//! The browser half of Ledgerline: takes over the server-rendered page.
//!
//! cargo-leptos compiles this crate to WASM; the server's HTML loads it and
//! calls [`hydrate`], which attaches the reactive app to the existing DOM
//! instead of rendering it again.

use wasm_bindgen::prelude::wasm_bindgen;

#[wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(app::App);
}
