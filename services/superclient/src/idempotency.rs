//! Safe retries: every state-changing request carries an `Idempotency-Key`.
//!
//! The request's event ids derive from (service, acting user, key), so the
//! bus stores its events at most once whatever happens. On top of that the
//! service keeps, per (scope, key):
//!
//! - a fingerprint of the request: the same key with another request is
//!   refused (422), never taken for the first;
//! - the events about to be published, saved (and committed) before they
//!   are sent: a retry after a crash or an uncertain answer sends exactly
//!   those again, so it can never turn into a second, different decision;
//! - the response, once there is one: a repeat gets the same status and
//!   body.
//!
//! The record is first written with the events, just before they are
//! published (or with the answer, for a request that publishes nothing):
//! a request costs one commit less than one that takes its key before
//! deciding, and nothing it decided before then was seen by anyone. Of two
//! tries that decide at once, the first to write wins; the other is told
//! the request is in progress (409), and a retry gets the winner's answer.
//! From then on the record holds the key for a lease; a retry meanwhile is
//! told the first is still in progress (409), and one after the lease takes
//! over (with a new attempt number, which fences the first off).

use std::time::Duration;

use axum::{
    Json,
    extract::FromRequestParts,
    http::{StatusCode, request::Parts},
};
use bus::client::Publish;
use serde::{Deserialize, Serialize};
use serde_json::{Value, value::RawValue};
use sha2::{Digest, Sha256};
use sqlx::{Executor, PgConnection, PgPool};
use uuid::Uuid;

use crate::{
    http::ApiError,
    origin::{CorrelationId, Origin},
};

pub const HEADER: &str = "idempotency-key";
/// How long a request holds its key before a retry may take over. Short:
/// a request whose instance died, or whose release was lost with the
/// database, holds up its retries for this long. A takeover is safe
/// whenever it comes (the attempt number fences the earlier try off, and
/// both send the same saved events under the same ids); the lease only
/// keeps two live tries from doing the same work at once.
const LEASE: Duration = Duration::from_secs(5);
/// How long a finished request's response is kept.
pub const KEPT_FOR: Duration = Duration::from_secs(24 * 60 * 60);

/// The table, in a schema of its own beside the service's: a rebuild of
/// the service's tables drops their schema, and must not forget which
/// requests were answered and which events they had saved.
fn table(service: &str) -> String {
    format!("{service}_requests.idempotency")
}

/// Creates the table.
pub async fn ensure_table(db: &mut PgConnection, service: &str) -> Result<(), sqlx::Error> {
    let table = table(service);
    db.execute(
        format!(
            "CREATE SCHEMA IF NOT EXISTS {service}_requests;
         CREATE TABLE IF NOT EXISTS {table} (
             scope        text NOT NULL,
             key          text NOT NULL,
             fingerprint  bytea NOT NULL,
             -- Which try holds the key: a takeover counts up, fencing the earlier.
             attempt      bigint NOT NULL,
             locked_until timestamptz,
             -- The events about to be published, saved before they are sent.
             events       jsonb,
             status       smallint,
             body         jsonb,
             created_at   timestamptz NOT NULL DEFAULT now(),
             PRIMARY KEY (scope, key)
         );
         CREATE INDEX IF NOT EXISTS idempotency_by_age ON {table} (created_at);"
        )
        .as_str(),
    )
    .await?;
    Ok(())
}

/// Forgets finished requests older than [`KEPT_FOR`].
pub async fn expire(db: &PgPool, service: &str) -> Result<u64, sqlx::Error> {
    let removed = sqlx::query(&format!(
        "DELETE FROM {} WHERE created_at < now() - $1::interval AND status IS NOT NULL",
        table(service)
    ))
    .bind(format!("{} seconds", KEPT_FOR.as_secs()))
    .execute(db)
    .await?
    .rows_affected();
    Ok(removed)
}

/// The `Idempotency-Key` header: 1 to 128 visible ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(pub String);

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let value = parts.headers.get(HEADER).ok_or_else(|| {
            ApiError::invalid(
                "Idempotency-Key is required: a unique value per request, sent again unchanged \
                 when the request is retried",
            )
        })?;
        let key = value
            .to_str()
            .ok()
            .filter(|key| {
                (1..=128).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic())
            })
            .ok_or_else(|| {
                ApiError::invalid("Idempotency-Key is 1 to 128 visible ASCII characters")
            })?;
        Ok(Self(key.to_owned()))
    }
}

/// Why the record of a request could not be written.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("another try of this request took it over")]
    LeaseLost,
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
}

/// What became of `begin`.
pub enum Begin {
    /// Answered before: the same status and body again.
    Repeat(StatusCode, Json<Value>),
    /// This request holds the key: go on.
    Proceed(Idempotency),
}

/// A request holding its idempotency key.
pub struct Idempotency {
    db: PgPool,
    service: &'static str,
    scope: String,
    key: String,
    fingerprint: Vec<u8>,
    /// The try that holds the record; [`NOT_RECORDED`] before the first
    /// write.
    attempt: i64,
    /// Events an earlier try saved before publishing them.
    saved: Option<Vec<Publish>>,
}

/// An event as saved before publishing: everything needed to send it again.
#[derive(Serialize, Deserialize)]
struct SavedEvent {
    event_id: Option<Uuid>,
    event_type: String,
    key: String,
    value: bus::protocol::ConsistencyValue,
    correlation_id: Option<Uuid>,
    causation_id: Option<Uuid>,
    data: Box<RawValue>,
}

impl From<&Publish> for SavedEvent {
    fn from(event: &Publish) -> Self {
        Self {
            event_id: event.event_id,
            event_type: event.event_type.clone(),
            key: event.key.clone(),
            value: event.value,
            correlation_id: event.correlation_id,
            causation_id: event.causation_id,
            data: event.data.clone(),
        }
    }
}

impl From<SavedEvent> for Publish {
    fn from(saved: SavedEvent) -> Self {
        Self {
            event_type: saved.event_type,
            key: saved.key,
            value: saved.value,
            data: saved.data,
            event_id: saved.event_id,
            correlation_id: saved.correlation_id,
            causation_id: saved.causation_id,
        }
    }
}

/// The attempt of a request with no record yet.
const NOT_RECORDED: i64 = 0;

/// The fingerprint of a request: what it asks, as a canonical JSON value
/// (object keys sorted). A secret (a password) must not be in it.
fn fingerprint(request: &Value) -> Vec<u8> {
    Sha256::digest(serde_json::to_vec(request).expect("JSON serialises")).to_vec()
}

type Row = (
    Vec<u8>,
    i64,
    bool,
    Option<Value>,
    Option<i16>,
    Option<Value>,
);

impl Idempotency {
    /// Takes the key `key` of `scope` (the acting user) for `request`:
    /// reads its record, and writes nothing for a key not seen before.
    pub async fn begin(
        db: &PgPool,
        service: &'static str,
        scope: &str,
        key: &IdempotencyKey,
        request: &Value,
    ) -> Result<Begin, ApiError> {
        let fingerprint = fingerprint(request);
        let lease = format!("{} seconds", LEASE.as_secs());
        let table = table(service);
        let row: Option<Row> = sqlx::query_as(&format!(
            "SELECT fingerprint, attempt, coalesce(locked_until > now(), false), events, status, body
               FROM {table} WHERE scope = $1 AND key = $2"
        ))
        .bind(scope)
        .bind(&key.0)
        .fetch_optional(db)
        .await?;
        let mut held = Self {
            db: db.clone(),
            service,
            scope: scope.to_owned(),
            key: key.0.clone(),
            fingerprint,
            attempt: NOT_RECORDED,
            saved: None,
        };
        let Some((stored_fingerprint, attempt, locked, events, status, body)) = row else {
            return Ok(Begin::Proceed(held));
        };
        if stored_fingerprint != held.fingerprint {
            return Err(ApiError::refused(
                "idempotency_key_reused",
                "this Idempotency-Key was used for a different request; use a new key for a new request",
            ));
        }
        if let Some(status) = status {
            let status = StatusCode::from_u16(status as u16).map_err(|_| ApiError::internal())?;
            return Ok(Begin::Repeat(status, Json(body.unwrap_or(Value::Null))));
        }
        if locked {
            return Err(in_progress());
        }
        let taken = sqlx::query(&format!(
            "UPDATE {table} SET attempt = attempt + 1, locked_until = now() + $4::interval
              WHERE scope = $1 AND key = $2 AND attempt = $3"
        ))
        .bind(scope)
        .bind(&key.0)
        .bind(attempt)
        .bind(&lease)
        .execute(db)
        .await?
        .rows_affected();
        if taken == 0 {
            return Err(in_progress());
        }
        held.attempt = attempt + 1;
        held.saved = events
            .map(serde_json::from_value::<Vec<SavedEvent>>)
            .transpose()
            .map_err(|error| {
                tracing::error!(%error, "saved events do not read back");
                ApiError::internal()
            })?
            .map(|saved| saved.into_iter().map(Publish::from).collect());
        Ok(Begin::Proceed(held))
    }

    /// The correlation, cause and ids of this request's events.
    pub fn origin(&self, correlation: CorrelationId) -> Origin {
        Origin::request(self.service, &self.scope, &self.key, correlation)
    }

    /// Events an earlier try saved and may have published.
    pub(crate) fn saved(&self) -> Option<&[Publish]> {
        self.saved.as_deref()
    }

    /// Saves (and commits) the events about to be published; the first
    /// save writes the record, and holds the key for its lease.
    pub(crate) async fn save(&mut self, events: &[Publish]) -> Result<(), RecordError> {
        let saved: Vec<SavedEvent> = events.iter().map(SavedEvent::from).collect();
        let json = serde_json::to_value(&saved).expect("events serialise");
        if self.attempt == NOT_RECORDED {
            self.record_saved(json).await?;
        } else {
            self.update("events = $4", Some(json)).await?;
        }
        self.saved = Some(events.to_vec());
        Ok(())
    }

    /// Writes the first record of the request, with the events it is
    /// about to publish and its lease; another try that wrote first wins.
    async fn record_saved(&mut self, events: Value) -> Result<(), RecordError> {
        let inserted = sqlx::query(&format!(
            "INSERT INTO {} (scope, key, fingerprint, attempt, events, locked_until)
             VALUES ($1, $2, $3, $4, $5, now() + $6::interval)
             ON CONFLICT (scope, key) DO NOTHING",
            table(self.service)
        ))
        .bind(&self.scope)
        .bind(&self.key)
        .bind(&self.fingerprint)
        .bind(NOT_RECORDED + 1)
        .bind(events)
        .bind(format!("{} seconds", LEASE.as_secs()))
        .execute(&self.db)
        .await?
        .rows_affected();
        if inserted == 0 {
            return Err(RecordError::LeaseLost);
        }
        self.attempt = NOT_RECORDED + 1;
        Ok(())
    }

    /// The saved events were certainly never stored (the bus said
    /// `inconsistent`): a new decision may take their place.
    pub(crate) async fn forget(&mut self) -> Result<(), RecordError> {
        self.update("events = NULL", None).await?;
        self.saved = None;
        Ok(())
    }

    async fn update(&self, set: &str, value: Option<Value>) -> Result<(), RecordError> {
        let updated = sqlx::query(&format!(
            "UPDATE {} SET {set} WHERE scope = $1 AND key = $2 AND attempt = $3",
            table(self.service)
        ))
        .bind(&self.scope)
        .bind(&self.key)
        .bind(self.attempt)
        .bind(value)
        .execute(&self.db)
        .await?
        .rows_affected();
        if updated == 0 {
            return Err(RecordError::LeaseLost);
        }
        Ok(())
    }

    /// Records the outcome (a repeat gets it again) and answers it. An
    /// outcome of 500 or more is not an outcome: the key is released, and
    /// a retry goes on from the events saved, if any.
    pub async fn finish(
        self,
        outcome: Result<(StatusCode, Value), ApiError>,
    ) -> Result<(StatusCode, Json<Value>), ApiError> {
        let (status, body) = match outcome {
            Ok(answer) => answer,
            Err(error) if error.status.is_server_error() => {
                self.release().await;
                return Err(error);
            }
            Err(error) => (error.status, error.body()),
        };
        if self.attempt == NOT_RECORDED {
            return self.record_answer(status, body).await;
        }
        let stored = sqlx::query(&format!(
            "UPDATE {} SET status = $4, body = $5, locked_until = NULL
              WHERE scope = $1 AND key = $2 AND attempt = $3",
            table(self.service)
        ))
        .bind(&self.scope)
        .bind(&self.key)
        .bind(self.attempt)
        .bind(status.as_u16() as i16)
        .bind(&body)
        .execute(&self.db)
        .await;
        if let Err(error) = stored {
            // The answer stands; a repeat will find the events stored and
            // answer the same from them.
            tracing::warn!(%error, "could not record a response for its idempotency key");
        }
        Ok((status, Json(body)))
    }

    /// Records the answer of a request that published nothing, as its
    /// first record. When another try recorded first, its answer is the
    /// request's (or, while it is still running, the request is in
    /// progress).
    async fn record_answer(
        self,
        status: StatusCode,
        body: Value,
    ) -> Result<(StatusCode, Json<Value>), ApiError> {
        let table = table(self.service);
        let inserted = sqlx::query(&format!(
            "INSERT INTO {table} (scope, key, fingerprint, attempt, status, body)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (scope, key) DO NOTHING"
        ))
        .bind(&self.scope)
        .bind(&self.key)
        .bind(&self.fingerprint)
        .bind(NOT_RECORDED + 1)
        .bind(status.as_u16() as i16)
        .bind(&body)
        .execute(&self.db)
        .await?
        .rows_affected();
        if inserted == 1 {
            return Ok((status, Json(body)));
        }
        let first: Option<(Option<i16>, Option<Value>)> = sqlx::query_as(&format!(
            "SELECT status, body FROM {table} WHERE scope = $1 AND key = $2"
        ))
        .bind(&self.scope)
        .bind(&self.key)
        .fetch_optional(&self.db)
        .await?;
        match first {
            Some((Some(status), body)) => {
                let status =
                    StatusCode::from_u16(status as u16).map_err(|_| ApiError::internal())?;
                Ok((status, Json(body.unwrap_or(Value::Null))))
            }
            _ => Err(in_progress()),
        }
    }

    /// Lets a retry go on at once.
    async fn release(self) {
        if self.attempt == NOT_RECORDED {
            return;
        }
        let released = sqlx::query(&format!(
            "UPDATE {} SET locked_until = NULL
              WHERE scope = $1 AND key = $2 AND attempt = $3",
            table(self.service)
        ))
        .bind(&self.scope)
        .bind(&self.key)
        .bind(self.attempt)
        .execute(&self.db)
        .await;
        if let Err(error) = released {
            tracing::warn!(%error, "could not release an idempotency key; it frees itself after its lease");
        }
    }
}

fn in_progress() -> ApiError {
    ApiError::conflict(
        "request_in_progress",
        "a request with this Idempotency-Key is still being handled; try again in a moment",
    )
}
