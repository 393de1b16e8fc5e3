//! Ledgerline's web app, shared by the server and the browser.
//!
//! The same components render to HTML on the server (feature `ssr`) and
//! hydrate in the browser (feature `hydrate`, through the `frontend` crate).
//! Server functions live beside the components that call them; their bodies
//! only exist in the `ssr` build.
//!
//! - [`shell`]: the HTML document and the router.
//! - [`home`]: the landing page.
//! - [`status`]: the system status panel and its server functions.
//! - [`error`]: the error type every server function returns.
//! - `server` (ssr only): the web server: configuration, database, routes.

pub mod error;
pub mod home;
pub mod shell;
pub mod status;

#[cfg(feature = "ssr")]
pub mod server;

pub use shell::{App, shell};
