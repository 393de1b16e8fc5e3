//! The system page's server functions: what it shows (from the bus's
//! staff endpoints and the audit), and replaying or skipping a parked
//! event, recorded before it is asked for and completed with its outcome.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::AppError;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionRow {
    pub client_type: String,
    pub instances: i64,
    pub unacknowledged: i64,
    /// Seconds since the oldest unacknowledged event was stored.
    pub oldest_age_seconds: Option<i64>,
    pub parked: i64,
    pub blocked: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParkedRow {
    pub client_type: String,
    pub position: i64,
    pub event_type: String,
    pub consistency_key: String,
    pub deliveries: i64,
    pub reason: String,
    pub parked_at: String,
    pub blocked_count: i64,
    pub blocked_positions: Vec<i64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRow {
    pub staff: String,
    pub action: String,
    pub subject: String,
    pub note: String,
    pub outcome: String,
    pub at: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SystemView {
    pub subscriptions: Vec<SubscriptionRow>,
    pub parked: Vec<ParkedRow>,
    pub audit: Vec<AuditRow>,
}

/// The newest audit entries the page lists.
#[cfg(feature = "ssr")]
const AUDIT_ROWS: i64 = 50;

#[server(endpoint = "staff_system")]
pub async fn staff_system() -> Result<SystemView, AppError> {
    use crate::server::{audit, state};
    use chrono::{DateTime, Utc};
    #[derive(Deserialize)]
    struct Lag {
        client_type: String,
        instances: i64,
        unacknowledged: i64,
        oldest_unacknowledged_at: Option<DateTime<Utc>>,
        parked: i64,
        blocked: i64,
    }
    #[derive(Deserialize)]
    struct Parked {
        parked: Vec<ParkedRow>,
    }
    super::staff_user().await?;
    let bus = state::bus_staff()?;
    let unavailable = |error: crate::server::bus_staff::BusStaffError| {
        tracing::warn!(%error, "the bus's staff endpoints did not answer");
        AppError::Unavailable("the bus is not answering; please try again in a moment".to_owned())
    };
    let lags: Vec<Lag> = bus.get("/subscriptions").await.map_err(unavailable)?;
    let parked: Parked = bus.get("/parked?limit=200").await.map_err(unavailable)?;
    let now = Utc::now();
    let subscriptions = lags
        .into_iter()
        .map(|lag| SubscriptionRow {
            client_type: lag.client_type,
            instances: lag.instances,
            unacknowledged: lag.unacknowledged,
            oldest_age_seconds: lag
                .oldest_unacknowledged_at
                .map(|at| (now - at).num_seconds().max(0)),
            parked: lag.parked,
            blocked: lag.blocked,
        })
        .collect();
    let audit = audit::recent(&state::pool()?, AUDIT_ROWS)
        .await?
        .into_iter()
        .map(|entry| AuditRow {
            staff: entry.staff,
            action: entry.action,
            subject: entry.subject,
            note: entry.note,
            outcome: entry.outcome,
            at: entry.at.to_rfc3339(),
        })
        .collect();
    Ok(SystemView {
        subscriptions,
        parked: parked.parked,
        audit,
    })
}

/// A client type as the bus names them: 1 to 128 of `A-Z a-z 0-9 _ . -`,
/// and never a path step (`.`, `..`).
pub fn valid_client_type(name: &str) -> bool {
    (1..=128).contains(&name.len())
        && name != "."
        && name != ".."
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// Replays or skips a parked event on the bus. The request is recorded
/// with the staff member's name before the bus is asked, and its outcome
/// after, so no decision goes unrecorded, even one whose answer was lost.
#[server(endpoint = "staff_decide")]
pub async fn decide_parked(
    client_type: String,
    position: i64,
    decision: String,
    note: String,
) -> Result<String, AppError> {
    use crate::server::{
        audit::{self, Action},
        bus_staff::BusStaffError,
        state,
    };
    let user = super::staff_user().await?;
    if !valid_client_type(&client_type) {
        return Err(AppError::NotFound);
    }
    let action = match decision.as_str() {
        "replay" => "replay",
        "skip" => "skip",
        _ => return Err(AppError::invalid("decision", "replay or skip")),
    };
    let note = note.trim();
    if action == "skip" && note.is_empty() {
        return Err(AppError::invalid(
            "note",
            "say why this event is to be skipped",
        ));
    }
    if note.chars().count() > 400 {
        return Err(AppError::invalid("note", "at most 400 characters"));
    }
    let subject = format!("{client_type} position {position}");
    let pool = state::pool()?;
    let entry = audit::record(
        &pool,
        &Action {
            staff: &user.username,
            action,
            subject: &subject,
            note,
        },
        "asked the bus",
    )
    .await?;

    // The bus records the console's credential; the note names the person.
    let body = serde_json::json!({ "note": format!("{note} (by {})", user.username).trim() });
    #[derive(Deserialize)]
    struct Released {
        released: i64,
    }
    let answer = state::bus_staff()?
        .post::<Released>(&format!("/parked/{client_type}/{position}/{action}"), &body)
        .await;
    let (outcome, result) = match answer {
        Ok(released) => {
            let outcome = format!("released {} held events", released.released);
            let done = Ok(format!("{subject}: {action} done; {outcome}."));
            (outcome, done)
        }
        Err(BusStaffError::NotFound) => (
            "not parked any more".to_owned(),
            Err(AppError::Refused(format!(
                "{subject} is not parked any more"
            ))),
        ),
        Err(BusStaffError::Refused(message)) => (
            format!("refused: {message}"),
            Err(AppError::invalid("note", message)),
        ),
        Err(error) => {
            tracing::warn!(%error, "a staff decision did not reach the bus");
            (
                "unknown: the bus did not answer".to_owned(),
                Err(AppError::Unavailable(
                    "the bus did not answer; the event may or may not have been released, so look at the list before deciding again".to_owned(),
                )),
            )
        }
    };
    audit::finish(&pool, entry, &outcome).await?;
    result
}
