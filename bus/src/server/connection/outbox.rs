//! The frames a connection sends, in order, never waiting: the bus never
//! stops reading a socket to wait for its writes, so that neither side can
//! block the other. What waits for the socket is bounded in bytes; a client
//! that leaves more than that unread is closed. Deliveries to a consumer
//! stop well before that, at [`PAUSE_DELIVERIES_BYTES`], and go on as the
//! socket drains: a slow consumer of large events is slowed, not closed.

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use axum::extract::ws::{CloseFrame, Message};
use tokio::sync::{Notify, mpsc};

/// Bytes of frames waiting for one client before it counts as not reading.
pub const MAX_BACKLOG_BYTES: usize = 16 * 1024 * 1024;
/// Bytes waiting past which no more deliveries are taken for a consumer.
pub const PAUSE_DELIVERIES_BYTES: usize = 4 * 1024 * 1024;

#[derive(Clone)]
pub struct Outbox {
    frames: mpsc::UnboundedSender<Message>,
    /// Bytes queued and not yet written to the socket.
    backlog: Arc<AtomicUsize>,
    /// Told whenever the socket has taken frames.
    drained: Arc<Notify>,
}

/// The receiving half, for the task that writes the socket.
pub struct OutboxReader {
    pub frames: mpsc::UnboundedReceiver<Message>,
    backlog: Arc<AtomicUsize>,
    drained: Arc<Notify>,
}

/// The client is too far behind: the frame was not queued.
#[derive(Debug)]
pub struct Full;

pub fn outbox() -> (Outbox, OutboxReader) {
    let (frames, receiver) = mpsc::unbounded_channel();
    let backlog = Arc::new(AtomicUsize::new(0));
    let drained = Arc::new(Notify::new());
    (
        Outbox {
            frames,
            backlog: backlog.clone(),
            drained: drained.clone(),
        },
        OutboxReader {
            frames: receiver,
            backlog,
            drained,
        },
    )
}

impl Outbox {
    /// Queues a text frame, unless the backlog is full.
    pub fn push(&self, json: String) -> Result<(), Full> {
        let bytes = json.len();
        if self.backlog.fetch_add(bytes, Ordering::AcqRel) + bytes > MAX_BACKLOG_BYTES {
            self.backlog.fetch_sub(bytes, Ordering::AcqRel);
            return Err(Full);
        }
        self.frames.send(Message::text(json)).map_err(|_| Full)
    }

    /// Queues a last frame whatever the backlog (the error that explains a close).
    pub fn push_last(&self, json: String) {
        self.backlog.fetch_add(json.len(), Ordering::AcqRel);
        let _ = self.frames.send(Message::text(json));
    }

    /// Whether deliveries should wait for the socket to drain.
    pub fn is_filling(&self) -> bool {
        self.backlog.load(Ordering::Acquire) >= PAUSE_DELIVERIES_BYTES
    }

    /// Resolves once the socket has taken frames.
    pub async fn drained(&self) {
        self.drained.notified().await;
    }

    pub fn close(&self, code: u16, reason: &'static str) {
        let _ = self.frames.send(Message::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        })));
    }
}

impl OutboxReader {
    /// A frame has been written to the socket.
    pub fn written(&self, frame: &Message) {
        if let Message::Text(text) = frame {
            self.backlog.fetch_sub(text.len(), Ordering::AcqRel);
        }
    }

    /// A burst of frames went to the socket.
    pub fn flushed(&self) {
        self.drained.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_frames_past_the_byte_limit_and_counts_written_ones_out() {
        let (outbox, mut reader) = outbox();
        let big = "x".repeat(MAX_BACKLOG_BYTES / 2);
        assert!(outbox.push(big.clone()).is_ok());
        assert!(outbox.push(big.clone()).is_ok());
        assert!(outbox.push("y".into()).is_err(), "full");
        let frame = reader.frames.try_recv().unwrap();
        reader.written(&frame);
        assert!(outbox.push("y".into()).is_ok(), "room again");
    }
}
