//! `GET /accounts/{id}/statement.csv?from=&to=`: an account's statement as
//! CSV, newest first, every line of the chosen dates (read page by page
//! from the accounts service, which checks the account is the person's).

use axum::{
    extract::{Path, Query, State},
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use reqwest::Method;
use serde::Deserialize;
use tower_sessions::Session;

use super::{
    services::ServiceError,
    session,
    state::AppState,
    wire::{StatementPage, checked_date, statement_path},
};

#[derive(Deserialize)]
pub struct Dates {
    from: Option<String>,
    to: Option<String>,
}

/// Most lines one download holds.
const MAX_LINES: usize = 100_000;

pub async fn download(
    State(state): State<AppState>,
    session: Session,
    Path(account_id): Path<i64>,
    Query(dates): Query<Dates>,
) -> Response {
    let user = match session::user_of(&session, &state.services).await {
        Ok(Some(user)) => user,
        Ok(None) => {
            return (
                StatusCode::SEE_OTHER,
                [(
                    header::LOCATION,
                    format!("/login?next=/accounts/{account_id}"),
                )],
            )
                .into_response();
        }
        Err(_) => return StatusCode::SERVICE_UNAVAILABLE.into_response(),
    };
    let (from, to) = match (
        checked_date(dates.from, "from"),
        checked_date(dates.to, "to"),
    ) {
        (Ok(from), Ok(to)) => (from, to),
        (Err(message), _) | (_, Err(message)) => {
            return (StatusCode::BAD_REQUEST, format!("{message}\n")).into_response();
        }
    };

    let mut csv = csv::Writer::from_writer(Vec::new());
    let _ = csv.write_record(["date", "description", "amount", "balance", "transaction"]);
    let mut before = None;
    let mut lines = 0;
    loop {
        let path = statement_path(account_id, from.as_deref(), to.as_deref(), before, 200);
        let page: StatementPage = match state
            .services
            .accounts(Method::GET, &path, &user.call(), None::<&()>)
            .await
        {
            Ok(page) => page,
            Err(ServiceError::Api { status, .. }) if status == StatusCode::NOT_FOUND => {
                return (StatusCode::NOT_FOUND, "no such account\n").into_response();
            }
            Err(ServiceError::Api {
                status, message, ..
            }) if status.is_client_error() => {
                return (StatusCode::BAD_REQUEST, format!("{message}\n")).into_response();
            }
            Err(error) => {
                tracing::warn!(%error, "the statement could not be read for a download");
                return StatusCode::SERVICE_UNAVAILABLE.into_response();
            }
        };
        for entry in &page.entries {
            let signed = if entry.kind == "debit" {
                -entry.amount
            } else {
                entry.amount
            };
            let _ = csv.write_record([
                entry
                    .recorded_at
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                spreadsheet_safe(&entry.description),
                signed.to_string(),
                entry.balance.to_string(),
                entry
                    .transaction_id
                    .map(|id| id.to_string())
                    .unwrap_or_default(),
            ]);
        }
        lines += page.entries.len();
        match page.next_before {
            Some(next) if lines < MAX_LINES => before = Some(next),
            _ => break,
        }
    }
    let body = csv.into_inner().unwrap_or_default();
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"statement-{account_id}.csv\""),
            ),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        body,
    )
        .into_response()
}

/// A description a spreadsheet will show as text, never run as a formula.
pub(crate) fn spreadsheet_safe(text: &str) -> String {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_owned()
    }
}
