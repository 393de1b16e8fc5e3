//! A few VMs with the script loaded, each lent to one call at a time.
//!
//! A call runs on a blocking thread (Lua runs to completion; it cannot
//! await), while this side answers its store asks on the connection the
//! caller holds. A VM stopped by a limit, or holding too much, is thrown
//! away and a fresh one loaded, so one bad call never harms the next.

use std::sync::{Arc, Mutex};

use tokio::sync::Semaphore;

use crate::{
    bridge::{Answerer, Bridge},
    error::ScriptError,
    limits::Limits,
    vm::{Declared, Source, Vm},
};

pub struct Pool {
    source: Source,
    limits: Limits,
    declared: Declared,
    idle: Mutex<Vec<Vm>>,
    /// Decisions running at once.
    permits: Semaphore,
}

/// What a call is, for its turn on a VM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Turn {
    /// A reaction or a route: it waits for one of the pool's permits.
    Decision,
    /// Applying events: it never waits for a permit, because a decision
    /// holding one may be waiting for it (bringing a key up to date
    /// applies that key's events). Applies are few at once anyway: the
    /// live consumer's, and one per decision catching a key up.
    Apply,
}

impl Pool {
    /// Loads the script once, to learn what it declares.
    pub fn new(source: Source, limits: Limits, size: usize) -> Result<Self, ScriptError> {
        let (vm, declared) = Vm::load(&source, limits)?;
        Ok(Self {
            source,
            limits,
            declared,
            idle: Mutex::new(vec![vm]),
            permits: Semaphore::new(size.max(1)),
        })
    }

    pub fn declared(&self) -> &Declared {
        &self.declared
    }

    /// Runs `job` on a VM, answering its asks with `answerer` meanwhile.
    pub(crate) async fn run<T: Send + 'static>(
        self: &Arc<Self>,
        turn: Turn,
        answerer: &mut impl Answerer,
        job: impl FnOnce(&mut Vm, &Bridge) -> T + Send + 'static,
    ) -> Result<T, ScriptError> {
        let _permit = match turn {
            Turn::Decision => Some(
                self.permits
                    .acquire()
                    .await
                    .map_err(|_| ScriptError::Host("the script pool is closed".to_owned()))?,
            ),
            Turn::Apply => None,
        };
        let pool = self.clone();
        let (bridge, mut asks) = Bridge::new();
        let mut running = tokio::task::spawn_blocking(move || {
            let mut vm = pool.take()?;
            let outcome = job(&mut vm, &bridge);
            pool.give_back(vm);
            Ok::<T, ScriptError>(outcome)
        });
        loop {
            tokio::select! {
                biased;
                Some(ask) = asks.recv() => {
                    let answer = answerer.answer(ask.query).await;
                    // The call waits for this answer; it can only be gone
                    // if its thread died, which the join below reports.
                    let _ = ask.reply.send(answer);
                }
                finished = &mut running => {
                    return finished.map_err(|error| {
                        ScriptError::Host(format!("the script's thread failed: {error}"))
                    })?;
                }
            }
        }
    }

    /// An idle VM, or a new one.
    fn take(&self) -> Result<Vm, ScriptError> {
        if let Some(vm) = self.idle.lock().ok().and_then(|mut idle| idle.pop()) {
            return Ok(vm);
        }
        let (vm, declared) = Vm::load(&self.source, self.limits)?;
        if declared != self.declared {
            return Err(ScriptError::Load(
                "the script declared other handlers when loaded again: its top level must \
                 declare the same every time"
                    .to_owned(),
            ));
        }
        Ok(vm)
    }

    fn give_back(&self, vm: Vm) {
        if vm.spoiled {
            tracing::info!(
                "a script VM was stopped by a limit or grew too large; a fresh one will be loaded"
            );
            return;
        }
        if let Ok(mut idle) = self.idle.lock() {
            idle.push(vm);
        }
    }
}
