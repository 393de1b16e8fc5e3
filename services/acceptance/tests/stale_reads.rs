//! No stale rejections. Two accounts instances; one is frozen, holding the
//! events routed to it (accounts created and funded through it) while the
//! other decides transfers out of and into those accounts. A rejection
//! ("insufficient funds", "unknown account") is published only once the
//! accounts it read are confirmed current: every transfer is accepted.

use acceptance::{Bank, eventually};
use bus::{
    client::{BusClient, Publish},
    protocol::{ConsistencyValue, ReceiptStatus},
};
use serde_json::{Value, json};

const PAIRS: i64 = 12;
/// Ids far above the ones the services hand out.
const FIRST: i64 = 1_000_000;

async fn publish(client: &BusClient, events: Vec<Publish>) {
    let receipt = client.publish(events).await.expect("a receipt");
    assert_eq!(receipt.status, ReceiptStatus::Success, "{receipt:?}");
}

fn event(event_type: &str, key: String, data: Value) -> Publish {
    Publish::new(event_type, key, ConsistencyValue::Explicit(0), &data).expect("encode")
}

#[tokio::test]
async fn decisions_on_another_instances_accounts_never_reject_on_a_stale_read() {
    let bank = Bank::start_with_accounts(2).await;
    // Wait until both instances take events, then freeze the second: what
    // is routed to it from now on stays unapplied there.
    bank.sign_up("warmup").await;
    bank.accounts[1].freeze();

    // As another accounts instance would: new accounts, each funded.
    let (accounts, _) = BusClient::connect(bank.bus_config(Some("accounts")))
        .await
        .expect("connect");
    for n in 0..2 * PAIRS {
        let id = FIRST + n;
        let created = json!({"account_id": id, "request_id": uuid::Uuid::now_v7(), "username": format!("user{n}")});
        let funded = Publish::new(
            "ConfirmedCredit",
            format!("acc-{id}"),
            ConsistencyValue::Explicit(1),
            &json!({"account_id": id, "amount": "50.00", "note": "Deposit", "transaction_id": null}),
        )
        .expect("encode");
        publish(
            &accounts,
            vec![
                event("AccountCreated", format!("acc-{id}"), created),
                funded,
            ],
        )
        .await;
    }
    // Transfers between them: some are decided by the running instance
    // while the accounts they read sit unapplied with the frozen one.
    let (transfers, _) = BusClient::connect(bank.bus_config(Some("transactions")))
        .await
        .expect("connect");
    for n in 0..PAIRS {
        let (from, to) = (FIRST + 2 * n, FIRST + 2 * n + 1);
        let id = FIRST + n;
        let pending = json!({"transaction_id": id, "from_account_id": from, "to_account_id": to,
            "amount": "40.00", "reference": "", "username": format!("user{}", 2 * n)});
        publish(
            &transfers,
            vec![event("PendingTransaction", format!("trans-{id}"), pending)],
        )
        .await;
    }
    // The running instance decides what is routed to it; then the frozen
    // one goes on with the rest.
    let decided_while_frozen = eventually("the running instance decides its share", || async {
        let decided = bank
            .log(&["AcceptedTransaction", "RejectedTransaction"])
            .await;
        (!decided.is_empty()).then_some(decided.len())
    })
    .await;
    bank.accounts[1].resume();
    let decisions = eventually("every transfer decided", || async {
        let decided = bank
            .log(&["AcceptedTransaction", "RejectedTransaction"])
            .await;
        (decided.len() as i64 == PAIRS).then_some(decided)
    })
    .await;
    let rejected: Vec<String> = decisions
        .iter()
        .filter(|event| event.event_type == "RejectedTransaction")
        .map(|event| event.data.get().to_owned())
        .collect();
    assert!(
        rejected.is_empty(),
        "rejected on stale reads ({decided_while_frozen} decided while frozen): {rejected:?}"
    );
    // And stale reads did happen: the running instance caught up before deciding.
    let stale = bank.accounts_metric("superclient_stale_reads_total").await;
    assert!(
        stale > 0,
        "no decision read a stale account: the test proved nothing"
    );
    accounts.close();
    transfers.close();
}
