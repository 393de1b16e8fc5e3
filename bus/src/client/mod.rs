//! The Rust client of the bus.
//!
//! [`BusClient::connect`] opens the WebSocket (with the token), registers
//! when asked to, and keeps the connection up: after a disconnect it
//! reconnects with back-off, registers again, and sends again every `new`
//! and `consistency` request that had no answer. Resending a `new` is safe:
//! every event carries an `event_id` (the client makes one when the caller
//! did not), so a message stored before the disconnect is answered
//! `duplicate` with its original positions.
//!
//! A publish whose receipt is `unknown` (the bus's database failed during
//! the commit) is sent again, with the same event ids, until the answer is
//! definite; if none comes within the publish deadline, the caller gets
//! [`ClientError::Uncertain`] and must send the same events again later
//! (or find out from the log) before deciding anything else.
//!
//! Events (consume or observe mode) arrive on the [`Events`] stream; ack
//! them with [`BusClient::ack`] once their effects are committed.

mod connection;
mod inbound;

use std::{collections::BTreeMap, time::Duration};

use serde_json::value::RawValue;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::protocol::{
    Consistency, ConsistencyValue, DeliveredEvent, ErrorCode, EventRecord, Mode, NewEvent, Receipt,
};

/// How to reach and use the bus.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// `ws://host:port/bus`.
    pub url: String,
    pub token: Option<String>,
    /// Register the connection (and again after every reconnect).
    pub registration: Option<RegistrationSpec>,
    /// The first reconnect delay; it doubles up to `max_backoff`.
    pub min_backoff: Duration,
    pub max_backoff: Duration,
    /// How long a publish (with its resends) or a consistency request may
    /// take before the caller is told the outcome is uncertain.
    pub deadline: Duration,
}

impl ClientConfig {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            token: None,
            registration: None,
            min_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            deadline: Duration::from_secs(10),
        }
    }

    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// Register as an instance of `client_type` taking `event_types` (`["*"]`: all).
    pub fn register(
        mut self,
        client_type: impl Into<String>,
        event_types: &[&str],
        mode: Mode,
    ) -> Self {
        self.registration = Some(RegistrationSpec {
            client_type: client_type.into(),
            event_types: event_types.iter().map(|t| (*t).to_owned()).collect(),
            mode,
            skip_markers: false,
        });
        self
    }

    /// (Protocol 1.2) Asks for events staff skip to be delivered once more,
    /// marked skipped, so that this client can step over them knowingly.
    pub fn skip_markers(mut self) -> Self {
        if let Some(registration) = &mut self.registration {
            registration.skip_markers = true;
        }
        self
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrationSpec {
    pub client_type: String,
    pub event_types: Vec<String>,
    pub mode: Mode,
    pub skip_markers: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    #[error("could not connect to the bus: {0}")]
    Connect(String),
    #[error("the bus refused the request ({code:?}): {message}")]
    Refused { code: ErrorCode, message: String },
    #[error("the connection to the bus was lost during the query; ask again")]
    Disconnected,
    #[error("the client has been closed")]
    Closed,
    #[error("could not encode the event data: {0}")]
    Encode(String),
    #[error(
        "the bus gave no definite answer within {0:?}: the events may or may not be stored; \
         send them again with the same event ids"
    )]
    Uncertain(Duration),
    #[error("the bus did not answer within {0:?}")]
    TimedOut(Duration),
}

/// An event to publish.
#[derive(Debug, Clone)]
pub struct Publish {
    pub event_type: String,
    pub key: String,
    pub value: ConsistencyValue,
    pub data: Box<RawValue>,
    pub event_id: Option<Uuid>,
    pub correlation_id: Option<Uuid>,
    pub causation_id: Option<Uuid>,
}

impl Publish {
    /// An event of `event_type` on `key` with `data` (any serialisable value).
    pub fn new(
        event_type: impl Into<String>,
        key: impl Into<String>,
        value: ConsistencyValue,
        data: &impl serde::Serialize,
    ) -> Result<Self, ClientError> {
        let data = serde_json::value::to_raw_value(data)
            .map_err(|e| ClientError::Encode(e.to_string()))?;
        Ok(Self {
            event_type: event_type.into(),
            key: key.into(),
            value,
            data,
            event_id: None,
            correlation_id: None,
            causation_id: None,
        })
    }

    pub fn correlation(mut self, correlation_id: Uuid) -> Self {
        self.correlation_id = Some(correlation_id);
        self
    }

    pub fn caused_by(mut self, causation_id: Uuid) -> Self {
        self.causation_id = Some(causation_id);
        self
    }

    pub fn event_id(mut self, event_id: Uuid) -> Self {
        self.event_id = Some(event_id);
        self
    }

    fn into_wire(self) -> NewEvent {
        NewEvent {
            event_id: Some(self.event_id.unwrap_or_else(Uuid::now_v7)),
            event_type: self.event_type,
            consistency: Consistency {
                key: self.key,
                value: self.value,
            },
            correlation_id: self.correlation_id,
            causation_id: self.causation_id,
            data: self.data,
        }
    }
}

/// What to ask history for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuerySpec {
    /// `["*"]` for every type.
    pub event_types: Vec<String>,
    pub start: QueryFrom,
    pub key: Option<String>,
    pub limit: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryFrom {
    /// RFC 3339 time, or `"*"` for the beginning.
    Since(String),
    AfterPosition(i64),
}

/// One part of a query's answer.
#[derive(Debug)]
pub enum QueryItem {
    Batch(Vec<EventRecord>),
    /// The end: how many events, and the head when the query started.
    Complete {
        count: u64,
        last_position: i64,
    },
}

/// A query's answer as it streams in. It ends with [`QueryItem::Complete`]
/// or an error; `None` before either means the client was closed.
///
/// Take its batches promptly: while one waits to be taken, this client
/// reads nothing else from the bus (that is the back-pressure that keeps a
/// rebuild's memory flat), so awaiting another request of the same client
/// before draining the stream would wait forever.
pub struct QueryStream {
    items: mpsc::Receiver<Result<QueryItem, ClientError>>,
}

impl QueryStream {
    /// The next batch or the end; `None` after the end.
    pub async fn next(&mut self) -> Option<Result<QueryItem, ClientError>> {
        self.items.recv().await
    }
}

/// Events delivered to this client, in the order the bus sent them.
pub struct Events {
    receiver: mpsc::UnboundedReceiver<DeliveredEvent>,
}

impl Events {
    pub async fn next(&mut self) -> Option<DeliveredEvent> {
        self.receiver.recv().await
    }

    /// Every event that has already arrived, without waiting.
    pub fn drain(&mut self) -> Vec<DeliveredEvent> {
        let mut events = Vec::new();
        while let Ok(event) = self.receiver.try_recv() {
            events.push(event);
        }
        events
    }
}

/// A connection to the bus that survives disconnects. Cheap to clone.
#[derive(Clone)]
pub struct BusClient {
    commands: mpsc::UnboundedSender<connection::Command>,
    deadline: Duration,
}

impl BusClient {
    /// Connects (and registers, when configured); resolves once that is done.
    pub async fn connect(config: ClientConfig) -> Result<(Self, Events), ClientError> {
        let deadline = config.deadline;
        let (commands, events) = connection::start(config).await?;
        Ok((Self { commands, deadline }, Events { receiver: events }))
    }

    /// Publishes `events` atomically; resolves to the bus's definite
    /// receipt. An `unknown` receipt is followed by resends of the same
    /// events (same ids) until the answer is definite, within the deadline.
    pub async fn publish(&self, events: Vec<Publish>) -> Result<Receipt, ClientError> {
        let events: Vec<NewEvent> = events.into_iter().map(Publish::into_wire).collect();
        let deadline = tokio::time::Instant::now() + self.deadline;
        let mut pause = Duration::from_millis(20);
        loop {
            let (reply, receipt) = oneshot::channel();
            self.send(connection::Command::Publish {
                events: events.clone(),
                reply,
            })?;
            let receipt = match tokio::time::timeout_at(deadline, receipt).await {
                Ok(answer) => answer.map_err(|_| ClientError::Closed)??,
                Err(_) => return Err(ClientError::Uncertain(self.deadline)),
            };
            if receipt.status.is_definite() {
                return Ok(receipt);
            }
            tracing::warn!(code = ?receipt.code, "the bus could not say whether a message was stored; sending it again");
            if tokio::time::Instant::now() + pause >= deadline {
                return Err(ClientError::Uncertain(self.deadline));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(1));
        }
    }

    /// The current value of each key (`None`: no event yet).
    pub async fn consistency(
        &self,
        keys: Vec<String>,
    ) -> Result<BTreeMap<String, Option<i64>>, ClientError> {
        let (reply, answer) = oneshot::channel();
        self.send(connection::Command::Consistency { keys, reply })?;
        tokio::time::timeout(self.deadline, answer)
            .await
            .map_err(|_| ClientError::TimedOut(self.deadline))?
            .map_err(|_| ClientError::Closed)?
    }

    /// Asks for history; the answer streams in batches.
    pub fn query(&self, spec: QuerySpec) -> Result<QueryStream, ClientError> {
        let (items, receiver) = mpsc::channel(4);
        self.send(connection::Command::Query { spec, items })?;
        Ok(QueryStream { items: receiver })
    }

    /// Tells the bus these events are fully processed.
    pub fn ack(&self, positions: Vec<i64>) -> Result<(), ClientError> {
        self.send(connection::Command::Ack { positions })
    }

    /// Tells the bus this event could not be processed now.
    pub fn nack(&self, position: i64, reason: impl Into<String>) -> Result<(), ClientError> {
        self.send(connection::Command::Nack {
            position,
            reason: reason.into(),
        })
    }

    /// The head position the bus reported at the latest registration.
    pub async fn head_position(&self) -> Result<i64, ClientError> {
        let (reply, head) = oneshot::channel();
        self.send(connection::Command::Head { reply })?;
        head.await.map_err(|_| ClientError::Closed)
    }

    /// Closes the connection; unanswered requests fail with `Closed`.
    pub fn close(&self) {
        let _ = self.commands.send(connection::Command::Close);
    }

    fn send(&self, command: connection::Command) -> Result<(), ClientError> {
        self.commands.send(command).map_err(|_| ClientError::Closed)
    }
}
