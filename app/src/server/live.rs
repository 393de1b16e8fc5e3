//! Live updates: the web server observes the bus and tells each browser
//! when something of its person changed.
//!
//! The observer (a bus client in observe mode, with the web server's own
//! scoped token) sees every new account, credit, debit, transfer and
//! loyalty points event.
//! [`LiveHub`] knows which accounts belong to the people who have a page
//! open and sends a short note ("account 7 changed") over their sockets
//! (`GET /live`), never to anyone else's. The page then asks for the new
//! state through its server functions, so the note carries no money and
//! a lost note costs nothing: each (re)connect makes the page catch up.
//!
//! The bus hands an event to the web server and to the services at the
//! same time, so a note is sent only once the service the page will ask
//! shows the change (the account at the event's version, the transfer
//! decided), read with the person's own token; otherwise the page could
//! fetch the state from just before it and stay there.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use axum::{
    extract::{
        State, WebSocketUpgrade,
        ws::{CloseFrame, Message, WebSocket, close_code},
    },
    http::StatusCode,
    response::{IntoResponse, Response},
};
use bus::{
    client::{BusClient, ClientConfig},
    protocol::{ConsistencyValue, EventRecord, Mode},
};
use events::{
    AcceptedTransaction, AccountCreated, ConfirmedCredit, ConfirmedDebit, DomainEvent,
    NectarCredit, NectarDebit, PendingTransaction, RejectedTransaction,
};
use reqwest::Method;
use serde::Deserialize;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use tower_sessions::{Session, session::Id};
use tower_sessions_sqlx_store::PostgresStore;
use trust::scopes::WEB;

use super::{
    services::Services,
    session::{self, SessionUser},
    state::AppState,
};

/// How often an open socket hears from the server even when nothing
/// happens, so that the browser can tell a dead connection from a quiet one.
const HEARTBEAT: Duration = Duration::from_secs(15);

/// How long a note waits for the services to show its change, and how
/// often it looks.
const SETTLE_LIMIT: Duration = Duration::from_secs(3);
const SETTLE_POLL: Duration = Duration::from_millis(15);

/// How often an open socket checks that its session still holds.
const SESSION_CHECK: Duration = Duration::from_secs(60);

/// Notes waiting for one slow browser before it is told to catch up instead.
const BACKLOG: usize = 64;

/// Who is watching, and what of theirs to watch. Cheap to clone.
#[derive(Clone, Default)]
pub struct LiveHub {
    inner: Arc<Mutex<Watchers>>,
}

#[derive(Default)]
struct Watchers {
    /// Username → its sockets' channel and how many sockets share it.
    people: HashMap<String, (broadcast::Sender<Arc<Note>>, usize)>,
    /// Account → owner, for the people in `people` only.
    owners: HashMap<i64, String>,
    /// Undecided transfer → whom its decision concerns (watched people only).
    transfers: HashMap<i64, Vec<String>>,
}

/// A note for a browser, and what must be true of the services' state
/// before it is sent: the bus tells the web server of an event at the same
/// time as it hands it to the services, so a page that asked at once could
/// still read the state from before it.
pub struct Note {
    text: Arc<str>,
    ready: Ready,
}

/// When a note's change can be read from the services.
#[derive(Clone, Copy)]
enum Ready {
    Now,
    /// The accounts service has applied the account's event `version`.
    Account {
        account_id: i64,
        version: i64,
    },
    /// Nectar has applied the account's points event `version`.
    Points {
        account_id: i64,
        version: i64,
    },
    /// The transactions service knows the transfer.
    TransferKnown(i64),
    /// The transactions service has applied its decision.
    TransferDecided(i64),
}

/// One open socket's subscription; dropping it stops the watching.
pub struct Watch {
    hub: LiveHub,
    username: String,
    pub notes: broadcast::Receiver<Arc<Note>>,
}

impl Drop for Watch {
    fn drop(&mut self) {
        let mut watchers = self.hub.lock();
        let Some((_, count)) = watchers.people.get_mut(&self.username) else {
            return;
        };
        *count -= 1;
        if *count == 0 {
            watchers.people.remove(&self.username);
            let username = &self.username;
            watchers.owners.retain(|_, owner| owner != username);
            watchers.transfers.retain(|_, people| {
                people.retain(|person| person != username);
                !people.is_empty()
            });
        }
    }
}

impl LiveHub {
    fn lock(&self) -> MutexGuard<'_, Watchers> {
        // A panic while holding the lock leaves plain maps behind, still usable.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Starts watching `username` for one socket. Their accounts come next
    /// ([`LiveHub::own`]): an account opened meanwhile is caught already.
    pub fn watch(&self, username: &str) -> Watch {
        let mut watchers = self.lock();
        let (sender, count) = watchers
            .people
            .entry(username.to_owned())
            .or_insert_with(|| (broadcast::channel(BACKLOG).0, 0));
        *count += 1;
        let notes = sender.subscribe();
        Watch {
            hub: self.clone(),
            username: username.to_owned(),
            notes,
        }
    }

    /// Records `accounts` as `username`'s, while they are watched.
    pub fn own(&self, username: &str, accounts: &[i64]) {
        let mut watchers = self.lock();
        if watchers.people.contains_key(username) {
            for account in accounts {
                watchers.owners.insert(*account, username.to_owned());
            }
        }
    }

    /// Tells whoever watches what `event` changed.
    pub fn publish(&self, event: &EventRecord) {
        let data = event.data.get();
        let mut watchers = self.lock();
        match event.event_type.as_str() {
            AccountCreated::TYPE => {
                if let Ok(created) = AccountCreated::decode(data)
                    && watchers.people.contains_key(&created.username)
                {
                    watchers
                        .owners
                        .insert(created.account_id, created.username.clone());
                    let ready = Ready::Account {
                        account_id: created.account_id,
                        version: 0,
                    };
                    watchers.tell(&created.username, &note("accounts", None, ready));
                }
            }
            kind @ (ConfirmedCredit::TYPE
            | ConfirmedDebit::TYPE
            | NectarCredit::TYPE
            | NectarDebit::TYPE) => {
                #[derive(Deserialize)]
                struct Movement {
                    account_id: i64,
                }
                if let Ok(movement) = serde_json::from_str::<Movement>(data)
                    && let Some(owner) = watchers.owners.get(&movement.account_id).cloned()
                    && let ConsistencyValue::Explicit(version) = event.consistency.value
                {
                    let account_id = movement.account_id;
                    let text = if matches!(kind, NectarCredit::TYPE | NectarDebit::TYPE) {
                        let ready = Ready::Points {
                            account_id,
                            version,
                        };
                        note("points", Some(account_id), ready)
                    } else {
                        let ready = Ready::Account {
                            account_id,
                            version,
                        };
                        note("account", Some(account_id), ready)
                    };
                    watchers.tell(&owner, &text);
                }
            }
            PendingTransaction::TYPE => {
                if let Ok(pending) = PendingTransaction::decode(data) {
                    let mut concerned = vec![pending.username.clone()];
                    if let Some(owner) = watchers.owners.get(&pending.to_account_id) {
                        concerned.push(owner.clone());
                    }
                    concerned.retain(|person| watchers.people.contains_key(person));
                    concerned.dedup();
                    let text = note(
                        "transfer",
                        Some(pending.transaction_id),
                        Ready::TransferKnown(pending.transaction_id),
                    );
                    for person in &concerned {
                        watchers.tell(person, &text);
                    }
                    if !concerned.is_empty() {
                        watchers.transfers.insert(pending.transaction_id, concerned);
                    }
                }
            }
            AcceptedTransaction::TYPE | RejectedTransaction::TYPE => {
                #[derive(Deserialize)]
                struct Decision {
                    transaction_id: i64,
                }
                if let Ok(decision) = serde_json::from_str::<Decision>(data)
                    && let Some(concerned) = watchers.transfers.remove(&decision.transaction_id)
                {
                    let text = note(
                        "transfer",
                        Some(decision.transaction_id),
                        Ready::TransferDecided(decision.transaction_id),
                    );
                    for person in &concerned {
                        watchers.tell(person, &text);
                    }
                }
            }
            _ => {}
        }
    }
}

impl Watchers {
    fn tell(&self, username: &str, text: &Arc<Note>) {
        if let Some((sender, _)) = self.people.get(username) {
            // No receiver means the last socket is closing: nothing to do.
            let _ = sender.send(text.clone());
        }
    }
}

/// A note as the browser reads it: `{"kind":"account","id":7}`.
fn note(kind: &str, id: Option<i64>, ready: Ready) -> Arc<Note> {
    Arc::new(Note {
        text: serde_json::json!({ "kind": kind, "id": id })
            .to_string()
            .into(),
        ready,
    })
}

/// Waits (a little) until the services show what `ready` says, as the
/// person would read it; sends the note anyway after [`SETTLE_LIMIT`].
async fn settled(services: &Services, user: &SessionUser, ready: Ready) {
    #[derive(Deserialize)]
    struct Versioned {
        version: i64,
    }
    #[derive(Deserialize)]
    struct Status {
        status: String,
    }
    let call = user.call();
    let deadline = tokio::time::Instant::now() + SETTLE_LIMIT;
    loop {
        let done = match ready {
            Ready::Now => true,
            Ready::Account {
                account_id,
                version,
            } => services
                .accounts::<Versioned>(
                    Method::GET,
                    &format!("/accounts/{account_id}"),
                    &call,
                    None::<&()>,
                )
                .await
                .is_ok_and(|account| account.version >= version),
            Ready::Points {
                account_id,
                version,
            } => services
                .nectar::<Versioned>(
                    Method::GET,
                    &format!("/accounts/{account_id}/points"),
                    &call,
                    None::<&()>,
                )
                .await
                .is_ok_and(|points| points.version >= version),
            Ready::TransferKnown(id) | Ready::TransferDecided(id) => services
                .transactions::<Status>(
                    Method::GET,
                    &format!("/transfers/{id}"),
                    &call,
                    None::<&()>,
                )
                .await
                .is_ok_and(|transfer| {
                    matches!(ready, Ready::TransferKnown(_)) || transfer.status != "pending"
                }),
        };
        if done || tokio::time::Instant::now() >= deadline {
            return;
        }
        tokio::time::sleep(SETTLE_POLL).await;
    }
}

/// Observes the bus until `shutdown`, feeding `hub`. The client reconnects
/// by itself after a drop; browsers catch up when their own sockets do.
///
/// Points events are observed only when the bank runs Nectar (`points`):
/// a bank without it may have a credentials file from before the web
/// server's scope could read them, and should not lose its live updates.
pub async fn observe(
    bus_url: String,
    bus_token: String,
    points: bool,
    hub: LiveHub,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    // What its scope may read: the scope table is the one list.
    let read: Vec<&str> = WEB
        .read
        .iter()
        .copied()
        .filter(|kind| points || !matches!(*kind, NectarCredit::TYPE | NectarDebit::TYPE))
        .collect();
    let (client, mut events) = BusClient::connect(
        ClientConfig::new(bus_url)
            .token(bus_token)
            .register(WEB.name, &read, Mode::Observe),
    )
    .await?;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            delivered = events.next() => match delivered {
                Some(delivered) => hub.publish(&delivered.event),
                None => break,
            },
        }
    }
    client.close();
    Ok(())
}

#[derive(Deserialize)]
struct AccountList {
    accounts: Vec<AccountId>,
}

#[derive(Deserialize)]
struct AccountId {
    account_id: i64,
}

/// `GET /live`: the logged-in person's socket of notes.
pub async fn socket(
    State(state): State<AppState>,
    session: Session,
    upgrade: WebSocketUpgrade,
) -> Response {
    let (user, Some(id)) = (
        session::user_of(&session, &state.services).await,
        session.id(),
    ) else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    let user = match user {
        Ok(Some(user)) => user,
        Ok(None) => return StatusCode::UNAUTHORIZED.into_response(),
        Err(error) => {
            tracing::warn!(%error, "no live socket: the session could not be read");
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
    };
    let watch = state.live.watch(&user.username);
    match own_accounts(&state.services, &user).await {
        Ok(accounts) => state.live.own(&user.username, &accounts),
        Err(error) => {
            tracing::warn!(%error, "no live socket: the accounts could not be listed");
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
    }
    let signed_in = SignedIn {
        store: state.sessions.clone(),
        id,
        user,
    };
    let services = state.services.clone();
    upgrade.on_upgrade(move |socket| serve(socket, watch, signed_in, services))
}

/// The session a socket serves, checked again now and then: the socket
/// closes once its session has ended (logged out elsewhere, or idle).
struct SignedIn {
    store: PostgresStore,
    id: Id,
    user: SessionUser,
}

async fn own_accounts(
    services: &Services,
    user: &SessionUser,
) -> Result<Vec<i64>, super::services::ServiceError> {
    let path = format!("/accounts?username={}&limit=50", user.username);
    let list: AccountList = services
        .accounts(Method::GET, &path, &user.call(), None::<&()>)
        .await?;
    Ok(list.accounts.iter().map(|a| a.account_id).collect())
}

async fn serve(
    mut socket: WebSocket,
    mut watch: Watch,
    mut signed_in: SignedIn,
    services: Services,
) {
    let mut heartbeat = tokio::time::interval(HEARTBEAT);
    let mut session_check = tokio::time::interval(SESSION_CHECK);
    loop {
        let note: Arc<Note> = tokio::select! {
            _ = heartbeat.tick() => note("heartbeat", None, Ready::Now),
            _ = session_check.tick() => {
                if let Some(user) = session::signed_in_user(&signed_in.store, &signed_in.id)
                    .await
                    .filter(|user| user.username == signed_in.user.username)
                {
                    // The session's token, renewed by the person's requests.
                    signed_in.user = user;
                    continue;
                }
                let _ = socket.send(Message::Close(Some(CloseFrame {
                    code: close_code::POLICY,
                    reason: "the session has ended".into(),
                }))).await;
                break;
            }
            note_or_lag = watch.notes.recv() => match note_or_lag {
                Ok(note) => note,
                Err(broadcast::error::RecvError::Lagged(_)) => note("catch_up", None, Ready::Now),
                Err(broadcast::error::RecvError::Closed) => break,
            },
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                Some(Ok(_)) => continue,
            },
        };
        settled(&services, &signed_in.user, note.ready).await;
        if socket
            .send(Message::Text(note.text.as_ref().into()))
            .await
            .is_err()
        {
            break;
        }
    }
}
