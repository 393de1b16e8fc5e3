//! Redemptions racing for the same points, on two instances of Nectar:
//! each point is spent once, whoever wins.

use acceptance::{Bank, Process, Service, eventually};
use events::{DomainEvent, NectarDebit};
use rust_decimal::Decimal;
use serde_json::{Value, json};

/// Waits until the account shows `expected` points.
async fn points_become(bank: &Bank, nectar: &Process, user: &str, account: i64, expected: i64) {
    eventually(
        &format!("account {account} has {expected} points"),
        || async {
            let (status, body) = bank
                .call(nectar)
                .get(Some(user), &format!("/accounts/{account}/points"))
                .await;
            (status == 200 && body["points"] == expected).then_some(())
        },
    )
    .await;
}

async fn redeem(
    bank: &Bank,
    nectar: &Process,
    account: i64,
    points: i64,
    key: &str,
) -> (u16, Value) {
    bank.call(nectar)
        .post_with_key(
            Some("ann"),
            &format!("/accounts/{account}/redemptions"),
            json!({"points": points}),
            key,
        )
        .await
}

/// Sends `tries` redemptions of `points` each at once, alternating between
/// the instances; how many were paid and how many refused for want of points.
async fn race(
    bank: &Bank,
    nectars: &[Process],
    account: i64,
    points: i64,
    tries: usize,
    round: &str,
) -> (usize, usize) {
    let answers = futures_util::future::join_all((0..tries).map(|try_| {
        let nectar = &nectars[try_ % nectars.len()];
        async move { redeem(bank, nectar, account, points, &format!("{round}-{try_}")).await }
    }))
    .await;
    let paid = answers.iter().filter(|(status, _)| *status == 201).count();
    let refused = answers
        .iter()
        .filter(|(status, body)| *status == 422 && body["error"]["code"] == "insufficient_points")
        .count();
    assert_eq!(
        paid + refused,
        tries,
        "every answer is a payment or a refusal: {answers:?}"
    );
    (paid, refused)
}

#[tokio::test]
async fn redemptions_racing_for_the_same_points_spend_each_point_once() {
    let bank = Bank::start().await;
    let nectars = [bank.another(Service::Nectar), bank.another(Service::Nectar)];
    let ann = bank.sign_up("ann").await;
    let bob = bank.sign_up("bob").await;
    bank.deposit("ann", ann, "2000.00").await;
    let transfer = bank.transfer("ann", ann, bob, "100.00").await;
    assert_eq!(bank.decided("ann", transfer).await["status"], "accepted");
    for nectar in &nectars {
        points_become(&bank, nectar, "ann", ann, 10).await;
    }
    let before = bank.balance("ann", ann).await;
    // Two redemptions of all ten points at once, one on each instance.
    assert_eq!(race(&bank, &nectars, ann, 10, 2, "pair").await, (1, 1));
    bank.balance_becomes("ann", ann, before + Decimal::new(10, 2))
        .await;

    // A hundred points, and forty redemptions of five at once: exactly
    // twenty are paid, whichever instance each lands on.
    let transfer = bank.transfer("ann", ann, bob, "1000.00").await;
    assert_eq!(bank.decided("ann", transfer).await["status"], "accepted");
    for nectar in &nectars {
        points_become(&bank, nectar, "ann", ann, 100).await;
    }
    let before = bank.balance("ann", ann).await;
    assert_eq!(race(&bank, &nectars, ann, 5, 40, "crowd").await, (20, 20));
    bank.balance_becomes("ann", ann, before + Decimal::ONE)
        .await;
    let debits: Vec<NectarDebit> = bank
        .log(&[NectarDebit::TYPE])
        .await
        .iter()
        .map(|event| NectarDebit::decode(event.data.get()).expect("the event's data"))
        .collect();
    assert_eq!(debits.len(), 21, "{debits:?}");
    assert_eq!(debits.iter().map(|debit| debit.points).sum::<i64>(), 110);
    for nectar in &nectars {
        points_become(&bank, nectar, "ann", ann, 0).await;
        let (status, health) = bank.call(nectar).get(None, "/health").await;
        assert_eq!(status, 200, "no event parked, no key stuck: {health}");
    }
}
