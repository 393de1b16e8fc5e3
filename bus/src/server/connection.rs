//! One client's WebSocket: reads its messages, answers them, and sends it
//! events (consumed or observed), receipts in order, and query answers.

use std::{
    pin::{Pin, pin},
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use axum::extract::ws::{CloseFrame, Message, WebSocket, close_code};
use futures_util::{SinkExt, StreamExt, stream::FuturesOrdered};
use tokio::sync::{broadcast, mpsc, oneshot};
use uuid::Uuid;

use super::{
    BusState, query,
    subscription::{Delivery, Membership},
    writer::{AppendRequest, CommittedBatch},
};
use crate::protocol::{
    ClientMessage, ConsistencyAnswer, ErrorCode, ErrorMessage, EventFrame, EventTypes, Mode,
    ProtocolError, Receipt, ReceiptStatus, Registration, ServerMessage, parse_client_message,
};

/// Query answers waiting for the socket: a full queue slows the query down.
const QUERY_FRAMES: usize = 64;
/// Replies and events waiting for a client that does not read them: past
/// this the connection is closed (the bus never stops reading a socket to
/// wait for its writes, so that neither side can block the other).
const MAX_BACKLOG: usize = 100_000;

enum Registered {
    No,
    Consume {
        membership: Membership,
        deliveries: mpsc::UnboundedReceiver<Delivery>,
    },
    Observe {
        types: EventTypes,
        batches: broadcast::Receiver<Arc<CommittedBatch>>,
        /// The head it was told at registration: it gets what comes after.
        after: i64,
    },
}

/// The frames a connection sends, in order, never waiting: see [`MAX_BACKLOG`].
#[derive(Clone)]
struct Outbox {
    frames: mpsc::UnboundedSender<Message>,
    backlog: Arc<AtomicUsize>,
}

impl Outbox {
    fn push(&self, frame: Message) -> Result<(), ()> {
        if self.backlog.fetch_add(1, Ordering::Relaxed) >= MAX_BACKLOG {
            return Err(());
        }
        self.frames.send(frame).map_err(|_| ())
    }
}

/// A receipt on its way from the writer; `shutting_down` if the writer
/// stopped without answering.
struct PendingReceipt {
    request_id: String,
    receipt: oneshot::Receiver<Receipt>,
}

impl Future for PendingReceipt {
    type Output = Receipt;

    fn poll(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<Receipt> {
        Pin::new(&mut self.receipt)
            .poll(context)
            .map(|receipt| receipt.unwrap_or_else(|_| shutting_down_receipt(&self.request_id)))
    }
}

pub async fn serve(socket: WebSocket, bus: Arc<BusState>) {
    metrics::gauge!("bus_connections").increment(1);
    let (mut sink, mut stream) = socket.split();
    let (frames, mut outbox) = mpsc::unbounded_channel::<Message>();
    let (query_frames, mut query_outbox) = mpsc::channel::<Message>(QUERY_FRAMES);
    let backlog = Arc::new(AtomicUsize::new(0));
    let frames = Outbox {
        frames,
        backlog: backlog.clone(),
    };
    // Writes whatever is queued, then flushes once: one system call for a
    // burst of receipts and events rather than one each.
    let sender = tokio::spawn(async move {
        'writing: loop {
            let frame = tokio::select! {
                biased;
                Some(frame) = outbox.recv() => frame,
                Some(frame) = query_outbox.recv() => frame,
                else => break,
            };
            let mut closing = matches!(frame, Message::Close(_));
            if sink.feed(frame).await.is_err() {
                break;
            }
            while !closing {
                let Ok(frame) = outbox.try_recv().or_else(|_| query_outbox.try_recv()) else {
                    break;
                };
                closing = matches!(frame, Message::Close(_));
                if sink.feed(frame).await.is_err() {
                    break 'writing;
                }
            }
            backlog.store(outbox.len(), Ordering::Relaxed);
            if sink.flush().await.is_err() || closing {
                break;
            }
        }
        let _ = sink.close().await;
    });

    let mut registered = Registered::No;
    let mut receipts = FuturesOrdered::new();
    let mut shutdown = pin!(bus.shutdown.cancelled());
    let close = loop {
        tokio::select! {
            biased;
            () = &mut shutdown => break Some((close_code::AWAY, "the bus is shutting down")),
            Some(receipt) = receipts.next(), if !receipts.is_empty() => {
                let receipt: Receipt = receipt;
                if send(&frames, ServerMessage::Receipt(&receipt).to_json()).is_err() {
                    break Some(NOT_READING);
                }
            }
            Some(delivery) = next_delivery(&mut registered) => {
                if let Err(reason) = forward(&frames, delivery) {
                    break Some(reason);
                }
            }
            message = stream.next() => match message {
                Some(Ok(Message::Text(text))) => {
                    let outcome = match parse_client_message(text.as_str(), &bus.config.limits) {
                        Ok(message) => match handle(message, &bus, &frames, &query_frames, &mut registered, &mut receipts).await {
                            Ok(()) => Ok(()),
                            Err(error) => reply_error(&frames, error),
                        },
                        Err(error) => reply_error(&frames, error),
                    };
                    if outcome.is_err() {
                        break Some(NOT_READING);
                    }
                }
                Some(Ok(Message::Binary(_))) => {
                    let error = ProtocolError::new(ErrorCode::BadJson, "frames must be UTF-8 text, not binary");
                    if reply_error(&frames, error).is_err() {
                        break Some(NOT_READING);
                    }
                }
                Some(Ok(Message::Close(_))) | None => break None,
                Some(Ok(_)) => {} // ping and pong are answered by the library
                Some(Err(error)) => {
                    break is_too_big(error).then_some((close_code::SIZE, "frame too large"));
                }
            },
        }
    };

    if let Some((code, reason)) = close {
        // Commits in flight finish first: their receipts are still owed.
        while let Some(receipt) = receipts.next().await {
            let _ = send(&frames, ServerMessage::Receipt(&receipt).to_json());
        }
        let _ = frames.frames.send(Message::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        })));
    }
    drop(registered);
    drop(frames);
    drop(query_frames);
    // A client that stopped reading must not hold up the bus's shutdown.
    let mut sender = sender;
    if tokio::time::timeout(Duration::from_secs(5), &mut sender)
        .await
        .is_err()
    {
        sender.abort();
    }
    metrics::gauge!("bus_connections").decrement(1);
}

async fn handle(
    message: ClientMessage,
    bus: &BusState,
    frames: &Outbox,
    query_frames: &mpsc::Sender<Message>,
    registered: &mut Registered,
    receipts: &mut FuturesOrdered<PendingReceipt>,
) -> Result<(), ProtocolError> {
    match message {
        ClientMessage::New(new) => {
            let (reply, receipt) = oneshot::channel();
            let request_id = new.request_id.clone();
            let request = AppendRequest {
                request_id: new.request_id,
                events: new.events,
                reply,
            };
            // When the writer has stopped, the request comes back with its
            // reply channel and the receipt says so, in its turn.
            let _ = bus.writer.append(request).await;
            receipts.push_back(PendingReceipt {
                request_id,
                receipt,
            });
        }
        ClientMessage::Register(register) => {
            if !matches!(registered, Registered::No) {
                return Err(ProtocolError::new(
                    ErrorCode::AlreadyRegistered,
                    "this connection is already registered; open another to register again",
                ));
            }
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
                        .join(&register.client_type, register.event_types.clone(), sender)
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
            let registration = Registration {
                client_type: register.client_type,
                event_types: register.event_types.to_list(),
                mode: register.mode,
                session_id: Uuid::now_v7(),
                head_position: head,
            };
            send(frames, ServerMessage::Registration(&registration).to_json())
                .map_err(|_| ProtocolError::new(ErrorCode::Unavailable, "connection closed"))?;
            *registered = next;
        }
        ClientMessage::Ack(ack) => match registered {
            Registered::Consume { membership, .. } => membership.ack(ack.positions),
            Registered::Observe { .. } => {}
            Registered::No => return Err(not_registered("ack")),
        },
        ClientMessage::Nack(nack) => match registered {
            Registered::Consume { membership, .. } => membership.nack(nack.position, nack.reason),
            Registered::Observe { .. } => {}
            Registered::No => return Err(not_registered("nack")),
        },
        ClientMessage::Query(query) => {
            tokio::spawn(query::answer(
                bus.pool.clone(),
                bus.writer.head(),
                query,
                query_frames.clone(),
            ));
        }
        ClientMessage::Consistency(request) => {
            let values = bus.writer.values(&request.keys);
            let answer = ConsistencyAnswer {
                request_id: request.request_id,
                values: request.keys.into_iter().zip(values).collect(),
            };
            send(frames, ServerMessage::Consistency(&answer).to_json())
                .map_err(|_| ProtocolError::new(ErrorCode::Unavailable, "connection closed"))?;
        }
    }
    Ok(())
}

/// The next thing to send this connection, by its mode.
enum Outgoing {
    Consumed(Delivery),
    /// A batch, the observer's types, and the head it registered at.
    Observed(Arc<CommittedBatch>, EventTypes, i64),
    /// The observer fell too far behind: events were dropped.
    Lagged,
}

async fn next_delivery(registered: &mut Registered) -> Option<Outgoing> {
    match registered {
        Registered::No => std::future::pending().await,
        Registered::Consume { deliveries, .. } => deliveries.recv().await.map(Outgoing::Consumed),
        Registered::Observe {
            types,
            batches,
            after,
        } => match batches.recv().await {
            Ok(batch) => Some(Outgoing::Observed(batch, types.clone(), *after)),
            Err(broadcast::error::RecvError::Lagged(_)) => Some(Outgoing::Lagged),
            Err(broadcast::error::RecvError::Closed) => std::future::pending().await,
        },
    }
}

/// Why a connection is closed, as its close frame says.
type CloseReason = (u16, &'static str);

const NOT_READING: CloseReason = (
    close_code::POLICY,
    "the client does not read what it is sent",
);

fn forward(frames: &Outbox, outgoing: Outgoing) -> Result<(), CloseReason> {
    match outgoing {
        Outgoing::Consumed(delivery) => {
            let frame = EventFrame {
                event: &delivery.event,
                delivery: delivery.delivery,
            };
            send(frames, ServerMessage::Event(frame).to_json()).map_err(|()| NOT_READING)
        }
        Outgoing::Observed(batch, types, after) => {
            for event in batch
                .events
                .iter()
                .filter(|e| e.position > after && types.contains(&e.event_type))
            {
                let frame = EventFrame { event, delivery: 1 };
                send(frames, ServerMessage::Event(frame).to_json()).map_err(|()| NOT_READING)?;
            }
            Ok(())
        }
        Outgoing::Lagged => {
            let error = ErrorMessage {
                request_id: None,
                code: ErrorCode::Unavailable,
                message:
                    "this observer fell behind and missed events; reconnect and query what you need"
                        .into(),
            };
            let _ = send(frames, ServerMessage::Error(&error).to_json());
            Err((close_code::AGAIN, "observer fell behind"))
        }
    }
}

fn send(frames: &Outbox, json: String) -> Result<(), ()> {
    frames.push(Message::text(json))
}

fn reply_error(frames: &Outbox, error: ProtocolError) -> Result<(), ()> {
    let message = ErrorMessage {
        request_id: error.request_id,
        code: error.code,
        message: error.message,
    };
    send(frames, ServerMessage::Error(&message).to_json())
}

fn not_registered(what: &str) -> ProtocolError {
    ProtocolError::new(
        ErrorCode::NotRegistered,
        format!("{what} needs a registered connection: send register first"),
    )
}

fn shutting_down_receipt(request_id: &str) -> Receipt {
    Receipt {
        request_id: request_id.to_owned(),
        status: ReceiptStatus::Rejected,
        events: Vec::new(),
        code: Some(ErrorCode::ShuttingDown),
        message: Some("the bus stopped before storing the message".into()),
    }
}

/// A frame or message over the size limit.
fn is_too_big(error: axum::Error) -> bool {
    use tokio_tungstenite::tungstenite::Error;
    matches!(
        error.into_inner().downcast_ref::<Error>(),
        Some(Error::Capacity(_))
    )
}
