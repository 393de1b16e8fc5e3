//! What operators rely on: an event a service cannot handle is parked, not
//! retried for ever, and holds nothing else up; `/health` and `/metrics`;
//! a graceful stop.

use acceptance::{Bank, eventually};
use bus::{
    client::{BusClient, Publish},
    protocol::{ConsistencyValue, ReceiptStatus},
};
use serde_json::{Value, json};

#[tokio::test]
async fn an_event_that_keeps_failing_is_parked_and_the_rest_flows_on() {
    let bank = Bank::start().await;
    let alice = bank.sign_up("alice").await;
    let bob = bank.sign_up("bob").await;
    bank.deposit("alice", alice, "10.00").await;

    // A pending transfer whose amount is not money: the accounts service
    // cannot decide it, whatever it tries.
    let (client, _) = BusClient::connect(bank.bus_config(None))
        .await
        .expect("connect");
    let bad = Publish::new(
        "PendingTransaction",
        "trans-900001",
        ConsistencyValue::Explicit(0),
        &json!({"transaction_id": 900001, "from_account_id": alice, "to_account_id": bob,
                "amount": "lots", "reference": "", "username": "alice"}),
    )
    .expect("encode");
    let receipt = client.publish(vec![bad]).await.expect("a receipt");
    assert_eq!(receipt.status, ReceiptStatus::Success);
    let bad_position = receipt.events[0].position.expect("stored");
    client.close();

    let parked = eventually("the bad event parked for accounts", || async {
        let parked = bank.parked_for_accounts().await?;
        (parked.len() == 1).then_some(parked)
    })
    .await;
    assert_eq!(parked[0]["position"], bad_position);
    assert_eq!(parked[0]["deliveries"], 5);
    assert!(
        parked[0]["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("amount"),
        "{parked:?}"
    );

    // It holds only its own key: transfers go on.
    let id = bank.transfer("alice", alice, bob, "4.00").await;
    assert_eq!(bank.decided("alice", id).await["status"], "accepted");
}

#[tokio::test]
async fn health_metrics_and_a_graceful_stop() {
    let mut bank = Bank::start().await;
    let alice = bank.sign_up("alice").await;
    bank.deposit("alice", alice, "1.00").await;

    for service in [&bank.users, &bank.accounts[0], &bank.transactions] {
        let response = bank
            .http
            .get(format!("{}/health", service.http_base()))
            .send()
            .await
            .expect("an answer");
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.expect("JSON");
        assert_eq!(
            (body["status"].as_str(), body["rebuild"].as_str()),
            (Some("ok"), Some("done")),
            "{body}"
        );
        assert_eq!(body["stuck_keys"], 0, "{body}");
    }
    let metrics = bank.accounts_metrics().await;
    for name in [
        "superclient_events_handled_total",
        "superclient_publishes_total",
    ] {
        assert!(metrics.contains(name), "{name} missing from:\n{metrics}");
    }

    let status = bank.accounts[0].terminate();
    assert!(
        status.success(),
        "SIGTERM stops the service cleanly: {status:?}"
    );
}
