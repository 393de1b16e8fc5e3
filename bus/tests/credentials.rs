//! Scoped credentials (protocol v1.1): each token does what its scope
//! allows and nothing else, and a refused request stores nothing.

mod common;

use common::{ADMIN_TOKEN, BusProcess, Raw, TestDb, http};
use serde_json::{Value, json};

const ACCOUNTS: &str = "accounts-token";
const WEB: &str = "web-token";
const OPS: &str = "ops-token";

/// A credentials file for three clients, in a directory of the test's own.
fn credentials_file() -> std::path::PathBuf {
    use bus::credentials::{ClientEntry, Credentials, token_digest};
    let entry = |name: &str, token: &str, types: &[&str], publish: &[&str], read: &[&str]| {
        let list = |names: &[&str]| names.iter().map(|n| (*n).to_owned()).collect();
        ClientEntry {
            name: name.into(),
            token_sha256: token_digest(token),
            client_types: list(types),
            publish: list(publish),
            read: list(read),
            staff: name == "ops",
        }
    };
    let entries = [
        entry(
            "accounts",
            ACCOUNTS,
            &["accounts"],
            &["ConfirmedDebit"],
            &["ConfirmedDebit", "PendingTransaction"],
        ),
        entry("web", WEB, &["web"], &[], &["ConfirmedDebit"]),
        entry("ops", OPS, &[], &[], &["*"]),
    ];
    let directory = std::env::temp_dir().join(format!("bus-test-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&directory).unwrap();
    let path = directory.join("credentials.toml");
    std::fs::write(&path, Credentials::to_toml(&entries)).unwrap();
    path
}

async fn connect(bus: &BusProcess, token: &str) -> Raw {
    Raw::connect_with_token(bus, Some(token))
        .await
        .expect("a known token connects")
}

async fn stored(db: &TestDb, event_type: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM bus.events WHERE event_type = $1")
        .bind(event_type)
        .fetch_one(&db.pool().await)
        .await
        .unwrap()
}

#[tokio::test]
async fn without_credentials_the_bus_does_not_start_unless_told_it_is_insecure() {
    let db = TestDb::new().await;
    let refusal = BusProcess::refuses_to_start(&db, &[]);
    assert!(refusal.contains("no credentials"), "{refusal}");
    let bus = BusProcess::start(&db, &["--insecure"]);
    let mut raw = Raw::connect_with_token(&bus, None)
        .await
        .expect("an insecure bus lets anyone in");
    let receipt = raw.publish("A", "k", json!("*"), json!({})).await;
    assert_eq!(receipt["status"], "success");
    // Every connection of an insecure bus has the same name.
    let published_by: Option<String> =
        sqlx::query_scalar("SELECT published_by FROM bus.events WHERE position = 1")
            .fetch_one(&db.pool().await)
            .await
            .unwrap();
    let published_by = published_by.expect("recorded");
    assert!(
        published_by.starts_with("insecure@127.0.0.1:"),
        "{published_by}"
    );
}

/// The port of a `published_by`, which must be `NAME@127.0.0.1:PORT`.
fn published_from(name: &str, published_by: &Value) -> u16 {
    let text = published_by
        .as_str()
        .unwrap_or_else(|| panic!("published_by is a string: {published_by}"));
    let port = text
        .strip_prefix(&format!("{name}@127.0.0.1:"))
        .unwrap_or_else(|| panic!("published by {name} over loopback: {text}"));
    port.parse()
        .unwrap_or_else(|_| panic!("a port after the address: {text}"))
}

#[tokio::test]
async fn every_event_says_which_credential_and_connection_published_it() {
    let db = TestDb::new().await;
    let path = credentials_file();
    let bus = BusProcess::start(&db, &["--credentials", path.to_str().unwrap()]);
    let mut web = connect(&bus, WEB).await;
    web.register("web", &["ConfirmedDebit"], "observe").await;

    let mut accounts = connect(&bus, ACCOUNTS).await;
    let receipt = accounts
        .publish("ConfirmedDebit", "acc-1", json!(0), json!({}))
        .await;
    assert_eq!(receipt["status"], "success");
    let delivered = web.event().await;
    let first_port = published_from("accounts", &delivered["published_by"]);

    // Another instance of the same service: same name, its own port.
    let mut other = connect(&bus, ACCOUNTS).await;
    let receipt = other
        .publish("ConfirmedDebit", "acc-1", json!(1), json!({}))
        .await;
    assert_eq!(receipt["status"], "success");
    let delivered_second = web.event().await;
    let second_port = published_from("accounts", &delivered_second["published_by"]);
    assert_ne!(first_port, second_port, "two connections, two ports");

    // A query answers with what was delivered, read back from the log.
    web.send(json!({"message_type": "query", "request_id": "q-who",
                    "event_types": ["ConfirmedDebit"], "after_position": 0}))
        .await;
    let rebuild = web.recv().await;
    assert_eq!(rebuild["message_type"], "rebuild", "{rebuild}");
    let queried = rebuild["events"].as_array().expect("events");
    assert_eq!(queried.len(), 2, "{rebuild}");
    assert_eq!(queried[0]["published_by"], delivered["published_by"]);
    assert_eq!(queried[1]["published_by"], delivered_second["published_by"]);
    assert_eq!(web.recv().await["message_type"], "rebuild_complete");

    // An event stored before the bus recorded publishers reads as null.
    sqlx::query("UPDATE bus.events SET published_by = NULL WHERE position = 1")
        .execute(&db.pool().await)
        .await
        .unwrap();
    web.send(json!({"message_type": "query", "request_id": "q-old",
                    "event_types": ["ConfirmedDebit"], "after_position": 0, "limit": 1}))
        .await;
    let rebuild = web.recv().await;
    let old = &rebuild["events"][0];
    assert_eq!(old["position"], 1, "{rebuild}");
    assert!(
        old.get("published_by").is_some_and(Value::is_null),
        "present and null: {old}"
    );
}

#[tokio::test]
async fn each_token_may_do_what_its_scope_allows_and_a_refusal_stores_nothing() {
    let db = TestDb::new().await;
    let path = credentials_file();
    let bus = BusProcess::start(&db, &["--credentials", path.to_str().unwrap()]);

    let refused = Raw::connect_with_token(&bus, Some("guess")).await.err();
    assert!(refused.expect("refused").to_string().contains("401"));
    assert!(Raw::connect_with_token(&bus, None).await.is_err());
    assert!(
        Raw::connect_with_token(&bus, Some(ADMIN_TOKEN))
            .await
            .is_err(),
        "no development token was given to this bus"
    );

    // Publishing: only the scope's types, and a message is refused whole.
    let mut accounts = connect(&bus, ACCOUNTS).await;
    let receipt = accounts
        .publish("ConfirmedDebit", "acc-1", json!(0), json!({}))
        .await;
    assert_eq!(receipt["status"], "success");
    accounts
        .send(json!({"message_type": "new", "request_id": "mixed", "events": [
            {"event_type": "ConfirmedDebit", "consistency": {"key": "acc-1", "value": 1}, "data": {}},
            {"event_type": "UserCreated", "consistency": {"key": "user-x"}, "data": {"password_hash": "h"}}]}))
        .await;
    let receipt = accounts.recv().await;
    assert_eq!(
        (receipt["status"].as_str(), receipt["code"].as_str()),
        (Some("rejected"), Some("forbidden")),
        "{receipt}"
    );
    assert!(
        receipt["message"].as_str().unwrap().contains("events[1]"),
        "{receipt}"
    );
    assert_eq!(stored(&db, "UserCreated").await, 0);
    assert_eq!(
        stored(&db, "ConfirmedDebit").await,
        1,
        "nothing of the refused message"
    );

    // Registering: only as its own client types, for types it may read.
    let forbidden = |error: &Value, what: &str| {
        assert_eq!(
            (error["message_type"].as_str(), error["code"].as_str()),
            (Some("error"), Some("forbidden")),
            "{what}: {error}"
        );
    };
    accounts
        .send(json!({"message_type": "register", "client_type": "users", "event_types": ["ConfirmedDebit"]}))
        .await;
    forbidden(&accounts.recv().await, "another client type");
    accounts
        .send(json!({"message_type": "register", "client_type": "accounts", "event_types": ["UserCreated"]}))
        .await;
    forbidden(&accounts.recv().await, "a type it may not read");
    accounts
        .register(
            "accounts",
            &["ConfirmedDebit", "PendingTransaction"],
            "consume",
        )
        .await;

    // Reading: the password hashes in UserCreated are not the web server's.
    let mut web = connect(&bus, WEB).await;
    web.send(json!({"message_type": "query", "request_id": "q-secrets",
                    "event_types": ["UserCreated"], "after_position": 0}))
        .await;
    let error = web.recv().await;
    forbidden(&error, "querying UserCreated");
    assert_eq!(error["request_id"], "q-secrets");
    web.send(json!({"message_type": "register", "client_type": "web", "event_types": ["*"], "mode": "observe"}))
        .await;
    forbidden(&web.recv().await, "observing every type");
    web.register("web", &["ConfirmedDebit"], "observe").await;

    // Staff endpoints: 401 without a known token, 403 without the right.
    for path in ["/subscriptions", "/parked"] {
        assert_eq!(http(&bus, "GET", path, None).await.0, 401, "{path}");
        assert_eq!(
            http(&bus, "GET", path, Some("guess")).await.0,
            401,
            "{path}"
        );
        assert_eq!(
            http(&bus, "GET", path, Some(ACCOUNTS)).await.0,
            403,
            "{path}"
        );
        assert_eq!(http(&bus, "GET", path, Some(OPS)).await.0, 200, "{path}");
    }
    for decision in ["replay", "skip"] {
        let path = format!("/parked/accounts/1/{decision}");
        assert_eq!(http(&bus, "POST", &path, Some(WEB)).await.0, 403);
    }
    // A staff token is not a publisher.
    let mut ops = connect(&bus, OPS).await;
    let receipt = ops
        .publish("ConfirmedDebit", "acc-1", json!(1), json!({}))
        .await;
    assert_eq!(receipt["code"], "forbidden", "{receipt}");
    assert_eq!(stored(&db, "ConfirmedDebit").await, 1);
}
