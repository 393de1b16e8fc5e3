//! How a script, running on a blocking thread, reaches the database that
//! the async side holds (often a connection inside the framework's
//! transaction, which cannot leave its task). The script asks and waits;
//! the async side answers each ask in turn until the call ends.

use std::{future::Future, sync::mpsc as blocking};

use serde_json::Value;
use tokio::sync::mpsc;

/// What a script asks of the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Query {
    Get(String),
    /// Every key starting with the prefix, in key order.
    Scan(String),
    /// The consistency value of the key's last applied event.
    Version(String),
}

#[derive(Debug)]
pub(crate) enum Answer {
    Value(Option<Value>),
    Entries(Vec<(String, Value)>),
    Version(Option<i64>),
}

#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum AskError {
    /// The key must be brought up to date before the decision reads
    /// anything: the host runs the call again after doing so.
    #[error("{0} is being brought up to date; the call runs again")]
    NeedsSync(String),
    /// Not allowed here (a version inside an applied event's handler).
    #[error("{0}")]
    Refused(String),
    #[error("the database failed: {0}")]
    Failed(String),
}

pub(crate) struct Ask {
    pub query: Query,
    pub reply: blocking::SyncSender<Result<Answer, AskError>>,
}

/// The script's end of the bridge.
#[derive(Clone)]
pub(crate) struct Bridge {
    asks: mpsc::UnboundedSender<Ask>,
}

impl Bridge {
    pub(crate) fn new() -> (Self, mpsc::UnboundedReceiver<Ask>) {
        let (asks, received) = mpsc::unbounded_channel();
        (Self { asks }, received)
    }

    /// Asks and waits for the answer (on the script's blocking thread).
    pub(crate) fn ask(&self, query: Query) -> Result<Answer, AskError> {
        let (reply, answer) = blocking::sync_channel(1);
        self.asks
            .send(Ask { query, reply })
            .map_err(|_| AskError::Failed("the call was abandoned".to_owned()))?;
        answer
            .recv()
            .map_err(|_| AskError::Failed("the call was abandoned".to_owned()))?
    }
}

/// The async side: answers a call's asks.
pub(crate) trait Answerer: Send {
    fn answer(&mut self, query: Query) -> impl Future<Output = Result<Answer, AskError>> + Send;
}
