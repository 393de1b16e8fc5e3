//! Consume-mode delivery: one [`actor::Actor`] per client type, and the
//! registry that creates them as client types first register.

mod actor;
mod keys;

use std::{
    collections::HashMap,
    sync::atomic::{AtomicU64, Ordering},
};

use sqlx::PgPool;
use tokio::sync::{Mutex, mpsc, oneshot};

use actor::{Actor, Command};
pub use actor::{Delivery, Occupancy};
pub use keys::InstanceId;

use super::{config::DeliveryConfig, writer::WriterHandle};
use crate::{
    protocol::EventTypes,
    store::{self, StoreError, parking::DecisionRecord},
};

/// Every subscription of this bus.
pub struct Subscriptions {
    pool: PgPool,
    writer: WriterHandle,
    config: DeliveryConfig,
    actors: Mutex<HashMap<String, mpsc::UnboundedSender<Command>>>,
    next_instance: AtomicU64,
}

impl Subscriptions {
    pub fn new(pool: PgPool, writer: WriterHandle, config: DeliveryConfig) -> Self {
        Self {
            pool,
            writer,
            config,
            actors: Mutex::new(HashMap::new()),
            next_instance: AtomicU64::new(1),
        }
    }

    /// Registers an instance of `client_type`: stores the subscription (the
    /// first registration of a client type, or of a type, makes it owed from
    /// now on) and starts delivering to `deliveries`.
    pub async fn join(
        &self,
        client_type: &str,
        types: EventTypes,
        skip_markers: bool,
        deliveries: mpsc::UnboundedSender<Delivery>,
    ) -> Result<Membership, StoreError> {
        // One registration at a time: two first instances must not both
        // create the client type's actor.
        let mut actors = self.actors.lock().await;
        let stored =
            store::subscriptions::register(&self.pool, client_type, &types, self.writer.head())
                .await?;
        let owed_after = stored.owed_after.clone();
        let commands = match actors.get(client_type) {
            Some(commands) if !commands.is_closed() => commands.clone(),
            _ => {
                let orphans = store::parking::release_orphans(&self.pool, client_type).await?;
                if orphans > 0 {
                    tracing::warn!(
                        client_type,
                        orphans,
                        "released events blocked behind an event no longer parked"
                    );
                }
                let stored = store::subscriptions::load(&self.pool, client_type)
                    .await?
                    .unwrap_or(stored);
                let (commands, receiver) = mpsc::unbounded_channel();
                let actor = Actor::new(
                    stored,
                    self.pool.clone(),
                    self.writer.clone(),
                    self.config,
                    receiver,
                );
                tokio::spawn(actor.run());
                actors.insert(client_type.to_owned(), commands.clone());
                commands
            }
        };
        let instance = self.next_instance.fetch_add(1, Ordering::Relaxed);
        let (joined, taken) = oneshot::channel();
        let _ = commands.send(Command::Join {
            instance,
            types,
            skip_markers,
            owed_after,
            deliveries,
            joined,
        });
        // Only then may the caller read the head it reports: everything
        // after it is owed.
        let _ = taken.await;
        Ok(Membership { instance, commands })
    }

    /// Applies a staff decision on a parked event: replay it, or skip it;
    /// either way the events held behind it are delivered after. The
    /// number of held events released, `None` when that event is not
    /// parked for `client_type`.
    pub async fn decide(
        &self,
        client_type: &str,
        position: i64,
        record: DecisionRecord,
    ) -> Result<Option<usize>, StoreError> {
        let actors = self.actors.lock().await;
        if let Some(commands) = actors.get(client_type).filter(|c| !c.is_closed()) {
            let (reply, answer) = oneshot::channel();
            if commands
                .send(Command::Decide {
                    position,
                    record: record.clone(),
                    reply,
                })
                .is_ok()
                && let Ok(answer) = answer.await
            {
                return answer;
            }
        }
        // No subscription runs here: the decision waits in the store, and
        // the subscription delivers what it released when it starts.
        let released = store::parking::decide(&self.pool, client_type, position, &record).await?;
        Ok(released.map(|released| released.positions.len() - 1))
    }

    /// What each subscription running on this bus has in memory now, by
    /// client type; a client type without one here has no instance.
    pub async fn occupancy(&self) -> HashMap<String, Occupancy> {
        let running: Vec<(String, mpsc::UnboundedSender<Command>)> = self
            .actors
            .lock()
            .await
            .iter()
            .filter(|(_, commands)| !commands.is_closed())
            .map(|(client_type, commands)| (client_type.clone(), commands.clone()))
            .collect();
        // Ask them all, then gather: they answer side by side.
        let mut answers = Vec::with_capacity(running.len());
        for (client_type, commands) in running {
            let (reply, answer) = oneshot::channel();
            if commands.send(Command::Instances { reply }).is_ok() {
                answers.push((client_type, answer));
            }
        }
        let mut occupancy = HashMap::with_capacity(answers.len());
        for (client_type, answer) in answers {
            // An actor that stops before answering has no instance.
            if let Ok(answer) = answer.await {
                occupancy.insert(client_type, answer);
            }
        }
        occupancy
    }

    /// Saves every subscription's progress and stops them.
    pub async fn stop(&self) {
        let actors: Vec<_> = self.actors.lock().await.drain().collect();
        for (_, commands) in actors {
            let (done, stopped) = oneshot::channel();
            if commands.send(Command::Stop { done }).is_ok() {
                let _ = stopped.await;
            }
        }
    }
}

/// One instance's place in its subscription. Dropping it is leaving: its
/// unacknowledged events go to the other instances.
pub struct Membership {
    instance: InstanceId,
    commands: mpsc::UnboundedSender<Command>,
}

impl Membership {
    pub fn ack(&self, positions: Vec<i64>) {
        let _ = self.commands.send(Command::Ack {
            instance: self.instance,
            positions,
        });
    }

    pub fn nack(&self, position: i64, reason: String) {
        let _ = self.commands.send(Command::Nack {
            instance: self.instance,
            position,
            reason,
        });
    }
}

impl Drop for Membership {
    fn drop(&mut self) {
        let _ = self.commands.send(Command::Leave {
            instance: self.instance,
        });
    }
}
