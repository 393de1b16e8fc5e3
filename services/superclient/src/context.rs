//! What a service's handlers, routes and the framework's parts share: its
//! database, the bus, the service itself, and who may call it.

use std::sync::{
    Arc,
    atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering},
};

use bus::client::BusClient;
use metrics_exporter_prometheus::PrometheusHandle;
use sqlx::PgPool;
use trust::{callers::Callers, user_token::Verifier};

use crate::key_locks::KeyLocks;

/// Cheap to clone; the state of the service's axum routes.
pub struct Ctx<S> {
    inner: Arc<Inner<S>>,
}

struct Inner<S> {
    service: S,
    db: PgPool,
    publisher: BusClient,
    key_locks: KeyLocks,
    callers: Callers,
    user_tokens: Verifier,
    ready: AtomicBool,
    /// Keys the start-up rebuild could not bring up to date.
    stuck_keys: AtomicU64,
    /// The rebuild mark as this process last wrote it.
    marked: AtomicI64,
    metrics: Option<PrometheusHandle>,
}

impl<S> Clone for Ctx<S> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

/// Everything a context is made of.
pub(crate) struct Parts<S> {
    pub service: S,
    pub db: PgPool,
    pub publisher: BusClient,
    pub callers: Callers,
    pub user_tokens: Verifier,
    pub metrics: Option<PrometheusHandle>,
}

impl<S> Ctx<S> {
    pub(crate) fn new(parts: Parts<S>) -> Self {
        Self {
            inner: Arc::new(Inner {
                service: parts.service,
                db: parts.db,
                publisher: parts.publisher,
                key_locks: KeyLocks::default(),
                callers: parts.callers,
                user_tokens: parts.user_tokens,
                ready: AtomicBool::new(false),
                stuck_keys: AtomicU64::new(0),
                marked: AtomicI64::new(0),
                metrics: parts.metrics,
            }),
        }
    }

    pub fn service(&self) -> &S {
        &self.inner.service
    }

    /// The service's database; its connections use the service's schema.
    pub fn db(&self) -> &PgPool {
        &self.inner.db
    }

    /// The connection that publishes and queries (events arrive on another).
    pub(crate) fn publisher(&self) -> &BusClient {
        &self.inner.publisher
    }

    pub(crate) fn key_locks(&self) -> &KeyLocks {
        &self.inner.key_locks
    }

    pub(crate) fn callers(&self) -> &Callers {
        &self.inner.callers
    }

    pub(crate) fn user_tokens(&self) -> &Verifier {
        &self.inner.user_tokens
    }

    pub(crate) fn is_ready(&self) -> bool {
        self.inner.ready.load(Ordering::Acquire)
    }

    pub(crate) fn set_ready(&self) {
        self.inner.ready.store(true, Ordering::Release);
    }

    pub(crate) fn stuck_keys(&self) -> u64 {
        self.inner.stuck_keys.load(Ordering::Acquire)
    }

    pub(crate) fn set_stuck_keys(&self, keys: u64) {
        self.inner.stuck_keys.store(keys, Ordering::Release);
        metrics::gauge!("superclient_stuck_keys").set(keys as f64);
    }

    /// The rebuild mark as this process last wrote it (0: not yet).
    pub(crate) fn marked(&self) -> i64 {
        self.inner.marked.load(Ordering::Acquire)
    }

    pub(crate) fn note_marked(&self, position: i64) {
        self.inner.marked.fetch_max(position, Ordering::AcqRel);
    }

    pub(crate) fn metrics(&self) -> Option<&PrometheusHandle> {
        self.inner.metrics.as_ref()
    }
}
