//! Answering a `query`: the matching history, streamed in `rebuild`
//! messages of up to 1,000 events (and at most one frame's worth of bytes),
//! then one `rebuild_complete`.
//!
//! History is read in pages, never the whole answer at once, and each page
//! is sent before the one after the prefetched one is read: a slow client
//! slows its query down, and memory stays flat. A query for one key reads
//! that key's events through the `(key, value)` index; any other query
//! reads the log by position.

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use axum::extract::ws::Message;
use sqlx::PgPool;
use tokio::sync::{OwnedSemaphorePermit, mpsc};

use crate::{
    protocol::{
        ConsistencyValue, ErrorCode, ErrorMessage, EventRecord, Query, QueryStart, RebuildComplete,
        ServerMessage,
    },
    store::{
        self,
        events::{KeyPage, Page},
    },
};

const BATCH: i64 = 1000;

/// What a query may hold while it runs: its place among the connection's
/// queries (given back when it ends) and among the bus's.
pub struct QuerySlot {
    per_connection: Arc<AtomicUsize>,
    /// Held, never read: dropping it frees the bus-wide place.
    _global: OwnedSemaphorePermit,
}

impl QuerySlot {
    /// `per_connection` has already been counted up for this query.
    pub fn new(per_connection: Arc<AtomicUsize>, global: OwnedSemaphorePermit) -> Self {
        Self {
            per_connection,
            _global: global,
        }
    }
}

impl Drop for QuerySlot {
    fn drop(&mut self) {
        self.per_connection.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Streams the answer to `frames`; `max_frame_bytes` bounds each batch.
pub async fn answer(
    pool: PgPool,
    head: i64,
    query: Query,
    frames: mpsc::Sender<Message>,
    max_frame_bytes: usize,
    slot: QuerySlot,
) {
    let request_id = query.request_id.clone();
    let mut out = Batcher {
        request_id: &query.request_id,
        frames: &frames,
        max_bytes: max_frame_bytes,
        frame: Vec::new(),
        events: 0,
        count: 0,
        gone: false,
    };
    let streamed = match &query.key {
        Some(key) => stream_key(&pool, head, &query, key, &mut out).await,
        None => stream_log(&pool, head, &query, &mut out).await,
    };
    let last_position = match streamed {
        Ok(last_position) => last_position,
        Err(error) => {
            tracing::warn!(%error, request_id, "a query failed");
            let error = ErrorMessage {
                request_id: Some(request_id),
                code: ErrorCode::Unavailable,
                message: "the bus could not read its log; the query ended early, ask again".into(),
            };
            // The place is free before the client hears of the end, so a
            // query it sends on hearing it is not refused.
            drop(slot);
            let _ = frames
                .send(Message::text(ServerMessage::Error(&error).to_json()))
                .await;
            return;
        }
    };
    if !out.flush().await {
        return;
    }
    let complete = RebuildComplete {
        request_id: query.request_id.clone(),
        count: out.count,
        last_position,
    };
    drop(slot);
    let _ = frames
        .send(Message::text(
            ServerMessage::RebuildComplete(&complete).to_json(),
        ))
        .await;
}

/// A query over the log by position. Returns `last_position`: the head, or
/// the last position sent when the limit cut the answer short (so that
/// `after_position` pages on from it).
async fn stream_log(
    pool: &PgPool,
    head: i64,
    query: &Query,
    out: &mut Batcher<'_>,
) -> Result<i64, store::StoreError> {
    let after = match query.start {
        QueryStart::AfterPosition(position) => position,
        QueryStart::Since(None) => 0,
        QueryStart::Since(Some(at)) => {
            match store::events::first_position_since(pool, at, head).await? {
                Some(first) => first - 1,
                None => head,
            }
        }
    };
    let mut remaining = query.limit.unwrap_or(i64::MAX);
    let mut cut_at = None;
    let read = |after: i64, remaining: i64| {
        let pool = pool.clone();
        let types = query.event_types.clone();
        async move {
            let page = Page {
                after,
                through: head,
                types: &types,
                limit: remaining.min(BATCH),
            };
            let mut db = pool.acquire().await?;
            store::events::read_page(&mut db, &page).await
        }
    };

    let mut next = (remaining > 0 && after < head).then(|| tokio::spawn(read(after, remaining)));
    while let Some(reading) = next.take() {
        let page = reading.await.map_err(|error| {
            store::StoreError::Database(sqlx::Error::Protocol(format!(
                "the page reader failed: {error}"
            )))
        })??;
        remaining -= page.events.len() as i64;
        if remaining == 0 && page.covered_through < head {
            cut_at = page.events.last().map(|event| event.position);
        }
        if remaining > 0 && page.covered_through < head {
            next = Some(tokio::spawn(read(page.covered_through, remaining)));
        }
        if !out.push_all(page.events).await {
            return Ok(head); // the client left
        }
    }
    Ok(cut_at.unwrap_or(head))
}

/// A query for one key, read by the `(key, value)` index.
async fn stream_key(
    pool: &PgPool,
    head: i64,
    query: &Query,
    key: &str,
    out: &mut Batcher<'_>,
) -> Result<i64, store::StoreError> {
    let (mut after_value, since) = match query.start {
        QueryStart::AfterPosition(position) => (
            store::events::key_value_at(pool, key, position.min(head)).await?,
            None,
        ),
        QueryStart::Since(since) => (-1, since),
    };
    let mut remaining = query.limit.unwrap_or(i64::MAX);
    while remaining > 0 {
        let limit = remaining.min(BATCH);
        let events = store::events::read_key_page(
            pool,
            &KeyPage {
                key,
                types: &query.event_types,
                after_value,
                since,
                through: head,
                limit,
            },
        )
        .await?;
        let read = events.len() as i64;
        let last = events.last().map(|event| match event.consistency.value {
            ConsistencyValue::Explicit(value) => (event.position, value),
            ConsistencyValue::Implicit => unreachable!("stored events have values"),
        });
        remaining -= read;
        if !out.push_all(events).await {
            return Ok(head);
        }
        match last {
            Some((position, value)) if read == limit => {
                if remaining == 0 {
                    return Ok(position);
                }
                after_value = value;
            }
            _ => break,
        }
    }
    Ok(head)
}

/// Gathers events into `rebuild` frames of at most [`BATCH`] events and
/// about `max_bytes` bytes, serialising each event once, straight into the
/// frame.
struct Batcher<'a> {
    request_id: &'a str,
    frames: &'a mpsc::Sender<Message>,
    max_bytes: usize,
    /// The frame being filled: its head, then the events so far.
    frame: Vec<u8>,
    events: usize,
    count: u64,
    /// The client left: nothing more is sent.
    gone: bool,
}

/// An upper bound of an event's size as JSON beyond its data, key and
/// type: ids, time, numbers and field names.
const EVENT_OVERHEAD: usize = 400;

impl Batcher<'_> {
    fn start_frame(&mut self) {
        self.frame.clear();
        self.frame.reserve(self.max_bytes.min(1 << 18));
        self.frame
            .extend_from_slice(b"{\"message_type\":\"rebuild\",\"request_id\":");
        serde_json::to_writer(&mut self.frame, self.request_id).expect("a string serialises");
        self.frame.extend_from_slice(b",\"events\":[");
        self.events = 0;
    }

    /// False when the client has left.
    async fn push_all(&mut self, events: Vec<EventRecord>) -> bool {
        for event in events {
            // Keys, types and publishers may need escaping: counted twice.
            let publisher = event.published_by.as_deref().map_or(0, str::len);
            let size = event.data.get().len()
                + 2 * (event.consistency.key.len() + event.event_type.len() + publisher)
                + EVENT_OVERHEAD;
            let full = self.events as i64 >= BATCH || self.frame.len() + size + 2 > self.max_bytes;
            if full && self.events > 0 && !self.flush().await {
                return false;
            }
            if self.events == 0 {
                self.start_frame();
            } else {
                self.frame.push(b',');
            }
            serde_json::to_writer(&mut self.frame, &event).expect("events serialise");
            self.events += 1;
            self.count += 1;
        }
        !self.gone
    }

    /// Sends what is gathered; false when the client has left.
    async fn flush(&mut self) -> bool {
        if self.gone {
            return false;
        }
        if self.events == 0 {
            return true;
        }
        self.frame.extend_from_slice(b"]}");
        let frame = String::from_utf8(std::mem::take(&mut self.frame)).expect("JSON is UTF-8");
        self.events = 0;
        if self.frames.send(Message::text(frame)).await.is_err() {
            self.gone = true;
        }
        !self.gone
    }
}
