//! One decision per consistency key at a time within an instance.
//!
//! Two requests of one instance that decide on the same key (two
//! withdrawals from `acc-7`) would otherwise read the same version, and one
//! of them would lose at the bus and start over. Queuing them here keeps
//! the bus's `inconsistent` for races between instances.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

#[derive(Default)]
pub struct KeyLocks {
    locks: Mutex<HashMap<String, Arc<AsyncMutex<()>>>>,
}

/// Held while deciding; the keys are free again when it is dropped.
pub struct KeyGuards {
    _guards: Vec<OwnedMutexGuard<()>>,
}

impl KeyLocks {
    /// Locks `keys` in sorted order, so that two deciders never wait on each other.
    pub async fn lock(&self, keys: &[String]) -> KeyGuards {
        let mut sorted: Vec<&String> = keys.iter().collect();
        sorted.sort();
        sorted.dedup();
        let mut guards = Vec::with_capacity(sorted.len());
        for key in sorted {
            let lock = {
                let mut locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
                // Forget the locks nobody holds or waits for, so the map stays small.
                if locks.len() > 1024 {
                    locks.retain(|_, lock| Arc::strong_count(lock) > 1);
                }
                locks.entry(key.clone()).or_default().clone()
            };
            guards.push(lock.lock_owned().await);
        }
        KeyGuards { _guards: guards }
    }
}

#[cfg(test)]
mod tests {
    use futures_util::FutureExt;

    use super::*;

    fn keys(keys: &[&str]) -> Vec<String> {
        keys.iter().map(|k| (*k).to_owned()).collect()
    }

    #[tokio::test]
    async fn a_key_is_held_by_one_decider_at_a_time() {
        let locks = KeyLocks::default();
        let held = locks.lock(&keys(&["acc-2", "acc-1"])).await;
        assert!(
            locks.lock(&keys(&["acc-2"])).now_or_never().is_none(),
            "acc-2 is held"
        );
        assert!(
            locks
                .lock(&keys(&["acc-3", "acc-3"]))
                .now_or_never()
                .is_some(),
            "acc-3 is free"
        );
        drop(held);
        assert!(
            locks
                .lock(&keys(&["acc-1", "acc-2"]))
                .now_or_never()
                .is_some(),
            "released"
        );
    }
}
