//! What each client message does, within the scope of the connection's
//! token: a publish outside it is a `rejected` receipt (`forbidden`),
//! reading outside it an `error` (`forbidden`).

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
};

use axum::extract::ws::Message;
use futures_util::stream::FuturesOrdered;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use super::{PendingReceipt, Registered, outbox::Outbox};
use crate::{
    credentials::Scope,
    protocol::{
        ClientMessage, ConsistencyAnswer, ConsistencyRequest, ErrorCode, ErrorMessage, Mode,
        NewMessage, ProtocolError, Query, Register, Registration, ServerMessage,
    },
    server::{
        BusState,
        query::{self, QuerySlot},
        writer::{
            AppendRequest,
            receipts::{rejected, unknown},
        },
    },
};

/// A connection's state: who it is, what it registered, what it runs.
pub(super) struct Session {
    bus: Arc<BusState>,
    scope: Arc<Scope>,
    /// `NAME@IP:PORT`: the credential's name and the peer's address,
    /// recorded with every event this connection publishes.
    published_by: Arc<str>,
    frames: Outbox,
    query_frames: mpsc::Sender<Message>,
    pub(super) registered: Registered,
    /// Queries of this connection still streaming.
    queries: Arc<AtomicUsize>,
    /// Consistency requests of this connection still being answered.
    lookups: Arc<AtomicUsize>,
}

impl Session {
    pub(super) fn new(
        bus: Arc<BusState>,
        scope: Arc<Scope>,
        peer: SocketAddr,
        frames: Outbox,
        query_frames: mpsc::Sender<Message>,
    ) -> Self {
        Self {
            bus,
            // A NUL (which a credentials file may hold) cannot be stored
            // in a text column, and would fail the writer's whole group.
            published_by: format!("{}@{peer}", scope.name.replace('\0', "\u{FFFD}")).into(),
            scope,
            frames,
            query_frames,
            registered: Registered::No,
            queries: Arc::new(AtomicUsize::new(0)),
            lookups: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Registered in consume mode.
    pub(super) fn consumes(&self) -> bool {
        matches!(self.registered, Registered::Consume { .. })
    }

    /// `frame_bytes`: the size of the frame the message came in.
    pub(super) async fn handle(
        &mut self,
        message: ClientMessage,
        frame_bytes: usize,
        receipts: &mut FuturesOrdered<PendingReceipt>,
    ) -> Result<(), ProtocolError> {
        match message {
            ClientMessage::New(new) => receipts.push_back(self.publish(new, frame_bytes).await),
            ClientMessage::Register(register) => self.register(register).await?,
            ClientMessage::Ack(ack) => match &self.registered {
                Registered::Consume { membership, .. } => membership.ack(ack.positions),
                Registered::Observe { .. } => {}
                Registered::No => return Err(not_registered("ack")),
            },
            ClientMessage::Nack(nack) => match &self.registered {
                Registered::Consume { membership, .. } => {
                    membership.nack(nack.position, nack.reason)
                }
                Registered::Observe { .. } => {}
                Registered::No => return Err(not_registered("nack")),
            },
            ClientMessage::Query(query) => self.query(query)?,
            ClientMessage::Consistency(request) => self.consistency(request)?,
        }
        Ok(())
    }

    async fn publish(&self, new: NewMessage, frame_bytes: usize) -> PendingReceipt {
        if let Some((index, event)) = new
            .events
            .iter()
            .enumerate()
            .find(|(_, event)| !self.scope.may_publish(&event.event_type))
        {
            let message = format!(
                "events[{index}]: this token may not publish {}; nothing was stored",
                event.event_type
            );
            return PendingReceipt::Ready(Some(rejected(
                &new.request_id,
                ErrorCode::Forbidden,
                &message,
            )));
        }
        let Some(intake) = self.bus.writer.reserve(frame_bytes).await else {
            return PendingReceipt::Ready(Some(unknown(&new.request_id, ErrorCode::ShuttingDown)));
        };
        let (reply, receipt) = oneshot::channel();
        let request_id = new.request_id.clone();
        // When the writer has stopped, the request comes back with its
        // reply channel; dropping it makes the receipt `unknown`.
        let _ = self.bus.writer.append(AppendRequest {
            request_id: new.request_id,
            events: new.events,
            published_by: self.published_by.clone(),
            reply,
            intake,
        });
        PendingReceipt::Waiting {
            request_id,
            receipt,
        }
    }

    async fn register(&mut self, register: Register) -> Result<(), ProtocolError> {
        if !matches!(self.registered, Registered::No) {
            return Err(ProtocolError::new(
                ErrorCode::AlreadyRegistered,
                "this connection is already registered; open another to register again",
            ));
        }
        if let Some(refusal) = self
            .scope
            .refuses_registration(&register.client_type, &register.event_types)
        {
            return Err(ProtocolError::forbidden(refusal));
        }
        let bus = &self.bus;
        let (next, head) = match register.mode {
            Mode::Observe => {
                // Subscribed before reading the head: nothing after it is missed.
                let batches = bus.writer.subscribe();
                let head = bus.writer.head();
                (
                    Registered::Observe {
                        types: register.event_types.clone(),
                        batches,
                        after: head,
                    },
                    head,
                )
            }
            Mode::Consume => {
                let (sender, deliveries) = mpsc::unbounded_channel();
                let membership = bus
                    .subscriptions
                    .join(
                        &register.client_type,
                        register.event_types.clone(),
                        register.skip_markers,
                        sender,
                    )
                    .await
                    .map_err(|error| {
                        tracing::error!(%error, "could not store a subscription");
                        ProtocolError::new(
                            ErrorCode::Unavailable,
                            "the bus could not store the subscription; register again",
                        )
                    })?;
                (
                    Registered::Consume {
                        membership,
                        deliveries,
                    },
                    bus.writer.head(),
                )
            }
        };
        tracing::info!(client = %self.scope.name, client_type = %register.client_type,
            mode = ?register.mode, "registered");
        let registration = Registration {
            client_type: register.client_type,
            event_types: register.event_types.to_list(),
            mode: register.mode,
            session_id: Uuid::now_v7(),
            head_position: head,
            skip_markers: register.skip_markers && register.mode == Mode::Consume,
        };
        self.frames
            .push(ServerMessage::Registration(&registration).to_json())
            .map_err(|_| ProtocolError::new(ErrorCode::Unavailable, "connection closed"))?;
        self.registered = next;
        Ok(())
    }

    fn query(&self, query: Query) -> Result<(), ProtocolError> {
        let request_id = Some(query.request_id.clone());
        if let Some(refusal) = self.scope.refuses_reading(&query.event_types) {
            return Err(ProtocolError::forbidden(refusal).with_request_id(request_id));
        }
        let most = self.bus.config.limits.max_queries_per_connection;
        if self.queries.fetch_add(1, Ordering::AcqRel) >= most {
            self.queries.fetch_sub(1, Ordering::AcqRel);
            return Err(ProtocolError::new(
                ErrorCode::TooManyQueries,
                format!(
                    "a connection may run at most {most} queries at once; wait for one to complete"
                ),
            )
            .with_request_id(request_id));
        }
        let global = match self.bus.queries.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                self.queries.fetch_sub(1, Ordering::AcqRel);
                return Err(ProtocolError::new(
                    ErrorCode::TooManyQueries,
                    "the bus is answering as many queries as it takes at once; ask again shortly",
                )
                .with_request_id(request_id));
            }
        };
        let slot = QuerySlot::new(self.queries.clone(), global);
        tokio::spawn(query::answer(
            self.bus.pool.clone(),
            self.bus.writer.head(),
            query,
            self.query_frames.clone(),
            self.bus.config.limits.max_frame_bytes,
            slot,
        ));
        Ok(())
    }

    /// Answered from the writer's cache, or its index for keys not in it:
    /// in a task of its own, so a look-up never holds up the socket.
    fn consistency(&self, request: ConsistencyRequest) -> Result<(), ProtocolError> {
        let most = self.bus.config.limits.max_lookups_per_connection;
        if self.lookups.fetch_add(1, Ordering::AcqRel) >= most {
            self.lookups.fetch_sub(1, Ordering::AcqRel);
            return Err(ProtocolError::new(
                ErrorCode::TooManyQueries,
                format!("a connection may wait for at most {most} consistency answers at once"),
            )
            .with_request_id(Some(request.request_id)));
        }
        let writer = self.bus.writer.clone();
        let frames = self.frames.clone();
        let lookups = self.lookups.clone();
        tokio::spawn(async move {
            let json = match writer.values(&request.keys).await {
                Ok(values) => {
                    let answer = ConsistencyAnswer {
                        request_id: request.request_id,
                        values: request.keys.into_iter().zip(values).collect(),
                    };
                    ServerMessage::Consistency(&answer).to_json()
                }
                Err(error) => {
                    tracing::warn!(%error, "could not read consistency values");
                    let error = ErrorMessage {
                        request_id: Some(request.request_id),
                        code: ErrorCode::Unavailable,
                        message: "the bus could not read its log; ask again".into(),
                    };
                    ServerMessage::Error(&error).to_json()
                }
            };
            lookups.fetch_sub(1, Ordering::AcqRel);
            // A small answer the client waits for: never dropped.
            frames.push_last(json);
        });
        Ok(())
    }
}

fn not_registered(what: &str) -> ProtocolError {
    ProtocolError::new(
        ErrorCode::NotRegistered,
        format!("{what} needs a registered connection: send register first"),
    )
}
