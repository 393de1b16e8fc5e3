//! Time travel over HTTP, checked against balances replayed here from the
//! same events; and the diff between two times.

mod common;

use chrono::{DateTime, Utc};
use common::{
    Console,
    fixture::{self, Replay, text},
};
use serde_json::{Value, json};

fn time(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

const TIMES: &[&str] = &[
    "2025-03-01T08:00:00Z",
    "2025-03-01T09:00:00Z",
    "2025-03-01T09:05:00.500Z",
    "2025-03-01T09:10:01Z",
    "2025-03-01T10:00:00Z",
    "2025-03-01T10:59:59.999999Z",
    "2025-03-01T12:00:00.050Z",
    "2025-03-01T12:00:00.100Z",
    "2025-03-01T13:30:00.050Z",
    "2025-03-01T14:45:29.999999Z",
    "2025-03-01T14:45:30Z",
    "2025-03-01T16:00:00Z",
    "2030-01-01T00:00:00Z",
];

#[tokio::test]
async fn the_bank_as_of_a_time_is_what_the_log_says_then() {
    let events = fixture::events();
    let console = Console::start(&events).await;
    for at in TIMES {
        let replay = Replay::at(&events, time(at));
        let totals = console.get(&format!("/as-of?at={at}")).await;
        assert_eq!(time(totals["at"].as_str().unwrap()), time(at));
        assert_eq!(
            totals,
            json!({
                "at": totals["at"],
                "money_held": text(replay.money_held()),
                "accounts": replay.balances.len(),
                "users": replay.users.len(),
                "events": replay.events,
                "deposits": text(replay.deposits),
                "withdrawals": text(replay.withdrawals),
            }),
            "as of {at}"
        );
    }
    console.stop().await;
}

#[tokio::test]
async fn an_account_as_of_a_time_has_its_balance_and_lines_then() {
    let events = fixture::events();
    let console = Console::start(&events).await;
    for at in TIMES {
        let replay = Replay::at(&events, time(at));
        for account_id in 1..=3 {
            let path = format!("/accounts/{account_id}/as-of?at={at}");
            let Some(balance) = replay.balances.get(&account_id) else {
                console.refused(&path, 404).await;
                continue;
            };
            let body = console.get(&path).await;
            assert_eq!(body["balance"], text(*balance), "{path}");
            assert_eq!(body["version"], replay.versions[&account_id], "{path}");
            let lines = body["lines"].as_array().unwrap();
            assert_eq!(lines.len() as i64, replay.versions[&account_id], "{path}");
            if let Some(newest) = lines.first() {
                assert_eq!(newest["balance_after"], text(*balance), "{path}");
            }
        }
    }
    let at = "2025-03-01T12:30:00Z";
    let first = console
        .get(&format!("/accounts/1/as-of?at={at}&limit=2"))
        .await;
    assert_eq!(first["username"], "alice");
    assert_eq!(first["opened_at"], "2025-03-01T09:00:01Z");
    assert_eq!(first["balance"], "50.00");
    assert_eq!(first["next_before_value"], 2);
    assert_eq!(
        first["lines"][0],
        json!({"value": 3, "position": 12, "recorded_at": "2025-03-01T12:00:00.100Z",
               "event_type": "ConfirmedDebit", "amount": "30.00", "delta": "-30.00",
               "balance_after": "50.00", "transaction_id": 1,
               "note": "Transfer to account 2: rent"})
    );
    assert_eq!(first["lines"][1]["value"], 2);
    assert_eq!(first["lines"][1]["delta"], "-20.00");
    let rest = console
        .get(&format!("/accounts/1/as-of?at={at}&limit=2&before_value=2"))
        .await;
    assert_eq!(rest["lines"].as_array().unwrap().len(), 1);
    assert_eq!(rest["lines"][0]["delta"], "100.00");
    assert_eq!(rest["lines"][0]["transaction_id"], Value::Null);
    assert_eq!(rest["next_before_value"], Value::Null);
    console.refused("/accounts/1/as-of", 400).await;
    console
        .refused("/accounts/one/as-of?at=2025-03-01T12:30:00Z", 400)
        .await;
    console.stop().await;
}

#[tokio::test]
async fn a_diff_says_what_changed_between_two_times() {
    let events = fixture::events();
    let console = Console::start(&events).await;
    let diff = console
        .get("/diff?from=2025-03-01T10:00:00Z&to=2025-03-01T12:00:00.100Z")
        .await;
    // Events recorded in [from, to): 7, 8, 9 and 10.
    assert_eq!(
        diff["by_type"],
        json!([
            {"event_type": "ConfirmedCredit", "events": 2},
            {"event_type": "ConfirmedDebit", "events": 1},
            {"event_type": "PendingTransaction", "events": 1},
        ])
    );
    assert_eq!(
        diff["accounts"],
        json!([
            {"account_id": 1, "username": "alice", "balance_from": "0.00",
             "balance_to": "80.00", "change": "80.00"},
            {"account_id": 2, "username": "bob", "balance_from": "0.00",
             "balance_to": "50.00", "change": "50.00"},
        ])
    );
    assert_eq!(diff["from"]["events"], 6);
    assert_eq!(diff["from"]["money_held"], "0.00");
    assert_eq!(diff["to"]["events"], 10);
    assert_eq!(diff["to"]["money_held"], "130.00");
    assert_eq!(diff["to"]["deposits"], "150.00");

    let later = console
        .get("/diff?from=2025-03-01T12:00:00Z&to=2025-03-01T16:00:00Z")
        .await;
    let changes: Vec<(i64, String)> = later["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["account_id"].as_i64().unwrap(),
                a["change"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        changes,
        vec![
            (3, "1000.00".to_owned()),
            (1, "-30.00".to_owned()),
            (2, "25.00".to_owned())
        ]
    );
    let balance_to = |id: i64| {
        later["accounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["account_id"] == id)
            .unwrap()["balance_to"]
            .clone()
    };
    let replay = Replay::at(&events, time("2025-03-01T16:00:00Z"));
    for id in 1..=3 {
        assert_eq!(balance_to(id), text(replay.balances[&id]));
    }
    let message = console
        .refused(
            "/diff?from=2025-03-01T12:00:00Z&to=2025-03-01T12:00:00Z",
            400,
        )
        .await;
    assert!(message.contains("before"), "{message}");
    console
        .refused("/diff?from=2025-03-01T12:00:00Z", 400)
        .await;
    console.stop().await;
}
