//! The reporting service: the staff console's view of the log.
//!
//! It applies every banking event but `UserCreated` (which carries a
//! password hash; its bus scope cannot read it) to tables of its own
//! (schema `reporting`): the events themselves with a summary and a search
//! vector, the accounts each concerns, running balances, transfers, users
//! (from the account events that name them) and additive totals per minute
//! and hour. Like every service's, they are a cache of the log, rebuilt
//! from it when dropped. It publishes nothing.
//!
//! # HTTP API
//!
//! Every route needs a caller token (`Authorization: Bearer …`) and a
//! staff member's user token (`X-User-Token`); a customer's is a 403.
//! Lists are paged by keyset, never by offset: `limit` is 1..=200 (50).
//! Times are RFC 3339, amounts strings with two decimals (`"30.00"`).
//! Errors are `{"error": {"code", "message"}}`; bad input is a 400.
//!
//! | route | answers |
//! |---|---|
//! | `GET /events` `?before=POS` or `?after=POS` or `?at=T` (at most one), `types=A,B`, `from`, `to`, `key`, `correlation`, `account`, `min_amount`, `max_amount`, `q`, `limit` | `{events: [EventRow], newer, older}`, newest first; `older` is the next `before`, `newer` the next `after` (null at either end) |
//! | `GET /events/{position}` | `{event, data, cause, caused}`: the payload, the event that caused it, those it caused (≤ 100) |
//! | `GET /events/{position}/tree` | `{root: Node}`, `Node = {event, children}`: the causation tree it belongs to |
//! | `GET /keys/{key}/events?after_value=V&limit=` | `{key, events: [EventRow + balance_after], next_after_value}`, in value order; `balance_after` is an `acc-N` account's balance after the event (`"0.00"` at its `AccountCreated`), null for other keys |
//! | `GET /correlations/{uuid}` | `{correlation_id, events: [EventRow + since_previous_ms, since_first_ms]}`, position order, ≤ 1000 |
//! | `GET /as-of?at=T` | `{at, money_held, accounts, users, events, deposits, withdrawals}` from the events recorded at or before `T` |
//! | `GET /accounts/{id}/as-of?at=T&before_value=V&limit=` | `{account_id, username, opened_at, balance, version, lines, next_before_value}` |
//! | `GET /diff?from=T1&to=T2` | `{from, to, by_type, accounts}`: the totals of the events recorded before `T1` and before `T2`, the events per type in `[T1, T2)`, and the (at most 100) accounts whose balance changed most in it |
//! | `GET /reports/events?bucket=minute\|hour&from&to` | `{bucket, rows: [{start, event_type, events}]}` |
//! | `GET /reports/transfers?from&to` | `{rows: [{hour, requested, accepted, rejected, volume}]}` |
//! | `GET /reports/rejections` | `{rows: [{reason, transfers, amount}]}` |
//! | `GET /reports/cash?bucket=hour\|day&from&to` | `{rows: [{start, deposits, deposit_count, withdrawals, withdrawal_count}]}` |
//! | `GET /reports/balances` | `{bands: [{label, lower, upper, accounts, total}], largest: [{account_id, username, balance}]}` |
//! | `GET /reports/totals` | `{rows: [{event_type, events, amount}]}` since the beginning |
//! | `GET /freshness` | `{applied_position, applied_at}`: the newest event applied |
//!
//! An `EventRow` is `{position, event_id, event_type, key, value,
//! correlation_id, causation_id, recorded_at, amount, summary,
//! published_by}`; `summary` is a short text of the payload (at most 120
//! characters); `published_by` is the credential and connection that
//! published it, as the bus recorded (`accounts@127.0.0.1:53122`, null for
//! events stored before the bus recorded it); `amount` is
//! null but for money and transfer events (a decision shows its
//! transfer's amount).
//!
//! Paging `/events`: `before=P` is the page of positions below `P`;
//! `after=P` the `limit` positions just above `P`, still newest first;
//! `at=T` the page starting at the newest event recorded at or before `T`
//! (by time, then position), so seeking to position `N` is `before=N+1`.
//! `from` is inclusive, `to` exclusive. An empty page past either end
//! still points back (`newer: 0` before the first event). Reports' ranges
//! are of UTC buckets whose start is in `[from, to)`, `from` taken back to
//! its bucket's start; empty buckets are left out; the events report
//! refuses a range of more than 2,000 rows.
//!
//! # Causation
//!
//! What a request publishes has no cause (a deposit, a withdrawal, a
//! `PendingTransaction`, the sign-up's `AccountCreationRequest`). What a
//! service publishes in reaction to an event names that event as its
//! cause and carries its correlation id (`superclient::origin`): the
//! accounts service's `AccountCreated` is caused by the
//! `AccountCreationRequest`, and a transfer's `AcceptedTransaction`,
//! `ConfirmedDebit` and `ConfirmedCredit` (or its `RejectedTransaction`)
//! by its `PendingTransaction`. So a transfer's tree is the pending event
//! (naming who asked and the source account) with the decision's events
//! as its children.
//!
//! # Modules
//!
//! - [`apply`]: an event into the tables; [`summary`]: its one line.
//! - [`store`]: the queries, whose SQL the tests reuse to check plans.
//! - [`params`]: query parameters, checked; [`views`]: the JSON answers.
//! - `routes`: the HTTP API.

pub mod apply;
pub mod params;
mod routes;
pub mod store;
pub mod summary;
pub mod views;

use sqlx::PgConnection;
use superclient::{EventRecord, HandlerError, Service};

/// Every event type the service applies: all banking events but `UserCreated`.
pub const EVENT_TYPES: &[&str] = events::BANKING_TYPES;

/// The reporting service.
pub struct Reporting;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();

impl Service for Reporting {
    fn name(&self) -> &'static str {
        "reporting"
    }
    fn default_port(&self) -> u16 {
        8085
    }
    fn applies(&self) -> &'static [&'static str] {
        EVENT_TYPES
    }

    fn migrator(&self) -> &'static sqlx::migrate::Migrator {
        &MIGRATOR
    }

    async fn apply(&self, db: &mut PgConnection, event: &EventRecord) -> Result<(), HandlerError> {
        apply::apply_all(db, &[event]).await
    }

    async fn apply_all(
        &self,
        db: &mut PgConnection,
        events: &[&EventRecord],
    ) -> Result<(), HandlerError> {
        apply::apply_all(db, events).await
    }

    fn routes(&self) -> axum::Router<superclient::Ctx<Self>> {
        routes::router()
    }
}
