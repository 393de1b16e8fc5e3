//! Parking that blocks the key, and staff decisions that release it.

use super::{Actor, Release, weight};
use crate::store::{self, parking::DecisionRecord};

impl Actor {
    /// The event at `parked` was parked: its key delivers nothing more to
    /// this client type until staff decide. What the key held behind it is
    /// recorded as blocked and leaves memory; the watermark may pass it.
    pub(super) fn block_key(&mut self, key: String, parked: i64) {
        self.blocking.insert(key.clone(), parked);
        let Some(state) = self.keys.remove(&key) else {
            return;
        };
        // Nothing of the key is in flight: the parked event was.
        for held in state.queue {
            self.held -= 1;
            self.held_bytes -= weight(&held.event);
            let position = held.event.position;
            if held.released() {
                self.progress.replays_done.push(position);
            } else {
                self.outstanding.remove(&position);
            }
            self.progress.blocked.push((position, parked));
        }
        // Released events not read yet are blocked again too.
        for position in state.pending_release {
            self.progress.replays_done.push(position);
            self.progress.blocked.push((position, parked));
        }
    }

    /// Applies a staff decision on the parked event at `position`: the
    /// events held behind it (after it, for a replay) are delivered in order.
    /// The number released, or `None` when that event is not parked.
    pub(super) async fn decide(
        &mut self,
        position: i64,
        record: DecisionRecord,
    ) -> Result<Option<usize>, store::StoreError> {
        // The decision moves what is blocked behind the event in the store:
        // all of it must be saved first.
        self.flush().await?;
        let decision = record.decision;
        let decided = match store::parking::decide(&self.pool, &self.client_type, position, &record)
            .await
        {
            Ok(decided) => decided,
            // The commit may have happened: if it did, act on it now.
            Err(error) => {
                match store::parking::after_decision(&self.pool, &self.client_type, position).await
                {
                    Ok(Some(released)) => Some(released),
                    _ => return Err(error),
                }
            }
        };
        let Some(released) = decided else {
            return Ok(None);
        };
        tracing::info!(client_type = %self.client_type, position, decision = decision.as_str(),
            decided_by = %record.decided_by, released = released.positions.len(), "a staff decision on a parked event");
        if self.blocking.get(&released.key) == Some(&position) {
            self.blocking.remove(&released.key);
        }
        let held = released.positions.len() - 1;
        if !released.positions.is_empty() {
            self.release(Release {
                key: released.key,
                positions: released.positions,
                skipped: released.skipped,
            });
        }
        Ok(Some(held))
    }
}
