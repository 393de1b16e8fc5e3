//! Rebuilding a service's tables from the bus's history.
//!
//! The service's schema remembers how far history has been read
//! (`rebuild_progress`): every event of its types up to that mark is in its
//! tables, or owed to the service by its subscription. Live batches move
//! the mark too, so a restart reads only what came after. A rebuild
//! queries history after the mark and applies each batch in one
//! transaction, gap-free (an event beyond its key's next value catches the
//! key up first), moving the mark in the same transaction, so a rebuild
//! cut short resumes where it stopped.
//!
//! An event that cannot be applied does not stop the rebuild: its key is
//! left where it is (its later events are not applied over it), the error
//! is logged and counted, and the mark stays before it so the next start
//! tries again. Command events are not reacted to here: the bus owes every
//! command not acknowledged and delivers it live.

use std::collections::HashSet;

use bus::{
    client::{ClientError, QueryFrom, QueryItem, QuerySpec},
    protocol::EventRecord,
};

use crate::{
    applied,
    apply::{ApplyError, Batch},
    context::Ctx,
    service::Service,
};

/// What a rebuild read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rebuilt {
    pub events: u64,
    /// The head of the log when the query started: read up to here.
    pub through: i64,
    /// Keys with an event that could not be applied.
    pub stuck: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum RebuildError {
    #[error("the bus: {0}")]
    Bus(#[from] ClientError),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
}

pub async fn rebuild<S: Service>(ctx: &Ctx<S>) -> Result<Rebuilt, RebuildError> {
    let after = applied::rebuilt_through(&mut *ctx.db().acquire().await?).await?;
    if ctx.service().applies().is_empty() {
        return Ok(Rebuilt {
            events: 0,
            through: after,
            stuck: 0,
        });
    }
    let mut answer = ctx.publisher().query(QuerySpec {
        event_types: ctx
            .service()
            .applies()
            .iter()
            .map(|t| (*t).to_owned())
            .collect(),
        start: QueryFrom::AfterPosition(after),
        key: None,
        limit: None,
    })?;
    let mut progress = Progress::default();
    loop {
        match answer.next().await {
            Some(Ok(QueryItem::Batch(events))) => {
                progress.apply(ctx, events).await?;
                metrics::counter!("superclient_rebuilt_events_total")
                    .increment(progress.last_batch);
            }
            Some(Ok(QueryItem::Complete {
                count,
                last_position,
            })) => {
                if progress.held_at.is_none() {
                    let mut db = ctx.db().acquire().await?;
                    applied::set_rebuilt_through(&mut db, last_position).await?;
                }
                return Ok(Rebuilt {
                    events: count,
                    through: last_position,
                    stuck: progress.stuck.len(),
                });
            }
            Some(Err(error)) => return Err(error.into()),
            None => return Err(ClientError::Closed.into()),
        }
    }
}

/// Where a rebuild has got to.
#[derive(Default)]
struct Progress {
    /// Keys with an event that could not be applied: their later events
    /// wait, so that none is applied over it.
    stuck: HashSet<String>,
    /// The mark stays below the first event that could not be applied.
    held_at: Option<i64>,
    last_batch: u64,
}

impl Progress {
    async fn apply<S: Service>(
        &mut self,
        ctx: &Ctx<S>,
        events: Vec<EventRecord>,
    ) -> Result<(), RebuildError> {
        self.last_batch = events.len() as u64;
        let Some(last) = events.last().map(|event| event.position) else {
            return Ok(());
        };
        let events: Vec<EventRecord> = events
            .into_iter()
            .filter(|event| !self.stuck.contains(&event.consistency.key))
            .collect();
        let mark = self.held_at.is_none().then_some(last);
        let together = ctx
            .apply_gap_free(Batch {
                events: &events,
                mark,
                ..Batch::default()
            })
            .await;
        match together {
            Ok(()) => return Ok(()),
            Err(ApplyError::Database(error)) => return Err(error.into()),
            Err(ApplyError::Bus(error)) => return Err(error.into()),
            Err(_) => {}
        }
        // One of them cannot be applied: find which, apply the others.
        for event in &events {
            if self.stuck.contains(&event.consistency.key) {
                continue;
            }
            let alone = ctx
                .apply_gap_free(Batch {
                    events: std::slice::from_ref(event),
                    ..Batch::default()
                })
                .await;
            match alone {
                Ok(()) => {}
                Err(ApplyError::Database(error)) => return Err(error.into()),
                Err(ApplyError::Bus(error)) => return Err(error.into()),
                Err(error) => {
                    tracing::error!(position = event.position, key = %event.consistency.key, %error,
                        "an event of the history cannot be applied; its key stays where it is");
                    self.stuck.insert(event.consistency.key.clone());
                    self.held_at.get_or_insert(event.position - 1);
                }
            }
        }
        if self.held_at.is_none() {
            let mut db = ctx.db().acquire().await?;
            applied::set_rebuilt_through(&mut db, last).await?;
        }
        Ok(())
    }
}
