//! Ledgerline's web app, shared by the server and the browser.
//!
//! The same components render to HTML on the server (feature `ssr`) and
//! hydrate in the browser (feature `hydrate`, through the `frontend` crate).
//! Server functions live beside the components that call them; their bodies
//! only exist in the `ssr` build.
//!
//! - [`shell`]: the HTML document, the layout and the routes.
//! - [`home`]: the landing page; [`status`]: its system status panel.
//! - [`auth`]: signing up, logging in and out.
//! - [`overview`]: the person's accounts, with their loyalty [`points`];
//!   [`account`]: one account, with
//!   [`movements`] (deposits, withdrawals) and its [`statement`].
//! - [`transfer`]: paying someone, with a review step, and the transfer's
//!   live status; [`transfers`]: the list.
//! - [`live`]: the socket that makes pages update themselves.
//! - [`staff`]: the staff console: the event browser, key histories,
//!   traces, time travel, reports and the system page.
//! - [`forms`], [`pages`], [`money`], [`error`]: what the pages share.
//! - `server` (ssr only): the web server: database, the embedded bank,
//!   sessions, the services, the live hub, protections, routes.

pub mod account;
pub mod auth;
pub mod error;
pub mod forms;
pub mod home;
pub mod live;
pub mod money;
pub mod movements;
pub mod overview;
pub mod pages;
pub mod points;
pub mod shell;
pub mod staff;
pub mod statement;
pub mod status;
pub mod transfer;
pub mod transfers;

#[cfg(feature = "ssr")]
pub mod server;

pub use shell::{App, shell};
