//! `GET /staff/events.csv` and `/staff/events.json`: the events the
//! browser's filters select, newest first, streamed page by page as the
//! reporting service gives them. Each export is recorded in the staff
//! audit with who asked and for what before it starts, and completed with
//! how many rows it held, or where it failed.

use axum::{
    body::Body,
    extract::{RawQuery, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};
use futures_util::stream;
use tower_sessions::Session;

use super::{
    audit::{self, Action},
    services::CallFor,
    staff_download::staff_of,
    staff_query::{encode, filters_query},
    state::AppState,
    statement_csv::spreadsheet_safe,
};
use crate::staff::{EventRow, browser::EventFilter};

/// Rows read from the reporting service per request.
const PAGE: usize = 200;
/// Most rows one export holds.
const MAX_ROWS: usize = 1_000_000;

const CSV_HEADER: &str = "position,recorded_at,event_type,key,value,correlation_id,causation_id,event_id,amount,summary\n";

/// The browser's filters from a query string (`type` may repeat).
fn filter_from(query: Option<&str>) -> EventFilter {
    let mut filter = EventFilter::default();
    for (name, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        let value = value.into_owned();
        match name.as_ref() {
            "type" => filter.types.push(value),
            "from" => filter.from = value,
            "to" => filter.to = value,
            "key" => filter.key = value,
            "correlation" => filter.correlation = value,
            "account" => filter.account = value,
            "min_amount" => filter.min_amount = value,
            "max_amount" => filter.max_amount = value,
            "q" => filter.q = value,
            _ => {}
        }
    }
    filter
}

/// `GET /staff/events.csv`.
pub async fn events_csv(
    state: State<AppState>,
    session: Session,
    headers: HeaderMap,
    query: RawQuery,
) -> Response {
    events(state, session, headers, query, Format::Csv).await
}

/// `GET /staff/events.json`.
pub async fn events_json(
    state: State<AppState>,
    session: Session,
    headers: HeaderMap,
    query: RawQuery,
) -> Response {
    events(state, session, headers, query, Format::Json).await
}

async fn events(
    State(state): State<AppState>,
    session: Session,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    format: Format,
) -> Response {
    let user = match staff_of(&session, &state, &headers, "/staff/events").await {
        Ok(user) => user,
        Err(response) => return response,
    };
    let filter = filter_from(query.as_deref());
    let filters = match filters_query(&filter) {
        Ok(pairs) => encode(&pairs),
        Err(error) => return (StatusCode::BAD_REQUEST, format!("{error}\n")).into_response(),
    };
    let subject = format!(
        "events.{} {}",
        format.extension(),
        if filters.is_empty() {
            "(all)"
        } else {
            &filters
        }
    );
    let action = Action {
        staff: &user.username,
        action: "export",
        subject: &subject,
        note: "",
    };
    let entry = match audit::record(&state.pool, &action, "started").await {
        Ok(entry) => entry,
        Err(error) => {
            tracing::error!(%error, "an export could not be recorded; it was not made");
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
    };

    let pages = stream::unfold(
        Export {
            state,
            token: user.token,
            filters,
            before: None,
            rows: 0,
            format,
            done: false,
            entry,
        },
        |mut export| async move {
            let chunk = export.next_chunk().await?;
            Some((chunk, export))
        },
    );
    let (content_type, name) = match format {
        Format::Csv => ("text/csv; charset=utf-8", "events.csv"),
        Format::Json => ("application/json", "events.json"),
    };
    (
        [
            (header::CONTENT_TYPE, content_type.to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        Body::from_stream(pages),
    )
        .into_response()
}

#[derive(Clone, Copy)]
enum Format {
    Csv,
    Json,
}

impl Format {
    fn extension(self) -> &'static str {
        match self {
            Self::Csv => "csv",
            Self::Json => "json",
        }
    }
}

/// An export under way: where the next page starts.
struct Export {
    state: AppState,
    token: String,
    filters: String,
    before: Option<i64>,
    rows: usize,
    format: Format,
    done: bool,
    /// Its audit entry, completed at the end.
    entry: i64,
}

#[derive(serde::Deserialize)]
struct Page {
    events: Vec<EventRow>,
    older: Option<i64>,
}

impl Export {
    /// The next piece of the file; `None` once it is complete. A failure
    /// part way ends the stream with an error, so the download is seen to
    /// fail rather than look complete.
    async fn next_chunk(&mut self) -> Option<Result<String, std::io::Error>> {
        if self.done {
            return None;
        }
        let first = self.before.is_none() && self.rows == 0;
        let mut path = format!("/events?{}&limit={PAGE}", self.filters);
        if let Some(before) = self.before {
            path.push_str(&format!("&before={before}"));
        }
        let call = CallFor {
            user_token: Some(&self.token),
            ..CallFor::default()
        };
        let page: Page = match self.state.services.reporting(&path, &call).await {
            Ok(page) => page,
            Err(error) => {
                tracing::warn!(%error, "an export stopped part way");
                self.done = true;
                self.finish(&format!("failed after {} rows", self.rows))
                    .await;
                return Some(Err(std::io::Error::other(
                    "the reporting service stopped answering",
                )));
            }
        };
        self.rows += page.events.len();
        if page.older.is_some() && self.rows >= MAX_ROWS {
            // Cut short: the download must not look complete.
            self.done = true;
            self.finish(&format!("refused past {MAX_ROWS} rows")).await;
            return Some(Err(std::io::Error::other(
                "an export holds at most 1,000,000 rows; narrow the filters",
            )));
        }
        self.before = page.older;
        self.done = page.older.is_none();
        if self.done {
            self.finish(&format!("{} rows", self.rows)).await;
        }
        let mut chunk = String::new();
        match self.format {
            Format::Csv => {
                if first {
                    chunk.push_str(CSV_HEADER);
                }
                let mut csv = csv::Writer::from_writer(Vec::new());
                for event in &page.events {
                    let _ = csv.write_record([
                        event.position.to_string(),
                        event.recorded_at.clone(),
                        event.event_type.clone(),
                        spreadsheet_safe(&event.key),
                        event.value.to_string(),
                        event.correlation_id.clone(),
                        event.causation_id.clone().unwrap_or_default(),
                        event.event_id.clone(),
                        event.amount.map(|a| a.to_string()).unwrap_or_default(),
                        spreadsheet_safe(&event.summary),
                    ]);
                }
                chunk.push_str(&String::from_utf8_lossy(
                    &csv.into_inner().unwrap_or_default(),
                ));
            }
            Format::Json => {
                chunk.push_str(if first { "[\n" } else { "" });
                for (i, event) in page.events.iter().enumerate() {
                    if !(first && i == 0) {
                        chunk.push_str(",\n");
                    }
                    chunk.push_str(&serde_json::to_string(event).unwrap_or_default());
                }
                if self.done {
                    chunk.push_str("\n]\n");
                }
            }
        }
        Some(Ok(chunk))
    }
}

impl Export {
    async fn finish(&self, outcome: &str) {
        if let Err(error) = audit::finish(&self.state.pool, self.entry, outcome).await {
            tracing::error!(%error, outcome, "an export's outcome could not be recorded");
        }
    }
}
