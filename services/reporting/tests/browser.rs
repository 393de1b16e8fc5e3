//! The event browser over HTTP: pages both ways, seeking by time, every
//! filter, one event, its tree, a key's history and a correlation's trace.

mod common;

use common::{
    Console,
    fixture::{self, correlation},
};
use serde_json::{Value, json};

fn positions(body: &Value) -> Vec<i64> {
    body["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|event| event["position"].as_i64().expect("a position"))
        .collect()
}

/// The positions of a page, and its `newer` and `older`.
async fn page(console: &Console, query: &str) -> (Vec<i64>, Value, Value) {
    let body = console.get(&format!("/events?{query}")).await;
    (
        positions(&body),
        body["newer"].clone(),
        body["older"].clone(),
    )
}

#[tokio::test]
async fn pages_go_both_ways_and_stop_at_the_ends() {
    let console = Console::start(&fixture::events()).await;
    let null = Value::Null;
    let expect = |p: Vec<i64>, newer: Value, older: Value| (p, newer, older);

    assert_eq!(
        page(&console, "limit=5").await,
        expect(vec![17, 16, 15, 14, 13], null.clone(), json!(13))
    );
    assert_eq!(
        page(&console, "before=13&limit=5").await,
        expect(vec![12, 11, 10, 9, 8], json!(12), json!(8))
    );
    assert_eq!(
        page(&console, "before=3&limit=5").await,
        expect(vec![2, 1], json!(2), null.clone())
    );
    // After: the `limit` closest above, still newest first.
    assert_eq!(
        page(&console, "after=12&limit=2").await,
        expect(vec![14, 13], json!(14), json!(13))
    );
    assert_eq!(
        page(&console, "after=15&limit=2").await,
        expect(vec![17, 16], null.clone(), json!(16))
    );
    assert_eq!(
        page(&console, "after=0&limit=2").await,
        expect(vec![2, 1], json!(2), null.clone())
    );
    // Past either end: an empty page that points back.
    assert_eq!(
        page(&console, "before=1").await,
        expect(vec![], json!(0), null.clone())
    );
    assert_eq!(
        page(&console, "after=17").await,
        expect(vec![], null.clone(), json!(18))
    );
    // Walking the whole log by `older` and back by `newer`.
    let mut seen = Vec::new();
    let mut next = page(&console, "limit=4").await;
    loop {
        seen.extend(next.0.clone());
        let Some(older) = next.2.as_i64() else { break };
        next = page(&console, &format!("before={older}&limit=4")).await;
    }
    assert_eq!(seen, (1..=17).rev().collect::<Vec<_>>());
    let mut back = Vec::new();
    let mut next = page(&console, "after=0&limit=4").await;
    loop {
        back.splice(0..0, next.0.clone());
        let Some(newer) = next.1.as_i64() else { break };
        next = page(&console, &format!("after={newer}&limit=4")).await;
    }
    assert_eq!(back, seen);
    console.stop().await;
}

#[tokio::test]
async fn seeking_by_time_lands_on_the_newest_event_by_then() {
    let console = Console::start(&fixture::events()).await;
    // 12:00:00.050: the pending transfer (12:00:00.000) is the newest by then.
    assert_eq!(
        page(&console, "at=2025-03-01T12:00:00.050Z&limit=2").await,
        (vec![10, 9], json!(10), json!(9))
    );
    // Three events share 12:00:00.100: the page starts at the last of them.
    assert_eq!(
        page(&console, "at=2025-03-01T12:00:00.100Z&limit=2").await,
        (vec![13, 12], json!(13), json!(12))
    );
    // An offset, sent as %2B: 15:00 in Paris is 14:00 UTC.
    assert_eq!(
        page(&console, "at=2025-03-01T15:00:00%2B01:00&limit=1").await,
        (vec![15], json!(15), json!(15))
    );
    assert_eq!(
        page(&console, "at=2025-03-01T08:00:00Z").await,
        (vec![], json!(0), Value::Null)
    );
    assert_eq!(
        page(&console, "at=2025-03-01T13:00:00Z&types=PendingTransaction").await,
        (vec![10], json!(10), Value::Null)
    );
    console.stop().await;
}

#[tokio::test]
async fn every_filter_narrows_the_pages() {
    let console = Console::start(&fixture::events()).await;
    let only = async |query: &str| page(&console, query).await.0;
    assert_eq!(only("types=ConfirmedCredit").await, vec![16, 13, 8, 7]);
    assert_eq!(
        page(&console, "types=ConfirmedCredit,ConfirmedDebit&limit=3").await,
        (vec![17, 16, 13], Value::Null, json!(13))
    );
    assert_eq!(
        page(
            &console,
            "types=ConfirmedCredit,ConfirmedDebit&limit=3&before=13"
        )
        .await,
        (vec![12, 9, 8], json!(12), json!(8))
    );
    assert_eq!(
        page(
            &console,
            "types=ConfirmedCredit,ConfirmedDebit&limit=3&before=8"
        )
        .await,
        (vec![7], json!(7), Value::Null)
    );
    // Both sides of a transfer concern an account.
    assert_eq!(only("account=2").await, vec![17, 15, 14, 13, 11, 10, 8, 4]);
    assert_eq!(
        page(&console, "account=2&limit=3&before=14").await,
        (vec![13, 11, 10], json!(13), json!(10))
    );
    assert_eq!(
        page(&console, "account=2&limit=3&after=10").await,
        (vec![14, 13, 11], json!(14), json!(11))
    );
    assert_eq!(only("key=acc-1").await, vec![12, 9, 7, 2]);
    let unit = correlation(7);
    assert_eq!(
        only(&format!("correlation={unit}")).await,
        vec![13, 12, 11, 10]
    );
    assert_eq!(
        only("from=2025-03-01T10:00:00Z&to=2025-03-01T12:00:00Z").await,
        vec![9, 8, 7]
    );
    assert_eq!(
        only("min_amount=30&max_amount=100").await,
        vec![13, 12, 11, 10, 8, 7]
    );
    assert_eq!(only("min_amount=500.00").await, vec![16, 15, 14]);
    assert_eq!(only("q=rent").await, vec![13, 12, 10]);
    assert_eq!(only("q=bob").await, vec![14, 4, 3]);
    assert_eq!(only("q=salary%20OR%20bonus").await, vec![16, 7]);
    assert_eq!(only("key=acc-2&types=ConfirmedDebit").await, vec![17]);
    assert_eq!(only("account=3&q=insufficient").await, vec![15]);
    console.stop().await;
}

#[tokio::test]
async fn rows_summarise_their_events() {
    let console = Console::start(&fixture::events()).await;
    let body = console.get("/events?limit=200").await;
    let rows = body["events"].as_array().unwrap();
    let row = |position: i64| rows.iter().find(|r| r["position"] == position).unwrap();
    let summary = |position: i64| row(position)["summary"].as_str().unwrap().to_owned();
    assert_eq!(summary(1), "alice asked for an account");
    assert_eq!(summary(2), "acc-1 opened for alice");
    assert_eq!(summary(7), "acc-1 +£100.00 (deposit)");
    assert_eq!(summary(9), "acc-1 -£20.00 (withdrawal)");
    assert_eq!(
        summary(10),
        "trans-1: £30.00 from 1 to 2, ref \"rent\" by alice"
    );
    assert_eq!(summary(11), "accepted: £30.00 from 1 to 2");
    assert_eq!(summary(13), "acc-2 +£30.00 (trans-1)");
    assert_eq!(summary(14), "trans-2: £500.00 from 2 to 3 by bob");
    assert_eq!(summary(15), "rejected: insufficient funds");
    let fifteen = row(15);
    assert_eq!(fifteen["amount"], "500.00");
    assert_eq!(fifteen["event_type"], "RejectedTransaction");
    assert_eq!(fifteen["key"], "trans-2");
    assert_eq!(fifteen["value"], 1);
    assert_eq!(fifteen["event_id"], fixture::event_id(15).to_string());
    assert_eq!(fifteen["correlation_id"], correlation(8).to_string());
    assert_eq!(fifteen["causation_id"], fixture::event_id(14).to_string());
    assert_eq!(fifteen["recorded_at"], "2025-03-01T13:30:00.050Z");
    assert_eq!(row(2)["amount"], Value::Null);
    assert_eq!(row(2)["causation_id"], fixture::event_id(1).to_string());
    assert_eq!(row(1)["causation_id"], Value::Null);
    assert_eq!(rows.len(), 17);
    console.stop().await;
}

#[tokio::test]
async fn an_event_shows_its_payload_its_cause_and_its_effects() {
    let console = Console::start(&fixture::events()).await;
    let credit = console.get("/events/13").await;
    assert_eq!(credit["event"]["position"], 13);
    assert_eq!(
        credit["data"],
        json!({"account_id": 2, "amount": "30.00", "note": "Transfer from account 1: rent",
               "transaction_id": 1})
    );
    assert_eq!(credit["cause"]["position"], 10);
    assert_eq!(credit["caused"], json!([]));
    let pending = console.get("/events/10").await;
    assert_eq!(pending["cause"], Value::Null);
    assert_eq!(
        positions(&json!({"events": pending["caused"]})),
        vec![11, 12, 13]
    );

    // A transfer's credit belongs to the tree of its pending event.
    let tree = console.get("/events/13/tree").await;
    let root = &tree["root"];
    assert_eq!(root["event"]["position"], 10);
    assert_eq!(
        root["event"]["summary"],
        "trans-1: £30.00 from 1 to 2, ref \"rent\" by alice"
    );
    let children: Vec<i64> = root["children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|child| {
            assert_eq!(child["children"], json!([]));
            child["event"]["position"].as_i64().unwrap()
        })
        .collect();
    assert_eq!(children, vec![11, 12, 13]);
    let opened = console.get("/events/1/tree").await;
    assert_eq!(opened["root"]["event"]["position"], 1);
    assert_eq!(opened["root"]["children"][0]["event"]["position"], 2);
    let alone = console.get("/events/7/tree").await;
    assert_eq!(alone["root"]["event"]["position"], 7);
    assert_eq!(alone["root"]["children"], json!([]));

    assert!(console.refused("/events/99", 404).await.contains("99"));
    assert!(
        console
            .refused("/events/ten", 400)
            .await
            .contains("whole number")
    );
    console.stop().await;
}

#[tokio::test]
async fn a_key_shows_its_events_in_order_with_running_balances() {
    let console = Console::start(&fixture::events()).await;
    let first = console.get("/keys/acc-2/events?limit=2").await;
    assert_eq!(first["key"], "acc-2");
    assert_eq!(positions(&first), vec![4, 8]);
    assert_eq!(first["next_after_value"], 1);
    let rest = console
        .get("/keys/acc-2/events?limit=2&after_value=1")
        .await;
    assert_eq!(positions(&rest), vec![13, 17]);
    assert_eq!(rest["next_after_value"], Value::Null);
    let balances: Vec<Value> = [&first, &rest]
        .iter()
        .flat_map(|page| page["events"].as_array().unwrap().clone())
        .map(|event| event["balance_after"].clone())
        .collect();
    assert_eq!(
        balances,
        vec![
            json!("0.00"),
            json!("50.00"),
            json!("80.00"),
            json!("75.00")
        ]
    );

    let transfer = console.get("/keys/trans-1/events").await;
    assert_eq!(positions(&transfer), vec![10, 11]);
    assert_eq!(transfer["events"][1]["balance_after"], Value::Null);
    assert_eq!(
        transfer["events"][1]["summary"],
        "accepted: £30.00 from 1 to 2"
    );
    let nothing = console.get("/keys/acc-99/events").await;
    assert_eq!(nothing["events"], json!([]));
    console
        .refused("/keys/acc-2/events?after_value=x", 400)
        .await;
    console.stop().await;
}

#[tokio::test]
async fn a_correlation_traces_one_unit_of_work_with_its_timing() {
    let console = Console::start(&fixture::events()).await;
    let unit = correlation(7);
    let trace = console.get(&format!("/correlations/{unit}")).await;
    assert_eq!(trace["correlation_id"], unit.to_string());
    assert_eq!(positions(&trace), vec![10, 11, 12, 13]);
    let timing: Vec<(Value, Value)> = trace["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["since_previous_ms"].clone(), e["since_first_ms"].clone()))
        .collect();
    assert_eq!(
        timing,
        vec![
            (Value::Null, json!(0)),
            (json!(100), json!(100)),
            (json!(0), json!(100)),
            (json!(0), json!(100)),
        ]
    );
    console
        .refused(&format!("/correlations/{}", correlation(99)), 404)
        .await;
    console.refused("/correlations/nope", 400).await;
    console.stop().await;
}
