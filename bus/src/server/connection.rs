//! One client's WebSocket: reads its messages, answers them, and sends it
//! events (consumed or observed), receipts in order, and query answers.

use std::{pin::pin, sync::Arc};

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

/// Frames waiting for the socket; a full queue slows the sender down.
const OUTBOX: usize = 1024;

enum Registered {
    No,
    Consume {
        membership: Membership,
        deliveries: mpsc::UnboundedReceiver<Delivery>,
    },
    Observe {
        types: EventTypes,
        batches: broadcast::Receiver<Arc<CommittedBatch>>,
    },
}

pub async fn serve(socket: WebSocket, bus: Arc<BusState>) {
    metrics::gauge!("bus_connections").increment(1);
    let (mut sink, mut stream) = socket.split();
    let (frames, mut outbox) = mpsc::channel::<Message>(OUTBOX);
    // Writes whatever is queued, then flushes once: one system call for a
    // burst of receipts and events rather than one each.
    let sender = tokio::spawn(async move {
        'writing: while let Some(frame) = outbox.recv().await {
            let mut closing = matches!(frame, Message::Close(_));
            if sink.feed(frame).await.is_err() {
                break;
            }
            while !closing {
                let Ok(frame) = outbox.try_recv() else { break };
                closing = matches!(frame, Message::Close(_));
                if sink.feed(frame).await.is_err() {
                    break 'writing;
                }
            }
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
                let receipt: Result<Receipt, oneshot::error::RecvError> = receipt;
                let receipt = receipt.unwrap_or_else(|_| shutting_down_receipt());
                if send(&frames, ServerMessage::Receipt(&receipt).to_json()).await.is_err() {
                    break None;
                }
            }
            Some(delivery) = next_delivery(&mut registered) => {
                if forward(&frames, delivery).await.is_err() {
                    break None;
                }
            }
            message = stream.next() => match message {
                Some(Ok(Message::Text(text))) => {
                    match parse_client_message(text.as_str(), &bus.config.limits) {
                        Ok(message) => {
                            if let Err(error) = handle(message, &bus, &frames, &mut registered, &mut receipts).await
                                && reply_error(&frames, error).await.is_err()
                            {
                                break None;
                            }
                        }
                        Err(error) => {
                            if reply_error(&frames, error).await.is_err() {
                                break None;
                            }
                        }
                    }
                }
                Some(Ok(Message::Binary(_))) => {
                    let error = ProtocolError::new(ErrorCode::BadJson, "frames must be UTF-8 text, not binary");
                    if reply_error(&frames, error).await.is_err() {
                        break None;
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
            let receipt = receipt.unwrap_or_else(|_| shutting_down_receipt());
            let _ = send(&frames, ServerMessage::Receipt(&receipt).to_json()).await;
        }
        let _ = frames
            .send(Message::Close(Some(CloseFrame {
                code,
                reason: reason.into(),
            })))
            .await;
    }
    drop(registered);
    drop(frames);
    let _ = sender.await;
    metrics::gauge!("bus_connections").decrement(1);
}

async fn handle(
    message: ClientMessage,
    bus: &BusState,
    frames: &mpsc::Sender<Message>,
    registered: &mut Registered,
    receipts: &mut FuturesOrdered<oneshot::Receiver<Receipt>>,
) -> Result<(), ProtocolError> {
    match message {
        ClientMessage::New(new) => {
            let (reply, receipt) = oneshot::channel();
            let request = AppendRequest {
                request_id: new.request_id,
                events: new.events,
                reply,
            };
            if let Err(request) = bus.writer.append(request).await {
                return Err(ProtocolError::new(
                    ErrorCode::ShuttingDown,
                    "the bus is shutting down",
                )
                .with_request_id(Some(request.request_id)));
            }
            receipts.push_back(receipt);
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
                .await
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
                frames.clone(),
            ));
        }
        ClientMessage::Consistency(request) => {
            let values = bus.writer.values(&request.keys);
            let answer = ConsistencyAnswer {
                request_id: request.request_id,
                values: request.keys.into_iter().zip(values).collect(),
            };
            send(frames, ServerMessage::Consistency(&answer).to_json())
                .await
                .map_err(|_| ProtocolError::new(ErrorCode::Unavailable, "connection closed"))?;
        }
    }
    Ok(())
}

/// The next thing to send this connection, by its mode.
enum Outgoing {
    Consumed(Delivery),
    Observed(Arc<CommittedBatch>, EventTypes),
    /// The observer fell too far behind: events were dropped.
    Lagged,
}

async fn next_delivery(registered: &mut Registered) -> Option<Outgoing> {
    match registered {
        Registered::No => std::future::pending().await,
        Registered::Consume { deliveries, .. } => deliveries.recv().await.map(Outgoing::Consumed),
        Registered::Observe { types, batches } => match batches.recv().await {
            Ok(batch) => Some(Outgoing::Observed(batch, types.clone())),
            Err(broadcast::error::RecvError::Lagged(_)) => Some(Outgoing::Lagged),
            Err(broadcast::error::RecvError::Closed) => std::future::pending().await,
        },
    }
}

async fn forward(frames: &mpsc::Sender<Message>, outgoing: Outgoing) -> Result<(), ()> {
    match outgoing {
        Outgoing::Consumed(delivery) => {
            let frame = EventFrame {
                event: &delivery.event,
                delivery: delivery.delivery,
            };
            send(frames, ServerMessage::Event(frame).to_json()).await
        }
        Outgoing::Observed(batch, types) => {
            for event in batch
                .events
                .iter()
                .filter(|e| types.contains(&e.event_type))
            {
                let frame = EventFrame { event, delivery: 1 };
                send(frames, ServerMessage::Event(frame).to_json()).await?;
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
            let _ = send(frames, ServerMessage::Error(&error).to_json()).await;
            let _ = frames
                .send(Message::Close(Some(CloseFrame {
                    code: close_code::AGAIN,
                    reason: "observer fell behind".into(),
                })))
                .await;
            Err(())
        }
    }
}

async fn send(frames: &mpsc::Sender<Message>, json: String) -> Result<(), ()> {
    frames.send(Message::text(json)).await.map_err(|_| ())
}

async fn reply_error(frames: &mpsc::Sender<Message>, error: ProtocolError) -> Result<(), ()> {
    let message = ErrorMessage {
        request_id: error.request_id,
        code: error.code,
        message: error.message,
    };
    send(frames, ServerMessage::Error(&message).to_json()).await
}

fn not_registered(what: &str) -> ProtocolError {
    ProtocolError::new(
        ErrorCode::NotRegistered,
        format!("{what} needs a registered connection: send register first"),
    )
}

fn shutting_down_receipt() -> Receipt {
    Receipt {
        request_id: String::new(),
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
