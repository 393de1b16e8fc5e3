//! `GET /staff/reports/{name}.csv`: a report's data table, as the
//! reports page shows it (the events report by the same bucket), recorded
//! in the staff audit.

use axum::{
    extract::{Path, Query, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use serde_json::Value;
use tower_sessions::Session;

use super::{
    audit::{self, Action},
    staff_download::staff_of,
    state::AppState,
    statement_csv::spreadsheet_safe,
};

#[derive(Deserialize)]
pub struct Bucket {
    bucket: Option<String>,
}

/// `GET /staff/reports/{name}.csv`: a report's data table.
pub async fn report(
    State(state): State<AppState>,
    session: Session,
    headers: HeaderMap,
    Path(file): Path<String>,
    Query(bucket): Query<Bucket>,
) -> Response {
    let user = match staff_of(&session, &state, &headers, "/staff/reports").await {
        Ok(user) => user,
        Err(response) => return response,
    };
    let Some((report, part)) = file
        .strip_suffix(".csv")
        .and_then(crate::staff::reports::csv_source)
    else {
        return (StatusCode::NOT_FOUND, "no such report\n").into_response();
    };
    let path = match (report, bucket.bucket.as_deref()) {
        ("events", Some(bucket @ ("minute" | "hour"))) => {
            format!("/reports/events?bucket={bucket}")
        }
        (report, _) => format!("/reports/{report}"),
    };
    let answer: Result<Value, _> = state.services.reporting(&path, &user.call()).await;
    let Ok(answer) = answer else {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    };
    let rows = answer
        .get(part)
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let action = Action {
        staff: &user.username,
        action: "export",
        subject: &file,
        note: "",
    };
    if let Err(error) = audit::record(&state.pool, &action, &format!("{} rows", rows.len())).await {
        tracing::error!(%error, "an export could not be recorded; it was not made");
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{file}\""),
            ),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        table_csv(&rows),
    )
        .into_response()
}

/// Rows of JSON objects as CSV, with the first row's fields as columns.
fn table_csv(rows: &[Value]) -> String {
    let Some(columns) = rows
        .first()
        .and_then(Value::as_object)
        .map(|first| first.keys().cloned().collect::<Vec<_>>())
    else {
        return String::new();
    };
    let mut csv = csv::Writer::from_writer(Vec::new());
    let _ = csv.write_record(&columns);
    for row in rows {
        let cells = columns.iter().map(|column| match row.get(column) {
            Some(Value::String(text)) => spreadsheet_safe(text),
            Some(Value::Null) | None => String::new(),
            Some(other) => other.to_string(),
        });
        let _ = csv.write_record(cells);
    }
    String::from_utf8_lossy(&csv.into_inner().unwrap_or_default()).into_owned()
}
