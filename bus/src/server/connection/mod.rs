//! One client's WebSocket: reads its messages, answers them, and sends it
//! events (consumed or observed), receipts in order, and query answers.
//!
//! - `outbox`: the frames waiting for the socket, bounded in bytes.
//! - `requests`: what each client message does, within the scope of the
//!   connection's token.

mod outbox;
mod requests;

use std::{
    net::SocketAddr,
    pin::{Pin, pin},
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use axum::extract::ws::{Message, WebSocket, close_code};
use futures_util::{SinkExt, StreamExt, stream::FuturesOrdered};
use tokio::sync::{broadcast, mpsc, oneshot};

use super::{
    BusState,
    subscription::{Delivery, Membership},
    writer::{CommittedBatch, receipts::unknown},
};
use crate::{
    credentials::Scope,
    protocol::{
        ErrorCode, ErrorMessage, EventFrame, EventTypes, ProtocolError, Receipt, ServerMessage,
        parse_client_message,
    },
};
use outbox::{Outbox, outbox};
use requests::Session;

/// Query answers waiting for the socket, each at most one frame's bytes:
/// a full queue slows the query down.
const QUERY_FRAMES: usize = 4;

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

/// A receipt: decided already (a refusal), or on its way from the writer;
/// `unknown` if the writer stopped without answering.
enum PendingReceipt {
    Ready(Option<Receipt>),
    Waiting {
        request_id: String,
        receipt: oneshot::Receiver<Receipt>,
    },
}

impl Future for PendingReceipt {
    type Output = Receipt;

    fn poll(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<Receipt> {
        match self.get_mut() {
            Self::Ready(receipt) => Poll::Ready(receipt.take().expect("polled once after ready")),
            Self::Waiting {
                request_id,
                receipt,
            } => Pin::new(receipt).poll(context).map(|receipt| {
                receipt.unwrap_or_else(|_| unknown(request_id, ErrorCode::ShuttingDown))
            }),
        }
    }
}

/// `peer`: the client's address, recorded with the events it publishes.
pub async fn serve(socket: WebSocket, bus: Arc<BusState>, scope: Arc<Scope>, peer: SocketAddr) {
    metrics::gauge!("bus_connections").increment(1);
    let (mut sink, mut stream) = socket.split();
    let (frames, mut outbox_reader) = outbox();
    let (query_frames, mut query_outbox) = mpsc::channel::<Message>(QUERY_FRAMES);
    // Writes whatever is queued, then flushes once: one system call for a
    // burst of receipts and events rather than one each.
    let sender = tokio::spawn(async move {
        // Only the outbox's frames count against its backlog; query answers
        // are bounded by their own channel.
        'writing: loop {
            let frame = tokio::select! {
                biased;
                Some(frame) = outbox_reader.frames.recv() => {
                    outbox_reader.written(&frame);
                    frame
                }
                Some(frame) = query_outbox.recv() => frame,
                else => break,
            };
            let mut closing = matches!(frame, Message::Close(_));
            if sink.feed(frame).await.is_err() {
                break;
            }
            while !closing {
                let frame = match outbox_reader.frames.try_recv() {
                    Ok(frame) => {
                        outbox_reader.written(&frame);
                        frame
                    }
                    Err(_) => match query_outbox.try_recv() {
                        Ok(frame) => frame,
                        Err(_) => break,
                    },
                };
                closing = matches!(frame, Message::Close(_));
                if sink.feed(frame).await.is_err() {
                    break 'writing;
                }
            }
            if sink.flush().await.is_err() || closing {
                break;
            }
            outbox_reader.flushed();
        }
        let _ = sink.close().await;
    });

    let mut session = Session::new(bus.clone(), scope, peer, frames.clone(), query_frames);
    let mut receipts = FuturesOrdered::new();
    let mut shutdown = pin!(bus.shutdown.cancelled());
    let close = loop {
        tokio::select! {
            biased;
            () = &mut shutdown => break Some((close_code::AWAY, "the bus is shutting down")),
            Some(receipt) = receipts.next(), if !receipts.is_empty() => {
                let receipt: Receipt = receipt;
                if frames.push(ServerMessage::Receipt(&receipt).to_json()).is_err() {
                    break Some(NOT_READING);
                }
            }
            Some(delivery) = next_delivery(&mut session.registered),
                if !(session.consumes() && frames.is_filling()) => {
                if let Err(reason) = forward(&frames, delivery) {
                    break Some(reason);
                }
            }
            () = frames.drained(), if session.consumes() && frames.is_filling() => {}
            message = stream.next() => match message {
                Some(Ok(Message::Text(text))) => {
                    let outcome = match parse_client_message(text.as_str(), &bus.config.limits) {
                        Ok(message) => match session.handle(message, text.len(), &mut receipts).await {
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
            frames.push_last(ServerMessage::Receipt(&receipt).to_json());
        }
        frames.close(code, reason);
    }
    drop(session);
    drop(frames);
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

const TOO_SLOW: CloseReason = (close_code::AGAIN, "observer fell behind");

fn forward(frames: &Outbox, outgoing: Outgoing) -> Result<(), CloseReason> {
    match outgoing {
        Outgoing::Consumed(delivery) => {
            let frame = EventFrame {
                event: &delivery.event,
                delivery: delivery.delivery,
                skipped: delivery.skipped,
            };
            frames
                .push(ServerMessage::Event(frame).to_json())
                .map_err(|_| NOT_READING)
        }
        Outgoing::Observed(batch, types, after) => {
            for event in batch
                .events
                .iter()
                .filter(|e| e.position > after && types.contains(&e.event_type))
            {
                let frame = EventFrame {
                    event,
                    delivery: 1,
                    skipped: false,
                };
                if frames.push(ServerMessage::Event(frame).to_json()).is_err() {
                    return Err(too_slow(frames));
                }
            }
            Ok(())
        }
        Outgoing::Lagged => Err(too_slow(frames)),
    }
}

/// Tells an observer it missed events, before it is closed.
fn too_slow(frames: &Outbox) -> CloseReason {
    let error = ErrorMessage {
        request_id: None,
        code: ErrorCode::TooSlow,
        message: "this observer fell too far behind and missed events; reconnect and query what \
                  you need"
            .into(),
    };
    frames.push_last(ServerMessage::Error(&error).to_json());
    TOO_SLOW
}

fn reply_error(frames: &Outbox, error: ProtocolError) -> Result<(), outbox::Full> {
    let message = ErrorMessage {
        request_id: error.request_id,
        code: error.code,
        message: error.message,
    };
    frames.push(ServerMessage::Error(&message).to_json())
}

/// A frame or message over the size limit.
fn is_too_big(error: axum::Error) -> bool {
    use tokio_tungstenite::tungstenite::Error;
    matches!(
        error.into_inner().downcast_ref::<Error>(),
        Some(Error::Capacity(_))
    )
}
