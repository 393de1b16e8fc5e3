//! What a run did, by kind of operation: how many were accepted, rejected
//! (a final "no", such as insufficient funds) or failed (no final answer,
//! or an answer that should never come), and the latency from request to
//! final status in an HdrHistogram (a transfer is final when accepted or
//! rejected, not when asked for).

use std::{collections::BTreeMap, fmt, sync::Mutex, time::Duration};

use hdrhistogram::Histogram;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum OperationKind {
    SignUp,
    AccountOpening,
    OpeningDeposit,
    Deposit,
    Withdrawal,
    Transfer,
}

impl OperationKind {
    pub fn name(self) -> &'static str {
        match self {
            Self::SignUp => "sign-up",
            Self::AccountOpening => "account opening",
            Self::OpeningDeposit => "opening deposit",
            Self::Deposit => "deposit",
            Self::Withdrawal => "withdrawal",
            Self::Transfer => "transfer",
        }
    }

    /// Setup happens before the operations; each phase has its own clock.
    fn phase(self) -> Phase {
        match self {
            Self::SignUp | Self::AccountOpening | Self::OpeningDeposit => Phase::Setup,
            Self::Deposit | Self::Withdrawal | Self::Transfer => Phase::Operations,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Setup,
    Operations,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Final {
    Accepted,
    Rejected,
}

/// One kind's counts and latencies.
#[derive(Debug, Clone)]
pub struct Tally {
    /// Microseconds from request to final status, of accepted and rejected ones.
    pub latency: Histogram<u64>,
    pub accepted: u64,
    pub rejected: u64,
    pub failed: u64,
}

impl Default for Tally {
    fn default() -> Self {
        Self {
            // 1 µs to 1 hour, 3 significant figures.
            latency: Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid bounds"),
            accepted: 0,
            rejected: 0,
            failed: 0,
        }
    }
}

/// At most this many failures are kept word for word.
const FAILURES_KEPT: usize = 20;

#[derive(Debug, Default)]
pub struct Report {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default, Clone)]
struct Inner {
    tallies: BTreeMap<OperationKind, Tally>,
    setup: Duration,
    operations: Duration,
    not_started: u64,
    failures: Vec<String>,
}

impl Report {
    pub fn record(&self, kind: OperationKind, latency: Duration, outcome: Final) {
        let mut inner = self.lock();
        let tally = inner.tallies.entry(kind).or_default();
        let micros = u64::try_from(latency.as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        tally.latency.saturating_record(micros);
        match outcome {
            Final::Accepted => tally.accepted += 1,
            Final::Rejected => tally.rejected += 1,
        }
    }

    pub fn fail(&self, kind: OperationKind, what: String) {
        let mut inner = self.lock();
        inner.tallies.entry(kind).or_default().failed += 1;
        if inner.failures.len() < FAILURES_KEPT {
            inner.failures.push(format!("{}: {what}", kind.name()));
        }
    }

    pub fn phase_took(&self, phase: Phase, took: Duration) {
        let mut inner = self.lock();
        match phase {
            Phase::Setup => inner.setup = took,
            Phase::Operations => inner.operations = took,
        }
    }

    /// Operations the duration ended before they were started.
    pub fn not_started(&self, count: u64) {
        self.lock().not_started = count;
    }

    pub fn tally(&self, kind: OperationKind) -> Tally {
        self.lock().tallies.get(&kind).cloned().unwrap_or_default()
    }

    /// Operations without a final answer, of every kind.
    pub fn failed(&self) -> u64 {
        self.lock().tallies.values().map(|tally| tally.failed).sum()
    }

    /// Accepted and rejected operations so far, for the progress line.
    pub fn settled(&self) -> (u64, u64, u64) {
        let inner = self.lock();
        inner.tallies.values().fold((0, 0, 0), |(a, r, f), tally| {
            (a + tally.accepted, r + tally.rejected, f + tally.failed)
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while recording loses nothing worth stopping for.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = self.lock().clone();
        writeln!(
            f,
            "setup took {:.1} s, operations {:.1} s{}",
            inner.setup.as_secs_f64(),
            inner.operations.as_secs_f64(),
            if inner.not_started > 0 {
                format!(
                    " ({} operations not started: the duration ended)",
                    inner.not_started
                )
            } else {
                String::new()
            }
        )?;
        writeln!(
            f,
            "{:<16} {:>8} {:>9} {:>8} {:>6} {:>9} {:>9} {:>9} {:>9}",
            "operation",
            "per sec",
            "accepted",
            "rejected",
            "failed",
            "p50 ms",
            "p95 ms",
            "p99 ms",
            "max ms"
        )?;
        for (kind, tally) in &inner.tallies {
            let took = match kind.phase() {
                Phase::Setup => inner.setup,
                Phase::Operations => inner.operations,
            };
            let count = tally.accepted + tally.rejected + tally.failed;
            let per_second = if took.is_zero() {
                0.0
            } else {
                count as f64 / took.as_secs_f64()
            };
            let ms = |quantile: f64| tally.latency.value_at_quantile(quantile) as f64 / 1000.0;
            writeln!(
                f,
                "{:<16} {:>8.1} {:>9} {:>8} {:>6} {:>9.1} {:>9.1} {:>9.1} {:>9.1}",
                kind.name(),
                per_second,
                tally.accepted,
                tally.rejected,
                tally.failed,
                ms(0.50),
                ms(0.95),
                ms(0.99),
                tally.latency.max() as f64 / 1000.0,
            )?;
        }
        for failure in &inner.failures {
            writeln!(f, "failed: {failure}")?;
        }
        Ok(())
    }
}
