//! What the bus's black-box tests share: a database of their own, the real
//! `bus` binary, and a raw WebSocket client that speaks JSON frames.
#![allow(dead_code, unused_imports)] // each test file uses its own part of this module

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    time::Duration,
};

use futures_util::{SinkExt, StreamExt};
use nix::{
    sys::signal::{Signal, kill},
    unistd::Pid,
};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream, connect_async,
    tungstenite::{Message, client::IntoClientRequest, http::HeaderValue},
};

/// How long a test waits for a frame that should come promptly.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// The development token every test bus accepts unless a test gives its
/// own credentials: it may do everything.
pub const ADMIN_TOKEN: &str = "test-admin-token";

pub use testkit::{TestDb, eventually};

/// A plain HTTP request to the bus: `(status, body)`.
pub async fn http(
    bus: &BusProcess,
    method: &str,
    path: &str,
    token: Option<&str>,
) -> (u16, String) {
    http_json(bus, method, path, token, None).await
}

/// An HTTP request with a JSON body: `(status, body)`.
pub async fn http_json(
    bus: &BusProcess,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = TcpStream::connect(&bus.address).await.expect("connect");
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let body = body.map(|body| body.to_string());
    let content = match &body {
        Some(body) => format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ),
        None => "Content-Length: 0\r\n".to_owned(),
    };
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: bus\r\n{auth}{content}Connection: close\r\n\r\n{}",
        body.unwrap_or_default()
    );
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("read");
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not HTTP: {response:?}"));
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// The real bus binary, on a free port.
pub struct BusProcess {
    child: Child,
    pub address: String,
    database_url: String,
    args: Vec<String>,
}

impl BusProcess {
    /// Starts `bus` on `db` with extra flags (`--ack-timeout-ms 500`, …).
    /// Unless they give credentials of their own, it accepts [`ADMIN_TOKEN`].
    pub fn start(db: &TestDb, args: &[&str]) -> Self {
        let mut args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        let own_access = args
            .iter()
            .any(|a| matches!(a.as_str(), "--token" | "--credentials" | "--insecure"));
        if !own_access {
            args.extend(["--token".to_owned(), ADMIN_TOKEN.to_owned()]);
        }
        Self::spawn(&db.url, args, "127.0.0.1:0")
    }

    /// Starts `bus` and returns its first line of output when it does not
    /// start (for tests of refusing to start).
    pub fn refuses_to_start(db: &TestDb, args: &[&str]) -> String {
        let output = Command::new(env!("CARGO_BIN_EXE_bus"))
            .args(args)
            .env("DATABASE_URL", &db.url)
            .env("BUS_LISTEN", "127.0.0.1:0")
            .env_remove("BUS_TOKEN")
            .env_remove("BUS_CREDENTIALS")
            .env("RUST_LOG", "error")
            .output()
            .expect("run the bus");
        assert!(!output.status.success(), "the bus started");
        String::from_utf8_lossy(&output.stderr).into_owned()
    }

    /// The pid of the bus process.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn spawn(database_url: &str, args: Vec<String>, listen: &str) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_bus"))
            .args(&args)
            .env("DATABASE_URL", database_url)
            .env("BUS_LISTEN", listen)
            .env_remove("BUS_TOKEN")
            .env_remove("BUS_CREDENTIALS")
            .env("RUST_LOG", "error")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the bus");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read the bus's first line");
        let address = line
            .trim()
            .strip_prefix("bus listening on ")
            .unwrap_or_else(|| panic!("the bus did not start: {line:?}"))
            .to_owned();
        Self {
            child,
            address,
            database_url: database_url.to_owned(),
            args,
        }
    }

    pub fn url(&self) -> String {
        format!("ws://{}/bus", self.address)
    }

    pub fn http(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// SIGKILL: no shutdown of any kind.
    pub fn kill9(&mut self) {
        self.signal(Signal::SIGKILL);
        let _ = self.child.wait();
    }

    /// SIGTERM, then the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        self.signal(Signal::SIGTERM);
        self.child.wait().expect("wait for the bus")
    }

    fn signal(&self, signal: Signal) {
        kill(Pid::from_raw(self.child.id() as i32), signal).expect("signal the bus");
    }

    /// A new bus process on the same database and address; a bus still
    /// running is stopped gracefully first.
    pub fn restart(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            self.terminate();
        }
        let next = Self::spawn(&self.database_url, self.args.clone(), &self.address);
        *self = next;
    }
}

impl Drop for BusProcess {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A WebSocket that speaks raw JSON frames: for testing the protocol itself.
pub struct Raw {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Raw {
    /// Connects with [`ADMIN_TOKEN`].
    pub async fn connect(bus: &BusProcess) -> Self {
        Self::connect_with_token(bus, Some(ADMIN_TOKEN))
            .await
            .expect("connect")
    }

    pub async fn connect_with_token(
        bus: &BusProcess,
        token: Option<&str>,
    ) -> Result<Self, tokio_tungstenite::tungstenite::Error> {
        let mut request = bus.url().into_client_request()?;
        if let Some(token) = token {
            request.headers_mut().insert(
                "authorization",
                HeaderValue::from_str(&format!("Bearer {token}")).expect("header"),
            );
        }
        let (socket, _) = connect_async(request).await?;
        Ok(Self { socket })
    }

    pub async fn send(&mut self, frame: Value) {
        self.send_text(frame.to_string()).await;
    }

    pub async fn send_text(&mut self, text: String) {
        self.socket
            .send(Message::text(text))
            .await
            .expect("send a frame");
    }

    /// The next JSON frame; fails the test after [`PATIENCE`].
    pub async fn recv(&mut self) -> Value {
        match self.next_message().await {
            Message::Text(text) => serde_json::from_str(text.as_str()).expect("frames are JSON"),
            other => panic!("expected a text frame, got {other:?}"),
        }
    }

    /// The next frame of any kind.
    pub async fn next_message(&mut self) -> Message {
        loop {
            let message = tokio::time::timeout(PATIENCE, self.socket.next())
                .await
                .expect("a frame within the patience")
                .expect("the socket is open")
                .expect("a readable frame");
            if !matches!(message, Message::Ping(_) | Message::Pong(_)) {
                return message;
            }
        }
    }

    /// The next JSON frame if one arrives within `wait`.
    pub async fn try_recv(&mut self, wait: Duration) -> Option<Value> {
        match tokio::time::timeout(wait, self.socket.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => {
                Some(serde_json::from_str(text.as_str()).expect("JSON"))
            }
            Ok(other) => panic!("expected a text frame, got {other:?}"),
            Err(_) => None,
        }
    }

    /// True when nothing arrives within `quiet` (what does arrive is lost).
    pub async fn silent_for(&mut self, quiet: Duration) -> bool {
        tokio::time::timeout(quiet, self.socket.next())
            .await
            .is_err()
    }

    pub async fn register(&mut self, client_type: &str, event_types: &[&str], mode: &str) -> Value {
        self.send(
            json!({"message_type": "register", "client_type": client_type,
                         "event_types": event_types, "mode": mode}),
        )
        .await;
        self.registration().await
    }

    /// Registers to consume, asking for skipped events to come marked.
    pub async fn register_with_skip_markers(
        &mut self,
        client_type: &str,
        event_types: &[&str],
    ) -> Value {
        self.send(
            json!({"message_type": "register", "client_type": client_type,
                         "event_types": event_types, "mode": "consume", "skip_markers": true}),
        )
        .await;
        let registration = self.registration().await;
        assert_eq!(registration["skip_markers"], true, "{registration}");
        registration
    }

    async fn registration(&mut self) -> Value {
        let registration = self.recv().await;
        assert_eq!(
            registration["message_type"], "registration",
            "{registration}"
        );
        registration
    }

    /// Publishes one event and returns the receipt.
    pub async fn publish(
        &mut self,
        event_type: &str,
        key: &str,
        value: Value,
        data: Value,
    ) -> Value {
        let request_id = uuid::Uuid::now_v7().to_string();
        self.send(json!({"message_type": "new", "request_id": request_id, "events": [
            {"event_type": event_type, "consistency": {"key": key, "value": value}, "data": data}]}))
            .await;
        let receipt = self.recv().await;
        assert_eq!(receipt["message_type"], "receipt", "{receipt}");
        assert_eq!(receipt["request_id"], request_id.as_str());
        receipt
    }

    /// The next `event` frame.
    pub async fn event(&mut self) -> Value {
        let event = self.recv().await;
        assert_eq!(event["message_type"], "event", "{event}");
        event
    }

    pub async fn ack(&mut self, positions: &[i64]) {
        self.send(json!({"message_type": "ack", "positions": positions}))
            .await;
    }
}
