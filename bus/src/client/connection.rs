//! The client's background task: owns the WebSocket, reconnects, and
//! matches answers to requests.

use std::collections::{BTreeMap, HashMap, VecDeque};

use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use tokio::{
    net::TcpStream,
    sync::{mpsc, oneshot},
};
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream, connect_async_with_config,
    tungstenite::{Message, client::IntoClientRequest, http::HeaderValue},
};

use super::{
    ClientConfig, ClientError, QueryFrom, QueryItem, QuerySpec,
    inbound::{ServerFrame, parse},
};
use crate::protocol::{DeliveredEvent, ErrorMessage, Limits, NewEvent, Receipt};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;
type ValuesReply = oneshot::Sender<Result<BTreeMap<String, Option<i64>>, ClientError>>;
type QueryItems = mpsc::Sender<Result<QueryItem, ClientError>>;

pub enum Command {
    Publish {
        events: Vec<NewEvent>,
        reply: oneshot::Sender<Result<Receipt, ClientError>>,
    },
    Consistency {
        keys: Vec<String>,
        reply: ValuesReply,
    },
    Query {
        spec: QuerySpec,
        items: QueryItems,
    },
    Ack {
        positions: Vec<i64>,
    },
    Nack {
        position: i64,
        reason: String,
    },
    Head {
        reply: oneshot::Sender<i64>,
    },
    Close,
}

/// Connects and registers once (failing like the caller would expect), then
/// hands the connection to the background task.
pub async fn start(
    config: ClientConfig,
) -> Result<
    (
        mpsc::UnboundedSender<Command>,
        mpsc::UnboundedReceiver<DeliveredEvent>,
    ),
    ClientError,
> {
    let (socket, head) = open(&config).await?;
    let (commands, receiver) = mpsc::unbounded_channel();
    let (events, events_receiver) = mpsc::unbounded_channel();
    let task = Task {
        config,
        commands: receiver,
        events,
        publishes: BTreeMap::new(),
        consistency: BTreeMap::new(),
        queries: HashMap::new(),
        waiting_consistency: VecDeque::new(),
        waiting_queries: VecDeque::new(),
        head,
        next_id: 0,
    };
    tokio::spawn(task.run(socket));
    Ok((commands, events_receiver))
}

/// Opens the socket and registers: the head position it reported.
async fn open(config: &ClientConfig) -> Result<(Socket, i64), ClientError> {
    let mut request = config
        .url
        .as_str()
        .into_client_request()
        .map_err(|e| ClientError::Connect(e.to_string()))?;
    if let Some(token) = &config.token {
        let value = HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|_| ClientError::Connect("the token is not a valid header value".into()))?;
        request.headers_mut().insert("authorization", value);
    }
    // Nagle off: a publish or an ack leaves at once.
    let (mut socket, _) = connect_async_with_config(request, None, true)
        .await
        .map_err(|e| ClientError::Connect(e.to_string()))?;
    let Some(registration) = &config.registration else {
        return Ok((socket, 0));
    };
    #[derive(Serialize)]
    struct Register<'a> {
        message_type: &'static str,
        client_type: &'a str,
        event_types: &'a [String],
        mode: crate::protocol::Mode,
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        skip_markers: bool,
    }
    let frame = serde_json::to_string(&Register {
        message_type: "register",
        client_type: &registration.client_type,
        event_types: &registration.event_types,
        mode: registration.mode,
        skip_markers: registration.skip_markers,
    })
    .expect("a register message serialises");
    socket
        .send(Message::text(frame))
        .await
        .map_err(|e| ClientError::Connect(e.to_string()))?;
    while let Some(message) = socket.next().await {
        let message = message.map_err(|e| ClientError::Connect(e.to_string()))?;
        let Message::Text(text) = message else {
            continue;
        };
        match parse(text.as_str()) {
            Ok(ServerFrame::Registration(registration)) => {
                return Ok((socket, registration.head_position));
            }
            Ok(ServerFrame::Error(error)) => {
                return Err(ClientError::Refused {
                    code: error.code,
                    message: error.message,
                });
            }
            _ => continue,
        }
    }
    Err(ClientError::Connect(
        "the bus closed the connection during registration".into(),
    ))
}

struct Task {
    config: ClientConfig,
    commands: mpsc::UnboundedReceiver<Command>,
    events: mpsc::UnboundedSender<DeliveredEvent>,
    /// Unanswered `new` messages by request id: the frame, to send again
    /// after a reconnect, and who waits for the receipt.
    publishes: BTreeMap<String, (String, oneshot::Sender<Result<Receipt, ClientError>>)>,
    consistency: BTreeMap<String, (String, ValuesReply)>,
    queries: HashMap<String, QueryItems>,
    /// Requests beyond what the protocol lets one connection have open:
    /// sent in order as answers make room, so callers never see the bus
    /// refuse them for this connection's sake.
    waiting_consistency: VecDeque<(Vec<String>, ValuesReply)>,
    waiting_queries: VecDeque<(QuerySpec, QueryItems)>,
    head: i64,
    next_id: u64,
}

enum Outcome {
    Closed,
    Disconnected,
}

impl Task {
    async fn run(mut self, socket: Socket) {
        let mut socket = Some(socket);
        let mut backoff = self.config.min_backoff;
        loop {
            let current = match socket.take() {
                Some(socket) => socket,
                None => match self.reconnect(&mut backoff).await {
                    Some(socket) => socket,
                    None => return,
                },
            };
            match self.serve(current).await {
                Outcome::Closed => return,
                Outcome::Disconnected => {
                    let waiting = self.waiting_queries.drain(..).map(|(_, items)| items);
                    for items in self.queries.drain().map(|(_, items)| items).chain(waiting) {
                        let _ = items.send(Err(ClientError::Disconnected)).await;
                    }
                }
            }
        }
    }

    /// Reconnects with growing delays; meanwhile takes commands. `None` when
    /// the client was closed.
    async fn reconnect(&mut self, backoff: &mut std::time::Duration) -> Option<Socket> {
        loop {
            let jitter = rand::random_range(0.5..1.0);
            let wait = tokio::time::sleep(backoff.mul_f64(jitter));
            tokio::pin!(wait);
            loop {
                tokio::select! {
                    () = &mut wait => break,
                    command = self.commands.recv() => match command {
                        None | Some(Command::Close) => return None,
                        Some(command) => self.queue(command),
                    },
                }
            }
            match open(&self.config).await {
                Ok((socket, head)) => {
                    self.head = head;
                    *backoff = self.config.min_backoff;
                    tracing::info!(url = %self.config.url, "reconnected to the bus");
                    return Some(socket);
                }
                Err(error) => {
                    tracing::warn!(%error, "could not reconnect to the bus");
                    *backoff = (*backoff * 2).min(self.config.max_backoff);
                }
            }
        }
    }

    /// Takes a command while disconnected: requests wait to be sent.
    fn queue(&mut self, command: Command) {
        match command {
            Command::Publish { events, reply } => {
                let (id, frame) = self.publish_frame(events);
                self.publishes.insert(id, (frame, reply));
            }
            Command::Consistency { keys, reply } => {
                if self.consistency.len() < Limits::default().max_lookups_per_connection {
                    let (id, frame) = self.consistency_frame(keys);
                    self.consistency.insert(id, (frame, reply));
                } else {
                    self.waiting_consistency.push_back((keys, reply));
                }
            }
            Command::Query { items, .. } => {
                let _ = items.try_send(Err(ClientError::Disconnected));
            }
            Command::Head { reply } => {
                let _ = reply.send(self.head);
            }
            // The bus redelivers unacknowledged events after a reconnect.
            Command::Ack { .. } | Command::Nack { .. } | Command::Close => {}
        }
    }

    async fn serve(&mut self, mut socket: Socket) -> Outcome {
        // Whatever waited during the disconnect goes first, in order;
        // requests whose caller gave up are dropped.
        self.publishes.retain(|_, (_, reply)| !reply.is_closed());
        self.consistency.retain(|_, (_, reply)| !reply.is_closed());
        let resend: Vec<String> = self
            .publishes
            .values()
            .map(|(frame, _)| frame.clone())
            .chain(self.consistency.values().map(|(frame, _)| frame.clone()))
            .collect();
        for frame in resend {
            if socket.send(Message::text(frame)).await.is_err() {
                return Outcome::Disconnected;
            }
        }
        if self.send_waiting(&mut socket).await.is_err() {
            return Outcome::Disconnected;
        }
        loop {
            tokio::select! {
                command = self.commands.recv() => {
                    let Some(mut command) = command else {
                        let _ = socket.close(None).await;
                        return Outcome::Closed;
                    };
                    // Everything already queued goes out with one flush.
                    loop {
                        match self.frame_for(command) {
                            Ok(Some(frame)) => {
                                if socket.feed(Message::text(frame)).await.is_err() {
                                    return Outcome::Disconnected;
                                }
                            }
                            Ok(None) => {}
                            Err(()) => {
                                let _ = socket.close(None).await;
                                return Outcome::Closed;
                            }
                        }
                        match self.commands.try_recv() {
                            Ok(next) => command = next,
                            Err(_) => break,
                        }
                    }
                    if socket.flush().await.is_err() {
                        return Outcome::Disconnected;
                    }
                }
                message = socket.next() => match message {
                    Some(Ok(Message::Text(text))) => {
                        self.dispatch(text.as_str()).await;
                        if self.send_waiting(&mut socket).await.is_err() {
                            return Outcome::Disconnected;
                        }
                    }
                    Some(Ok(Message::Close(frame))) => {
                        tracing::info!(?frame, "the bus closed the connection");
                        return Outcome::Disconnected;
                    }
                    Some(Ok(_)) => {}
                    Some(Err(error)) => {
                        tracing::warn!(%error, "lost the connection to the bus");
                        return Outcome::Disconnected;
                    }
                    None => return Outcome::Disconnected,
                },
            }
        }
    }

    /// The frame a command sends; `Err` for `Close`.
    fn frame_for(&mut self, command: Command) -> Result<Option<String>, ()> {
        Ok(Some(match command {
            Command::Publish { events, reply } => {
                let (id, frame) = self.publish_frame(events);
                self.publishes.insert(id, (frame.clone(), reply));
                frame
            }
            Command::Consistency { keys, reply } => {
                if self.consistency.len() >= Limits::default().max_lookups_per_connection {
                    self.waiting_consistency.push_back((keys, reply));
                    return Ok(None);
                }
                self.open_consistency(keys, reply)
            }
            Command::Query { spec, items } => {
                if self.queries.len() >= Limits::default().max_queries_per_connection {
                    self.waiting_queries.push_back((spec, items));
                    return Ok(None);
                }
                self.open_query(&spec, items)
            }
            Command::Ack { positions } => {
                serde_json::json!({"message_type": "ack", "positions": positions}).to_string()
            }
            Command::Nack { position, reason } => {
                serde_json::json!({"message_type": "nack", "position": position, "reason": reason})
                    .to_string()
            }
            Command::Head { reply } => {
                let _ = reply.send(self.head);
                return Ok(None);
            }
            Command::Close => return Err(()),
        }))
    }

    fn open_consistency(&mut self, keys: Vec<String>, reply: ValuesReply) -> String {
        let (id, frame) = self.consistency_frame(keys);
        self.consistency.insert(id, (frame.clone(), reply));
        frame
    }

    fn open_query(&mut self, spec: &QuerySpec, items: QueryItems) -> String {
        let id = self.request_id("q");
        let frame = query_frame(&id, spec);
        self.queries.insert(id, items);
        frame
    }

    /// Sends waiting requests while the connection has room for them;
    /// those whose caller gave up are dropped.
    async fn send_waiting(&mut self, socket: &mut Socket) -> Result<(), ()> {
        let limits = Limits::default();
        let mut frames = Vec::new();
        while self.consistency.len() < limits.max_lookups_per_connection {
            let Some((keys, reply)) = self.waiting_consistency.pop_front() else {
                break;
            };
            if !reply.is_closed() {
                frames.push(self.open_consistency(keys, reply));
            }
        }
        while self.queries.len() < limits.max_queries_per_connection {
            let Some((spec, items)) = self.waiting_queries.pop_front() else {
                break;
            };
            if !items.is_closed() {
                frames.push(self.open_query(&spec, items));
            }
        }
        if frames.is_empty() {
            return Ok(());
        }
        for frame in frames {
            socket.feed(Message::text(frame)).await.map_err(drop)?;
        }
        socket.flush().await.map_err(drop)
    }

    async fn dispatch(&mut self, text: &str) {
        let frame = match parse(text) {
            Ok(frame) => frame,
            Err(error) => {
                tracing::warn!(%error, "the bus sent a message this client does not understand");
                return;
            }
        };
        match frame {
            ServerFrame::Event(event) => {
                let _ = self.events.send(event);
            }
            ServerFrame::Receipt(receipt) => {
                if let Some((_, reply)) = self.publishes.remove(&receipt.request_id) {
                    let _ = reply.send(Ok(receipt));
                }
            }
            ServerFrame::Consistency(answer) => {
                if let Some((_, reply)) = self.consistency.remove(&answer.request_id) {
                    let _ = reply.send(Ok(answer.values));
                }
            }
            ServerFrame::Rebuild(rebuild) => {
                if let Some(items) = self.queries.get(&rebuild.request_id) {
                    // Waiting here is the back-pressure: while the reader
                    // does not take a batch, this connection reads nothing
                    // more and the bus's query waits on the socket.
                    if items
                        .send(Ok(QueryItem::Batch(rebuild.events)))
                        .await
                        .is_err()
                    {
                        self.queries.remove(&rebuild.request_id);
                    }
                }
            }
            ServerFrame::RebuildComplete(complete) => {
                if let Some(items) = self.queries.remove(&complete.request_id) {
                    let _ = items
                        .send(Ok(QueryItem::Complete {
                            count: complete.count,
                            last_position: complete.last_position,
                        }))
                        .await;
                }
            }
            ServerFrame::Error(error) => self.refused(error).await,
            ServerFrame::Registration(registration) => self.head = registration.head_position,
        }
    }

    async fn refused(&mut self, error: ErrorMessage) {
        let refusal = || ClientError::Refused {
            code: error.code,
            message: error.message.clone(),
        };
        let Some(id) = &error.request_id else {
            tracing::warn!(code = ?error.code, message = %error.message, "the bus reported an error");
            return;
        };
        if let Some((_, reply)) = self.publishes.remove(id) {
            let _ = reply.send(Err(refusal()));
        } else if let Some((_, reply)) = self.consistency.remove(id) {
            let _ = reply.send(Err(refusal()));
        } else if let Some(items) = self.queries.remove(id) {
            let _ = items.send(Err(refusal())).await;
        }
    }

    /// Request ids sort in the order they were made, so that resends keep it.
    fn request_id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}-{:012}", self.next_id)
    }

    fn publish_frame(&mut self, events: Vec<NewEvent>) -> (String, String) {
        #[derive(Serialize)]
        struct New<'a> {
            message_type: &'static str,
            request_id: &'a str,
            events: Vec<NewEvent>,
        }
        let id = self.request_id("p");
        let frame = serde_json::to_string(&New {
            message_type: "new",
            request_id: &id,
            events,
        })
        .expect("events serialise");
        (id, frame)
    }

    fn consistency_frame(&mut self, keys: Vec<String>) -> (String, String) {
        let id = self.request_id("c");
        let frame =
            serde_json::json!({"message_type": "consistency", "request_id": id, "keys": keys})
                .to_string();
        (id, frame)
    }
}

fn query_frame(id: &str, spec: &QuerySpec) -> String {
    let mut frame = serde_json::json!({
        "message_type": "query",
        "request_id": id,
        "event_types": spec.event_types,
    });
    match &spec.start {
        QueryFrom::Since(since) => frame["since"] = since.clone().into(),
        QueryFrom::AfterPosition(position) => frame["after_position"] = (*position).into(),
    }
    if let Some(key) = &spec.key {
        frame["key"] = key.clone().into();
    }
    if let Some(limit) = spec.limit {
        frame["limit"] = limit.into();
    }
    frame.to_string()
}
