//! Nectar, the loyalty script, on the scripted host with the real bus and
//! services: points earned by transfers, redeemed as cashback, rebuilt
//! from the log; and a runaway script stopped while its service stays up.
//! Racing redemptions are in `nectar_race.rs` (a file of its own: its
//! crowd of requests needs the database's connections to itself).

use acceptance::{Bank, Process, Service, eventually, money};
use bus::protocol::EventRecord;
use events::{DomainEvent, NectarCredit, NectarDebit};
use rust_decimal::Decimal;
use serde_json::{Value, json};

async fn points(bank: &Bank, nectar: &Process, user: &str, account: i64) -> (u16, Value) {
    bank.call(nectar)
        .get(Some(user), &format!("/accounts/{account}/points"))
        .await
}

/// Waits until the account shows `expected` points.
async fn points_become(bank: &Bank, nectar: &Process, user: &str, account: i64, expected: i64) {
    eventually(
        &format!("account {account} has {expected} points"),
        || async {
            let (status, body) = points(bank, nectar, user, account).await;
            (status == 200 && body["points"] == expected).then_some(())
        },
    )
    .await;
}

async fn redeem(
    bank: &Bank,
    nectar: &Process,
    user: &str,
    account: i64,
    body: Value,
    key: &str,
) -> (u16, Value) {
    bank.call(nectar)
        .post_with_key(
            Some(user),
            &format!("/accounts/{account}/redemptions"),
            body,
            key,
        )
        .await
}

/// A script of a test's own, in a file that goes with it.
struct ScriptFile(std::path::PathBuf);

impl ScriptFile {
    fn new(name: &str, code: &str) -> Self {
        let path = std::env::temp_dir().join(format!("{name}-{}.lua", uuid::Uuid::now_v7()));
        std::fs::write(&path, code).expect("write the script");
        Self(path)
    }

    /// The scripted host running this script on `bank`, with `settings`.
    fn host(&self, bank: &Bank, settings: &[(&str, &str)]) -> Process {
        let path = self.0.display().to_string();
        let mut all = vec![("SCRIPT", path.as_str())];
        all.extend_from_slice(settings);
        bank.another_with(Service::Nectar, &all)
    }
}

impl Drop for ScriptFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn decode<E: DomainEvent>(events: &[EventRecord]) -> Vec<E> {
    events
        .iter()
        .filter(|event| event.event_type == E::TYPE)
        .map(|event| E::decode(event.data.get()).expect("the event's data"))
        .collect()
}

/// Ann, with an account holding `funds`, and Bob to pay.
async fn ann_and_bob(bank: &Bank, funds: &str) -> (i64, i64) {
    let ann = bank.sign_up("ann").await;
    let bob = bank.sign_up("bob").await;
    bank.deposit("ann", ann, funds).await;
    (ann, bob)
}

#[tokio::test]
async fn transfers_out_earn_a_point_per_whole_ten_pounds_and_nothing_else_does() {
    let bank = Bank::start().await;
    let nectar = bank.another(Service::Nectar);
    let (ann, bob) = ann_and_bob(&bank, "500.00").await;
    let mut earning = Vec::new();
    for amount in ["9.99", "19.99"] {
        earning.push((bank.transfer("ann", ann, bob, amount).await, amount));
    }
    // A withdrawal and a refused transfer earn nothing.
    let (status, body) = bank
        .call(&bank.accounts[0])
        .post(
            Some("ann"),
            &format!("/accounts/{ann}/withdrawals"),
            json!({"amount": "50.00"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let refused = bank.transfer("ann", ann, bob, "9000.00").await;
    assert_eq!(bank.decided("ann", refused).await["status"], "rejected");
    let last = bank.transfer("ann", ann, bob, "10.00").await;
    earning.push((last, "10.00"));
    for (transfer, _) in &earning {
        assert_eq!(bank.decided("ann", *transfer).await["status"], "accepted");
    }
    // Nectar handles one account's debits in order: once the last one's
    // points are in the log, every earlier debit has been decided on.
    let credits: Vec<NectarCredit> = eventually("the last transfer's points", || async {
        let credits = decode::<NectarCredit>(&bank.log(&[NectarCredit::TYPE]).await);
        credits
            .iter()
            .any(|credit| credit.transaction_id == last)
            .then_some(credits)
    })
    .await;
    let mut earned: Vec<(i64, i64, i64)> = credits
        .iter()
        .map(|credit| (credit.account_id, credit.transaction_id, credit.points))
        .collect();
    earned.sort_unstable();
    assert_eq!(
        earned,
        [(ann, earning[1].0, 1), (ann, last, 1)],
        "£9.99 earns 0, £19.99 and £10.00 earn 1 each, and only the sender earns"
    );
    points_become(&bank, &nectar, "ann", ann, 2).await;
    let (status, body) = points(&bank, &nectar, "ann", ann).await;
    assert_eq!(
        (status, &body["cash_value"]),
        (200, &json!("0.02")),
        "{body}"
    );
    let (status, body) = points(&bank, &nectar, "bob", bob).await;
    assert_eq!((status, &body["points"]), (200, &json!(0)), "{body}");
    // Nobody else sees Ann's points.
    let (status, _) = points(&bank, &nectar, "bob", ann).await;
    assert_eq!(status, 404);
    let (status, _) = bank
        .call(&nectar)
        .get(None, &format!("/accounts/{ann}/points"))
        .await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn a_redemption_pays_cashback_once_and_bad_ones_change_nothing() {
    let bank = Bank::start().await;
    let nectar = bank.another(Service::Nectar);
    let (ann, bob) = ann_and_bob(&bank, "1000.00").await;
    let transfer = bank.transfer("ann", ann, bob, "250.00").await;
    assert_eq!(bank.decided("ann", transfer).await["status"], "accepted");
    points_become(&bank, &nectar, "ann", ann, 25).await;

    for (body, code) in [
        (json!({"points": 26}), "insufficient_points"),
        (json!({"points": 0}), "invalid_input"),
        (json!({"points": "5"}), "invalid_input"),
        (json!({"points": 1.5}), "invalid_input"),
        (json!({}), "invalid_input"),
    ] {
        let (status, answer) = redeem(
            &bank,
            &nectar,
            "ann",
            ann,
            body.clone(),
            &format!("bad-{body}"),
        )
        .await;
        assert!(status == 400 || status == 422, "{body}: {status} {answer}");
        assert_eq!(answer["error"]["code"], code, "{body}: {answer}");
    }
    let (status, _) = redeem(&bank, &nectar, "bob", ann, json!({"points": 1}), "bob-1").await;
    assert_eq!(status, 404, "Bob cannot redeem Ann's points");
    let (status, _) = redeem(
        &bank,
        &nectar,
        "staff",
        ann,
        json!({"points": 1}),
        "staff-1",
    )
    .await;
    assert_eq!(status, 403, "staff look but do not act");
    let (status, _) = bank
        .call(&nectar)
        .post(
            Some("ann"),
            "/accounts/abc/redemptions",
            json!({"points": 1}),
        )
        .await;
    assert_eq!(status, 400);

    let before = bank.balance("ann", ann).await;
    let (status, first) = redeem(
        &bank,
        &nectar,
        "ann",
        ann,
        json!({"points": 20}),
        "redeem-1",
    )
    .await;
    assert_eq!(status, 201, "{first}");
    assert_eq!(first["cashback"], "0.20");
    assert_eq!(first["points"], 5);
    // A retry of the same request answers the same and pays nothing more.
    let (status, again) = redeem(
        &bank,
        &nectar,
        "ann",
        ann,
        json!({"points": 20}),
        "redeem-1",
    )
    .await;
    assert_eq!((status, &again), (201, &first));
    bank.balance_becomes("ann", ann, before + Decimal::new(20, 2))
        .await;
    points_become(&bank, &nectar, "ann", ann, 5).await;

    let log = bank.log(&["*"]).await;
    let debits = decode::<NectarDebit>(&log);
    assert_eq!(debits.len(), 1, "{debits:?}");
    assert_eq!(debits[0].points, 20);
    assert_eq!(
        json!(debits[0].redemption_id.to_string()),
        first["redemption_id"]
    );
    // The cash came in the same message as the points went out.
    let debit = log
        .iter()
        .find(|event| event.event_type == NectarDebit::TYPE)
        .expect("the debit");
    let cash = log
        .iter()
        .find(|event| {
            event.event_type == "ConfirmedCredit" && event.correlation_id == debit.correlation_id
        })
        .expect("the cashback");
    assert_eq!(cash.position, debit.position + 1);
    // The points answer the version they stand for: the debit's. Bob's,
    // never touched, have none.
    let (_, now) = points(&bank, &nectar, "ann", ann).await;
    assert_eq!(now["version"], json!(debit.consistency.value), "{now}");
    let (_, untouched) = points(&bank, &nectar, "bob", bob).await;
    assert_eq!(untouched["version"], Value::Null, "{untouched}");
    let cash: Value = serde_json::from_str(cash.data.get()).expect("JSON");
    assert_eq!(money(&cash["amount"]), Decimal::new(20, 2));
    assert_eq!(cash["transaction_id"], Value::Null);
    assert_eq!(cash["note"], "Nectar cashback: 20 points");
    // No money event was published by anyone but accounts and Nectar's cashback.
    assert!(log.iter().all(|event| {
        event.event_type != "ConfirmedDebit"
            || event
                .published_by
                .as_deref()
                .is_some_and(|by| by.starts_with("accounts@"))
    }));
}

#[tokio::test]
async fn dropping_the_scripts_tables_and_restarting_rebuilds_the_same_balances() {
    let bank = Bank::start().await;
    let mut nectar = bank.another(Service::Nectar);
    let customers = bank.funded_customers(3, "500.00").await;
    let mut expected = Vec::new();
    for (index, (user, account)) in customers.iter().enumerate() {
        let (_, payee) = &customers[(index + 1) % customers.len()];
        let amount = format!("{}.00", 40 + 30 * index);
        let transfer = bank.transfer(user, *account, *payee, &amount).await;
        assert_eq!(bank.decided(user, transfer).await["status"], "accepted");
        let earned = (4 + 3 * index) as i64;
        points_become(&bank, &nectar, user, *account, earned).await;
        let (status, body) =
            redeem(&bank, &nectar, user, *account, json!({"points": 2}), "r").await;
        assert_eq!(status, 201, "{body}");
        expected.push((user.clone(), *account, earned - 2));
    }
    for (user, account, left) in &expected {
        points_become(&bank, &nectar, user, *account, *left).await;
    }
    let published = bank
        .log(&[NectarCredit::TYPE, NectarDebit::TYPE])
        .await
        .len();

    nectar.terminate();
    sqlx::query("DROP SCHEMA nectar CASCADE")
        .execute(&bank.db.pool().await)
        .await
        .expect("drop the script's tables");
    nectar.restart();
    for (user, account, left) in &expected {
        let (status, body) = points(&bank, &nectar, user, *account).await;
        assert_eq!(
            (status, &body["points"]),
            (200, &json!(left)),
            "{user}: {body}"
        );
    }
    assert_eq!(
        bank.log(&[NectarCredit::TYPE, NectarDebit::TYPE])
            .await
            .len(),
        published,
        "a rebuild publishes nothing"
    );
}

#[tokio::test]
async fn a_runaway_script_is_stopped_with_a_clear_error_and_its_service_stays_up() {
    let bank = Bank::start().await;
    let script = ScriptFile::new(
        "runaway",
        r#"
        service{name = "nectar"}
        local hoard = {}
        bus:on("NectarCredit", function(event) end)
        bus:route("GET", "/spin", function(req) while true do end end)
        bus:route("GET", "/grow", function(req)
          while true do hoard[#hoard + 1] = string.rep("x", 4096) end
        end)
        bus:route("GET", "/fine", function(req) return {body = {fine = true}} end)
        "#,
    );
    let host = script.host(
        &bank,
        &[
            ("MAX_INSTRUCTIONS", "2000000"),
            ("MAX_MEMORY_MIB", "8"),
            ("SCRIPT_VMS", "1"),
            ("RUST_LOG", "error"),
        ],
    );
    let api = bank.call(&host);
    for (path, clear_error) in [
        (
            "/spin",
            "stopped after 2000000 Lua instructions in one call",
        ),
        ("/grow", "using more than 8 MiB in one call"),
    ] {
        let (status, body) = api.get(None, path).await;
        assert_eq!(status, 500, "{path}: {body}");
        assert_eq!(
            body["error"]["code"], "internal",
            "nothing of the script shows: {body}"
        );
        eventually(&format!("{path}'s error in the log"), || async {
            host.log().contains(clear_error).then_some(())
        })
        .await;
        let (status, body) = api.get(None, "/fine").await;
        assert_eq!(
            (status, &body),
            (200, &json!({"fine": true})),
            "after {path}"
        );
        let (status, _) = api.get(None, "/health").await;
        assert_eq!(status, 200);
    }
}

#[tokio::test]
async fn a_retry_of_a_request_whose_answer_was_lost_is_answered_from_its_stored_events() {
    let bank = Bank::start().await;
    // A route that publishes without reading a version first, so that it
    // reaches the publish with the bus frozen.
    let script = ScriptFile::new(
        "gifts",
        r#"
        service{name = "nectar"}
        bus:on("NectarCredit", function(event) end)
        bus:route("POST", "/accounts/{id}/gifts", function(req)
          local id = math.tointeger(tonumber(req.params.id))
          bus:publish{type = "NectarCredit", key = "nectar-" .. id,
                      data = {account_id = id, points = 5, transaction_id = 1}}
          return {status = http.CREATED, body = {gift = req.id}}
        end)
        "#,
    );
    let host = script.host(&bank, &[("BUS_DEADLINE_MS", "1000")]);
    let ann = bank.sign_up("ann").await;
    let api = bank.call(&host);
    api.token("ann").await;
    let path = format!("/accounts/{ann}/gifts");

    // The bus takes the message and says nothing: the outcome is unknown.
    bank.bus.freeze();
    let (status, body) = api
        .post_with_key(Some("ann"), &path, json!({}), "gift-1")
        .await;
    bank.bus.resume();
    assert!(
        status >= 500,
        "an unknown outcome is not an answer: {status} {body}"
    );

    // The retry sends the same events again instead of running the route,
    // and says what was done (once the host is back on the bus); a third
    // try gets the same answer.
    let retried = eventually("the retry is answered", || async {
        let (status, body) = api
            .post_with_key(Some("ann"), &path, json!({}), "gift-1")
            .await;
        // Not yet answered: an outcome still unknown, or the first try still held.
        assert!(
            status == 200 || status == 409 || status >= 500,
            "{status} {body}"
        );
        (status == 200).then_some(body)
    })
    .await;
    assert_eq!(retried["replayed"], true, "{retried}");
    let events = retried["events"].as_array().expect("the events");
    assert_eq!(events.len(), 1, "{retried}");
    assert_eq!(events[0]["type"], "NectarCredit");
    assert_eq!(events[0]["key"], format!("nectar-{ann}"));
    assert_eq!(events[0]["data"]["points"], 5);
    let (status, again) = api
        .post_with_key(Some("ann"), &path, json!({}), "gift-1")
        .await;
    assert_eq!((status, &again), (200, &retried));

    let credits = decode::<NectarCredit>(&bank.log(&[NectarCredit::TYPE]).await);
    assert_eq!(credits.len(), 1, "the gift is given once: {credits:?}");
}
