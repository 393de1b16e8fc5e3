//! HTTP calls to the services, as any client of the bank makes them: the
//! tool's caller token on every call, the customer's user token, and an
//! idempotency key on every request that changes state.
//!
//! An answer that leaves the outcome open (no answer at all, any 5xx, or a
//! 409 `request_in_progress`) is followed by the same request
//! with the same key, on the next instance of the service, until a
//! definite answer comes or the client's patience runs out. The key makes
//! the resend safe: the service answers what the first one did. A 429
//! (too many log-ins at once from one address) is sent again after its
//! `Retry-After`.

use std::{
    sync::atomic::{AtomicUsize, Ordering},
    time::Duration,
};

use reqwest::Method;
use serde_json::Value;
use tokio::time::Instant;

/// Where the services are: one or more instances of each.
#[derive(Debug, Clone)]
pub struct Endpoints {
    pub users: Vec<String>,
    pub accounts: Vec<String>,
    pub transactions: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Users,
    Accounts,
    Transactions,
}

/// A definite answer.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
    /// A 429's `Retry-After`.
    pub retry_after: Option<Duration>,
}

impl Answer {
    /// The `error.code` of an error answer.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or_default()
    }

    /// What the service said, for a report.
    pub fn describe(&self) -> String {
        match self.body["error"]["message"].as_str() {
            Some(message) => format!("{} {}: {message}", self.status, self.code()),
            None => format!("{} {}", self.status, self.body),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("no definite answer within {patience:?}; the last: {last}")]
    GaveUp { patience: Duration, last: String },
}

/// One request, before it is sent.
pub struct Call<'a> {
    pub service: Service,
    pub method: Method,
    pub path: String,
    pub user_token: Option<&'a str>,
    pub idempotency_key: Option<&'a str>,
    pub body: Option<&'a Value>,
}

pub struct Client {
    http: reqwest::Client,
    endpoints: Endpoints,
    caller_token: String,
    /// Spreads calls over the instances of a service.
    turn: AtomicUsize,
    patience: Duration,
    /// Log-ins sent at once: the users service lets one address check only
    /// a few passwords at a time (and answers 429 beyond).
    log_ins: tokio::sync::Semaphore,
}

/// How long one attempt may take before it counts as unanswered.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
const FIRST_BACKOFF: Duration = Duration::from_millis(20);
const LONGEST_BACKOFF: Duration = Duration::from_secs(1);
/// The users service checks 8 passwords at once per address; half of it.
const LOG_INS_AT_ONCE: usize = 4;

impl Client {
    /// `patience`: how long a request is sent again before it is given up.
    pub fn new(
        endpoints: Endpoints,
        caller_token: String,
        patience: Duration,
    ) -> anyhow::Result<Self> {
        for (name, list) in [
            ("users", &endpoints.users),
            ("accounts", &endpoints.accounts),
            ("transactions", &endpoints.transactions),
        ] {
            anyhow::ensure!(!list.is_empty(), "no address for the {name} service");
        }
        let http = reqwest::Client::builder()
            .timeout(ATTEMPT_TIMEOUT)
            .tcp_nodelay(true)
            .pool_max_idle_per_host(1024)
            .build()?;
        Ok(Self {
            http,
            endpoints,
            caller_token,
            turn: AtomicUsize::new(0),
            patience,
            log_ins: tokio::sync::Semaphore::new(LOG_INS_AT_ONCE),
        })
    }

    /// A turn to log in; held while the log-in is sent.
    pub async fn log_in_turn(&self) -> tokio::sync::SemaphorePermit<'_> {
        self.log_ins.acquire().await.expect("never closed")
    }

    /// Sends `call` until its answer is definite.
    pub async fn send(&self, call: &Call<'_>) -> Result<Answer, CallError> {
        let deadline = Instant::now() + self.patience;
        let mut backoff = FIRST_BACKOFF;
        loop {
            let (last, wait) = match self.attempt(call).await {
                Ok(answer) if answer.status == 429 => {
                    let wait = answer.retry_after.unwrap_or(LONGEST_BACKOFF);
                    (answer.describe(), wait)
                }
                Ok(answer) if !leaves_outcome_open(&answer) => return Ok(answer),
                Ok(answer) => (answer.describe(), backoff),
                Err(error) => (format!("no answer: {error}"), backoff),
            };
            if Instant::now() + wait > deadline {
                return Err(CallError::GaveUp {
                    patience: self.patience,
                    last,
                });
            }
            tokio::time::sleep(wait).await;
            backoff = (backoff * 2).min(LONGEST_BACKOFF);
        }
    }

    async fn attempt(&self, call: &Call<'_>) -> reqwest::Result<Answer> {
        let bases = match call.service {
            Service::Users => &self.endpoints.users,
            Service::Accounts => &self.endpoints.accounts,
            Service::Transactions => &self.endpoints.transactions,
        };
        let base = &bases[self.turn.fetch_add(1, Ordering::Relaxed) % bases.len()];
        let mut request = self
            .http
            .request(call.method.clone(), format!("{base}{}", call.path))
            .bearer_auth(&self.caller_token);
        if let Some(token) = call.user_token {
            request = request.header("x-user-token", token);
        }
        if let Some(key) = call.idempotency_key {
            request = request.header("idempotency-key", key);
        }
        if let Some(body) = call.body {
            request = request.json(body);
        }
        let response = request.send().await?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|value| value.to_str().ok()?.parse().ok())
            .map(Duration::from_secs);
        let bytes = response.bytes().await?;
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Ok(Answer {
            status,
            body,
            retry_after,
        })
    }
}

fn leaves_outcome_open(answer: &Answer) -> bool {
    // A service answers 5xx only after releasing the key (or without having
    // taken it), so the same request again is safe.
    answer.status >= 500 || (answer.status == 409 && answer.code() == "request_in_progress")
}
