//! The system status panel: proves the whole path from a browser through a
//! server function to Postgres, with or without JavaScript.
//!
//! "Check the database" records a check in `web.status_checks` and shows what
//! Postgres answered. Without WASM the button is a plain form post: the server
//! function runs, redirects back, and the server-rendered page shows the check.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::AppError;

/// One recorded status check, as Postgres answered it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusCheck {
    /// The check's number in `web.status_checks`.
    pub number: i64,
    /// What `SELECT version()` answered, e.g. `PostgreSQL 15.19 on x86_64…`.
    pub postgres_version: String,
    /// The version of the newest migration applied to the database.
    pub schema_version: i64,
    /// When Postgres recorded the check (RFC 3339, UTC, seconds).
    pub checked_at: String,
}

/// The newest recorded check, or `None` when there is none yet.
#[server(endpoint = "latest_status_check")]
pub async fn latest_status_check() -> Result<Option<StatusCheck>, AppError> {
    let pool = crate::server::state::pool()?;
    Ok(sqlx::query_as::<_, StatusCheckRow>(
        "SELECT id, postgres_version, schema_version, checked_at
           FROM web.status_checks ORDER BY id DESC LIMIT 1",
    )
    .fetch_optional(&pool)
    .await?
    .map(StatusCheck::from))
}

/// Asks Postgres for its version and schema version and records the answer.
#[server(endpoint = "record_status_check")]
pub async fn record_status_check() -> Result<StatusCheck, AppError> {
    let pool = crate::server::state::pool()?;
    let row = sqlx::query_as::<_, StatusCheckRow>(
        "INSERT INTO web.status_checks (postgres_version, schema_version)
         SELECT version(), (SELECT coalesce(max(version), 0) FROM _sqlx_migrations WHERE success)
         RETURNING id, postgres_version, schema_version, checked_at",
    )
    .fetch_one(&pool)
    .await?;
    Ok(row.into())
}

#[cfg(feature = "ssr")]
#[derive(sqlx::FromRow)]
struct StatusCheckRow {
    id: i64,
    postgres_version: String,
    schema_version: i64,
    checked_at: chrono::DateTime<chrono::Utc>,
}

#[cfg(feature = "ssr")]
impl From<StatusCheckRow> for StatusCheck {
    fn from(row: StatusCheckRow) -> Self {
        Self {
            number: row.id,
            postgres_version: row.postgres_version,
            schema_version: row.schema_version,
            checked_at: row
                .checked_at
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        }
    }
}

/// The panel on the home page.
#[component]
pub fn SystemStatus() -> impl IntoView {
    let record = ServerAction::<RecordStatusCheck>::new();
    // Refetched after every recorded check, so the panel shows what the
    // database holds rather than what the button returned.
    let latest = Resource::new(move || record.version().get(), |_| latest_status_check());

    view! {
        <section class="card status" aria-labelledby="status-title">
            <h2 id="status-title">"System status"</h2>
            <Suspense fallback=|| view! { <p>"Asking the database…"</p> }>
                {move || Suspend::new(async move {
                    match latest.await {
                        Ok(Some(check)) => view! { <StatusCheckDetails check /> }.into_any(),
                        Ok(None) => {
                            view! { <p data-testid="no-check">"No check recorded yet."</p> }
                                .into_any()
                        }
                        Err(error) => {
                            view! { <p class="error" role="alert">{error.to_string()}</p> }
                                .into_any()
                        }
                    }
                })}
            </Suspense>
            <ActionForm action=record>
                <button type="submit" data-testid="check-database">
                    "Check the database"
                </button>
            </ActionForm>
            {move || {
                record
                    .value()
                    .get()
                    .and_then(Result::err)
                    .map(|error| view! { <p class="error" role="alert">{error.to_string()}</p> })
            }}
        </section>
    }
}

#[component]
fn StatusCheckDetails(check: StatusCheck) -> impl IntoView {
    view! {
        <dl class="status-check" data-testid="status-check">
            <dt>"Check"</dt>
            <dd data-testid="check-number">{check.number}</dd>
            <dt>"Database"</dt>
            <dd data-testid="postgres-version">{check.postgres_version}</dd>
            <dt>"Schema version"</dt>
            <dd data-testid="schema-version">{check.schema_version}</dd>
            <dt>"Checked at"</dt>
            <dd>
                <time datetime=check.checked_at.clone()>{check.checked_at.clone()}</time>
            </dd>
        </dl>
    }
}
