//! Answering a `query`: the matching history, streamed in `rebuild` batches
//! of up to 1,000 events, then one `rebuild_complete`.
//!
//! Pages are read from the log by position (never the whole answer at
//! once), and each is sent before the next is read beyond the one already
//! prefetched: a slow client slows the query, memory stays flat.

use axum::extract::ws::Message;
use sqlx::PgPool;
use tokio::sync::mpsc;

use crate::{
    protocol::{
        ErrorCode, ErrorMessage, Query, QueryStart, Rebuild, RebuildComplete, ServerMessage,
    },
    store::{self, events::Page},
};

const BATCH: i64 = 1000;

pub async fn answer(pool: PgPool, head: i64, query: Query, frames: mpsc::Sender<Message>) {
    let request_id = query.request_id.clone();
    if let Err(error) = stream(&pool, head, &query, &frames).await {
        tracing::warn!(%error, request_id, "a query failed");
        let error = ErrorMessage {
            request_id: Some(request_id),
            code: ErrorCode::Unavailable,
            message: "the bus could not read its log; the query ended early, ask again".into(),
        };
        let _ = frames
            .send(Message::text(ServerMessage::Error(&error).to_json()))
            .await;
    }
}

async fn stream(
    pool: &PgPool,
    head: i64,
    query: &Query,
    frames: &mpsc::Sender<Message>,
) -> Result<(), store::StoreError> {
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
    let mut count: u64 = 0;
    // The last position sent, when a limit ends the answer before the head.
    let mut cut_at = None;
    let read = |after: i64, remaining: i64| {
        let pool = pool.clone();
        let types = query.event_types.clone();
        let key = query.key.clone();
        async move {
            let page = Page {
                after,
                through: head,
                types: &types,
                key: key.as_deref(),
                limit: remaining.min(BATCH),
            };
            store::events::read_page(&pool, &page).await
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
        count += page.events.len() as u64;
        if remaining == 0 && page.covered_through < head {
            cut_at = page.events.last().map(|event| event.position);
        }
        if remaining > 0 && page.covered_through < head {
            next = Some(tokio::spawn(read(page.covered_through, remaining)));
        }
        if page.events.is_empty() {
            continue;
        }
        let batch = Rebuild {
            request_id: query.request_id.clone(),
            events: page.events,
        };
        if frames
            .send(Message::text(ServerMessage::Rebuild(&batch).to_json()))
            .await
            .is_err()
        {
            return Ok(()); // the client left
        }
    }
    let complete = RebuildComplete {
        request_id: query.request_id.clone(),
        count,
        // Everything matching up to this is in the answer: the head, or
        // where the limit cut it, so that `after_position` pages on from it.
        last_position: cut_at.unwrap_or(head),
    };
    let _ = frames
        .send(Message::text(
            ServerMessage::RebuildComplete(&complete).to_json(),
        ))
        .await;
    Ok(())
}
