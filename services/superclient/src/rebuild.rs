//! Rebuilding a service's tables from the bus's history.
//!
//! The service's schema remembers how far a rebuild has read
//! (`rebuild_progress`): every event of its applied types up to that
//! position is in its tables. A rebuild queries history after it, applies
//! each batch in one transaction (skipping what live delivery applied
//! already) and moves the mark in the same transaction, so a rebuild cut
//! short resumes where it stopped. Command events are not reacted to here:
//! the bus owes the service every command it has not acknowledged, and
//! delivers them live.

use bus::client::{ClientError, QueryFrom, QueryItem, QuerySpec};

use crate::{applied, decide::DecideError, runtime::Ctx, service::Service};

/// What a rebuild read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rebuilt {
    pub events: u64,
    /// The head of the log when the query started: all is applied up to it.
    pub through: i64,
}

pub async fn rebuild<S: Service>(ctx: &Ctx<S>) -> Result<Rebuilt, DecideError> {
    let after = applied::rebuilt_through(&mut *ctx.db().acquire().await?).await?;
    if S::APPLIES.is_empty() {
        return Ok(Rebuilt {
            events: 0,
            through: after,
        });
    }
    let mut answer = ctx.publisher().query(QuerySpec {
        event_types: S::APPLIES.iter().map(|t| (*t).to_owned()).collect(),
        start: QueryFrom::AfterPosition(after),
        key: None,
        limit: None,
    })?;
    loop {
        match answer.next().await {
            Some(Ok(QueryItem::Batch(events))) => {
                let Some(last) = events.last().map(|e| e.position) else {
                    continue;
                };
                let mut tx = ctx.db().begin().await?;
                ctx.apply_all(&mut tx, &events).await?;
                applied::set_rebuilt_through(&mut tx, last).await?;
                tx.commit().await?;
                metrics::counter!("superclient_rebuilt_events_total")
                    .increment(events.len() as u64);
            }
            Some(Ok(QueryItem::Complete {
                count,
                last_position,
            })) => {
                let mut db = ctx.db().acquire().await?;
                applied::set_rebuilt_through(&mut db, last_position).await?;
                return Ok(Rebuilt {
                    events: count,
                    through: last_position,
                });
            }
            Some(Err(error)) => return Err(error.into()),
            None => return Err(ClientError::Closed.into()),
        }
    }
}
