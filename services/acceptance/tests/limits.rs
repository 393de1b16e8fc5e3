//! Limits against abuse: ten accounts a customer, log-in attempts
//! throttled per username and per client address, and every list paged
//! with a maximum page size.

use acceptance::{Bank, PASSWORD};
use serde_json::json;

#[tokio::test]
async fn a_customer_holds_at_most_ten_accounts_even_asking_all_at_once() {
    let bank = Bank::start().await;
    bank.sign_up("alice").await;
    let users = bank.call(&bank.users);
    // Fifteen requests at once for nine more accounts' worth of room.
    let mut asks = Vec::new();
    for _ in 0..15 {
        let users = users.clone();
        asks.push(tokio::spawn(async move {
            users
                .post(Some("alice"), "/users/alice/accounts", json!({}))
                .await
        }));
    }
    let (mut opened, mut refused) = (0, 0);
    for ask in asks {
        let (status, body) = ask.await.unwrap();
        match status {
            201 | 202 => opened += 1,
            422 => {
                assert_eq!(body["error"]["code"], "too_many_accounts", "{body}");
                refused += 1;
            }
            other => panic!("{other}: {body}"),
        }
    }
    assert_eq!((opened, refused), (9, 6));
    let requests = bank.log(&["AccountCreationRequest"]).await;
    assert_eq!(requests.len(), 10, "the first and nine more");

    // Paged, at most ten a page.
    let (status, page) = users
        .get(Some("alice"), "/users/alice/accounts?limit=4")
        .await;
    assert_eq!(status, 200);
    assert_eq!(page["accounts"].as_array().unwrap().len(), 4);
    let after = page["next_after"].as_str().expect("more pages").to_owned();
    let (_, rest) = users
        .get(
            Some("alice"),
            &format!("/users/alice/accounts?limit=10&after={after}"),
        )
        .await;
    assert_eq!(rest["accounts"].as_array().unwrap().len(), 6);
    let (status, _) = users
        .get(Some("alice"), "/users/alice/accounts?limit=11")
        .await;
    assert_eq!(status, 400);
    let accounts = bank.call(&bank.accounts[0]);
    let (status, _) = accounts
        .get(Some("alice"), "/accounts?username=alice&limit=51")
        .await;
    assert_eq!(status, 400);
    let (status, _) = bank
        .call(&bank.transactions)
        .get(Some("alice"), "/transfers?username=alice&limit=201")
        .await;
    assert_eq!(status, 400);
}

async fn log_in(
    bank: &Bank,
    username: &str,
    password: &str,
    address: &str,
) -> (u16, Option<String>) {
    let users = bank.call(&bank.users);
    let (http, base) = users.raw();
    let response = http
        .post(format!("{base}/sessions"))
        .bearer_auth(users.caller_token())
        .header("x-client-address", address)
        .json(&json!({"username": username, "password": password}))
        .send()
        .await
        .unwrap();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|value| value.to_str().unwrap().to_owned());
    (response.status().as_u16(), retry_after)
}

#[tokio::test]
async fn guessing_passwords_is_throttled_per_username_and_per_address() {
    let bank = Bank::start().await;
    bank.sign_up("alice").await;
    bank.sign_up("bob").await;
    // Ten wrong guesses are allowed; the one after locks the username.
    for guess in 0..11 {
        let address = format!("203.0.113.{guess}");
        assert_eq!(
            log_in(&bank, "alice", "wrong password", &address).await.0,
            401
        );
    }
    // Alice's username is locked now, even with the right password, from
    // anywhere; Bob is not.
    let (status, retry_after) = log_in(&bank, "alice", PASSWORD, "198.51.100.1").await;
    assert_eq!(status, 429);
    let seconds: u64 = retry_after.expect("Retry-After").parse().unwrap();
    assert!(seconds > 30, "{seconds}");
    assert_eq!(log_in(&bank, "bob", PASSWORD, "198.51.100.1").await.0, 200);

    // One address failing at many usernames is slowed down too.
    let mut throttled = false;
    for n in 0..40 {
        let (status, _) = log_in(&bank, &format!("someone{n}"), "guess guess", "192.0.2.99").await;
        if status == 429 {
            throttled = true;
            break;
        }
        assert_eq!(status, 401);
    }
    assert!(throttled, "an address is throttled after its burst");
}

#[tokio::test]
async fn guesses_sent_all_at_once_are_counted_before_more_are_checked() {
    let bank = Bank::start().await;
    bank.sign_up("carol").await;
    let bank = &bank;
    // Waves of forty guesses at once, until the username is locked.
    let mut checked = 0;
    let mut waves = 0;
    loop {
        waves += 1;
        assert!(waves <= 50, "the username was never locked");
        let guesses = (0..40).map(|n| async move {
            log_in(
                bank,
                "carol",
                &format!("guess number {n}"),
                &format!("203.0.113.{n}"),
            )
            .await
        });
        let answers = futures_util::future::join_all(guesses).await;
        assert!(
            answers
                .iter()
                .all(|(status, _)| [401, 429].contains(status)),
            "{answers:?}"
        );
        checked += answers.iter().filter(|(status, _)| *status == 401).count();
        let locked = answers.iter().any(|(status, retry_after)| {
            *status == 429
                && retry_after
                    .as_deref()
                    .is_some_and(|s| s.parse::<u64>().unwrap() > 30)
        });
        if locked {
            break;
        }
    }
    // Ten allowed, the eleventh locks: no more were checked, however many
    // came at once.
    assert_eq!(checked, 11);
    let (status, _) = log_in(bank, "carol", PASSWORD, "198.51.100.3").await;
    assert_eq!(status, 429, "the right password waits out the lock too");
}
