//! The web server (feature `ssr`): where the database comes from, the state
//! server functions see, and the HTTP routes besides the Leptos pages.

pub mod database;
pub mod health;
pub mod private_postgres;
pub mod routes;
pub mod state;
