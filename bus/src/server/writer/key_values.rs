//! The consistency values the writer checks against, kept in a bounded
//! cache: the keys in use stay in memory, and a key met again after a long
//! time is looked up in the log's `(key, value)` index. Memory does not grow
//! with the number of keys ever written.
//!
//! Only the writer fills the cache, and only with values it has committed
//! or read while nothing of its own was in flight, so every entry is the
//! key's current value (or its absence). After a commit whose outcome is
//! unknown the cache is emptied.

use std::{
    collections::{HashMap, HashSet},
    num::NonZeroUsize,
    sync::{Mutex, MutexGuard},
};

use lru::LruCache;

/// How many keys the cache holds by default: about 30 MB.
pub const DEFAULT_CAPACITY: usize = 250_000;

pub struct KeyValues {
    /// `None`: the key has no event yet.
    cache: Mutex<LruCache<String, Option<i64>>>,
}

/// Values of some keys: known ones, and those to look up.
pub struct Peeked {
    pub known: HashMap<String, Option<i64>>,
    pub missing: Vec<String>,
}

impl KeyValues {
    pub fn new(capacity: usize) -> Self {
        let capacity = NonZeroUsize::new(capacity).unwrap_or(NonZeroUsize::MIN);
        Self {
            cache: Mutex::new(LruCache::new(capacity)),
        }
    }

    fn cache(&self) -> MutexGuard<'_, LruCache<String, Option<i64>>> {
        self.cache
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// What the cache knows of `keys` (each key once), marking them used.
    pub fn get<'a>(&self, keys: impl IntoIterator<Item = &'a str>) -> Peeked {
        let mut cache = self.cache();
        let mut peeked = Peeked {
            known: HashMap::new(),
            missing: Vec::new(),
        };
        let mut seen = HashSet::new();
        for key in keys {
            if !seen.insert(key) {
                continue;
            }
            match cache.get(key) {
                Some(value) => {
                    peeked.known.insert(key.to_owned(), *value);
                }
                None => peeked.missing.push(key.to_owned()),
            }
        }
        metrics::counter!("bus_key_cache_misses_total").increment(peeked.missing.len() as u64);
        peeked
    }

    /// What the cache knows, without changing what it keeps (for readers
    /// other than the writer).
    pub fn peek<'a>(&self, keys: impl IntoIterator<Item = &'a str>) -> Peeked {
        let cache = self.cache();
        let mut peeked = Peeked {
            known: HashMap::new(),
            missing: Vec::new(),
        };
        for key in keys {
            match cache.peek(key) {
                Some(value) => {
                    peeked.known.insert(key.to_owned(), *value);
                }
                None => peeked.missing.push(key.to_owned()),
            }
        }
        peeked
    }

    /// Records current values (the writer's alone to call).
    pub fn put(&self, values: impl IntoIterator<Item = (String, Option<i64>)>) {
        let mut cache = self.cache();
        for (key, value) in values {
            cache.put(key, value);
        }
        metrics::gauge!("bus_key_cache_entries").set(cache.len() as f64);
    }

    /// Forgets everything: after a commit whose outcome is unknown.
    pub fn clear(&self) {
        self.cache().clear();
        metrics::gauge!("bus_key_cache_entries").set(0.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_at_most_its_capacity_and_forgets_the_least_used() {
        let values = KeyValues::new(2);
        values.put([("a".into(), Some(1)), ("b".into(), None)]);
        assert_eq!(values.get(["a"]).known["a"], Some(1));
        values.put([("c".into(), Some(0))]);
        let peeked = values.get(["a", "b", "c", "a"]);
        assert_eq!(
            peeked.missing,
            vec!["b".to_owned()],
            "b was used least recently"
        );
        assert_eq!(peeked.known.len(), 2);
        values.clear();
        assert_eq!(values.peek(["a"]).missing, vec!["a".to_owned()]);
    }
}
