//! The web server (feature `ssr`): where the database comes from, the bank
//! it talks to (embedded or separate), sessions, the live socket, and the
//! HTTP routes besides the Leptos pages.

pub mod audit;
pub mod bus_staff;
pub mod database;
pub mod demo;
pub mod embedded;
pub mod health;
pub mod live;
pub mod private_postgres;
pub mod protection;
pub mod routes;
pub mod services;
pub mod session;
pub mod staff_download;
pub mod staff_export;
pub mod staff_query;
pub mod staff_report_csv;
pub mod state;
pub mod statement_csv;
pub mod wire;
