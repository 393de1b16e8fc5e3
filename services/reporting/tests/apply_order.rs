//! The tables do not depend on the order keys are applied in: the
//! framework's rebuild (position order) and direct applies in other orders
//! across keys (each key in value order, as the framework guarantees) give
//! the same rows in every table.

mod common;

use std::collections::BTreeMap;

use bus::protocol::EventRecord;
use common::{Console, fixture};
use reporting::Reporting;
use sqlx::{Connection, PgConnection};
use superclient::Service;
use testkit::TestDb;

const TABLES: &[&str] = &[
    "events",
    "event_accounts",
    "accounts",
    "account_lines",
    "transfers",
    "users",
    "hour_totals",
    "minute_totals",
    "rejection_totals",
];

/// Every row of every table, as text, in a fixed order.
async fn dump(db: &mut PgConnection) -> BTreeMap<&'static str, Vec<String>> {
    let mut tables = BTreeMap::new();
    for table in TABLES {
        // Table names are this test's constants, not input.
        let rows: Vec<String> = sqlx::query_scalar(&format!(
            "SELECT to_jsonb(t)::text FROM reporting.{table} t ORDER BY 1"
        ))
        .fetch_all(&mut *db)
        .await
        .expect("dump");
        tables.insert(*table, rows);
    }
    tables
}

/// Applies `events` one transaction per `batch` events, in the order given.
async fn apply_directly(
    events: &[&EventRecord],
    batch: usize,
) -> BTreeMap<&'static str, Vec<String>> {
    let db = TestDb::new().await;
    let mut connection = common::migrated(&db.url).await;
    for chunk in events.chunks(batch) {
        let mut tx = connection.begin().await.expect("begin");
        for event in chunk {
            Reporting.apply(&mut tx, event).await.expect("apply");
        }
        tx.commit().await.expect("commit");
    }
    let tables = dump(&mut connection).await;
    connection.close().await.expect("close");
    tables
}

/// Keys one after another in `key_order`, each key's events in value order.
fn by_keys(events: &[EventRecord], key_order: impl Fn(&str) -> String) -> Vec<&EventRecord> {
    let mut ordered: Vec<&EventRecord> = events.iter().collect();
    ordered.sort_by_key(|e| (key_order(&e.consistency.key), e.position));
    ordered
}

#[tokio::test]
async fn the_order_keys_are_applied_in_changes_nothing() {
    let events = fixture::events();
    let console = Console::start(&events).await;
    let mut connection = PgConnection::connect(&console.db.url)
        .await
        .expect("connect");
    let rebuilt = dump(&mut connection).await;
    connection.close().await.expect("close");
    assert_eq!(rebuilt["events"].len(), 17);
    assert_eq!(rebuilt["event_accounts"].len(), 18);

    // Accounts first: alice's acc-3 (position 6) and acc-1 (2) come before
    // the requests that named her first (1, 5), and money before the
    // transfers it belongs to.
    let accounts_first = by_keys(&events, |key| key.to_owned());
    // Transfers first, the keys in reverse.
    let reversed = by_keys(&events, |key| {
        key.chars().map(|c| char::from(255 - c as u8)).collect()
    });
    assert_ne!(accounts_first[0].position, 1);
    for (order, batch) in [(&accounts_first, 1), (&reversed, 4)] {
        let direct = apply_directly(order, batch).await;
        for table in TABLES {
            assert_eq!(direct[table], rebuilt[table], "{table}");
        }
    }
    let users = &rebuilt["users"];
    assert!(users[0].contains("\"first_position\": 1"), "{users:?}");
    assert!(users[1].contains("\"first_position\": 3"), "{users:?}");
    console.stop().await;
}
