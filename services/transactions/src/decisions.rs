//! Waiting for transfers to be decided, so that a client asks once and is
//! answered when the transfer is final, instead of asking again and again.
//!
//! The transaction that applies decisions notifies Postgres's channel
//! [`CHANNEL`] with the transfers' ids; Postgres delivers a notification
//! only once its transaction commits, to every listener of the database:
//! every instance learns of every decision, whichever instance applied it.
//! Each instance listens on one connection, opened when a request first
//! waits, and wakes the requests waiting for those ids. A request reads
//! the transfer again after it is woken, or when its wait is over: a
//! notification lost with a connection only delays the answer.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use sqlx::{PgConnection, PgPool, postgres::PgListener};
use tokio::sync::{Notify, OnceCell};

/// The channel decided transfers' ids are sent on, comma-separated.
pub const CHANNEL: &str = "ledgerline_transfers_decided";
/// Ids per notification: a payload stays well under Postgres's 8,000 bytes.
const IDS_PER_NOTIFICATION: usize = 400;

/// Tells every listening instance, once the transaction commits, that
/// these transfers are decided.
pub async fn announce(db: &mut PgConnection, ids: &[i64]) -> Result<(), sqlx::Error> {
    for chunk in ids.chunks(IDS_PER_NOTIFICATION) {
        let payload = chunk
            .iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(",");
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(payload)
            .execute(&mut *db)
            .await?;
    }
    Ok(())
}

/// The requests of this instance waiting for decisions.
#[derive(Default)]
pub struct Decisions {
    waiting: Arc<Waiting>,
    listening: OnceCell<()>,
}

/// A wake-up per transfer id someone waits for.
#[derive(Default)]
struct Waiting(Mutex<HashMap<i64, Arc<Notify>>>);

impl Waiting {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i64, Arc<Notify>>> {
        // Nothing panics while holding it; if it did, the map is still whole.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wakes the requests waiting for these ids.
    fn decided(&self, payload: &str) {
        let mut waiting = self.lock();
        for id in payload.split(',').filter_map(|id| id.parse::<i64>().ok()) {
            if let Some(notify) = waiting.remove(&id) {
                notify.notify_waiters();
            }
        }
    }

    /// Wakes every waiting request, to read its transfer again (after a
    /// lost connection, whose notifications are lost with it).
    fn all(&self) {
        for (_, notify) in self.lock().drain() {
            notify.notify_waiters();
        }
    }
}

/// A request's place in the queue for one transfer's decision; leaving it
/// (dropping it) takes the place back.
pub struct Waiter<'a> {
    decisions: &'a Decisions,
    id: i64,
    notify: Arc<Notify>,
}

impl Decisions {
    /// Queues for the decision of `id` (the listener starts with the first
    /// wait). Take [`Waiter::decided`] before reading the transfer, so that
    /// a decision committed after the read is not missed.
    pub async fn queue(&self, db: &PgPool, id: i64) -> Result<Waiter<'_>, sqlx::Error> {
        self.listening
            .get_or_try_init(|| listen(db, self.waiting.clone()))
            .await?;
        let notify = self
            .waiting
            .lock()
            .entry(id)
            .or_insert_with(|| Arc::new(Notify::new()))
            .clone();
        Ok(Waiter {
            decisions: self,
            id,
            notify,
        })
    }
}

/// Listens on its own connection, for the life of the process.
async fn listen(db: &PgPool, waiting: Arc<Waiting>) -> Result<(), sqlx::Error> {
    let mut listener = PgListener::connect_with(db).await?;
    listener.listen(CHANNEL).await?;
    tokio::spawn(async move {
        loop {
            match listener.try_recv().await {
                Ok(Some(notification)) => waiting.decided(notification.payload()),
                // The connection was lost and is opened again on the next
                // call: what was sent meanwhile is lost.
                Ok(None) => waiting.all(),
                Err(error) => {
                    tracing::warn!(%error, "listening for decided transfers failed; trying again");
                    waiting.all();
                    tokio::time::sleep(RELISTEN_AFTER).await;
                }
            }
        }
    });
    Ok(())
}

/// How long a failed listener waits before it listens again.
const RELISTEN_AFTER: Duration = Duration::from_secs(1);

impl Waiter<'_> {
    /// Completes when the transfer may have been decided: take it before
    /// reading the transfer, await it after.
    pub fn decided(&self) -> tokio::sync::futures::Notified<'_> {
        self.notify.notified()
    }
}

impl Drop for Waiter<'_> {
    fn drop(&mut self) {
        let mut waiting = self.decisions.waiting.lock();
        // Only the map and this waiter hold it: nobody else waits.
        if waiting
            .get(&self.id)
            .is_some_and(|notify| Arc::ptr_eq(notify, &self.notify))
            && Arc::strong_count(&self.notify) == 2
        {
            waiting.remove(&self.id);
        }
    }
}
