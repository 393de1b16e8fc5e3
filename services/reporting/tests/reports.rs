//! Every report, freshness, who may call, and bad input.

mod common;

use common::{Console, fixture};
use serde_json::{Value, json};

#[tokio::test]
async fn the_reports_count_what_the_log_holds() {
    let console = Console::start(&fixture::events()).await;
    let range = "from=2025-03-01T09:00:00Z&to=2025-03-01T16:00:00Z";
    let hours = console
        .get(&format!("/reports/events?bucket=hour&{range}"))
        .await;
    assert_eq!(hours["bucket"], "hour");
    let row = |start: &str, event_type: &str, events: i64| json!({"start": format!("2025-03-01T{start}:00Z"), "event_type": event_type, "events": events});
    assert_eq!(
        hours["rows"],
        json!([
            row("09:00", "AccountCreated", 3),
            row("09:00", "AccountCreationRequest", 3),
            row("10:00", "ConfirmedCredit", 2),
            row("11:00", "ConfirmedDebit", 1),
            row("12:00", "AcceptedTransaction", 1),
            row("12:00", "ConfirmedCredit", 1),
            row("12:00", "ConfirmedDebit", 1),
            row("12:00", "PendingTransaction", 1),
            row("13:00", "PendingTransaction", 1),
            row("13:00", "RejectedTransaction", 1),
            row("14:00", "ConfirmedCredit", 1),
            row("15:00", "ConfirmedDebit", 1),
        ])
    );
    // `from` is taken back to its bucket's start.
    let minutes = console
        .get("/reports/events?bucket=minute&from=2025-03-01T12:00:30Z&to=2025-03-01T12:05:00Z")
        .await;
    assert_eq!(minutes["bucket"], "minute");
    assert_eq!(minutes["rows"].as_array().unwrap().len(), 4);
    assert_eq!(minutes["rows"][0]["start"], "2025-03-01T12:00:00Z");

    let transfers = console.get(&format!("/reports/transfers?{range}")).await;
    assert_eq!(
        transfers["rows"],
        json!([
            {"hour": "2025-03-01T12:00:00Z", "requested": 1, "accepted": 1, "rejected": 0,
             "volume": "30.00"},
            {"hour": "2025-03-01T13:00:00Z", "requested": 1, "accepted": 0, "rejected": 1,
             "volume": "0.00"},
        ])
    );
    assert_eq!(
        console.get("/reports/rejections").await["rows"],
        json!([{"reason": "insufficient funds", "transfers": 1, "amount": "500.00"}])
    );
    let cash = |start: &str, deposits: &str, dn: i64, withdrawals: &str, wn: i64| {
        json!({"start": start, "deposits": deposits, "deposit_count": dn,
               "withdrawals": withdrawals, "withdrawal_count": wn})
    };
    assert_eq!(
        console
            .get(&format!("/reports/cash?bucket=hour&{range}"))
            .await["rows"],
        json!([
            cash("2025-03-01T10:00:00Z", "150.00", 2, "0.00", 0),
            cash("2025-03-01T11:00:00Z", "0.00", 0, "20.00", 1),
            cash("2025-03-01T14:00:00Z", "1000.00", 1, "0.00", 0),
            cash("2025-03-01T15:00:00Z", "0.00", 0, "5.00", 1),
        ])
    );
    assert_eq!(
        console
            .get("/reports/cash?bucket=day&from=2025-03-01T05:00:00Z&to=2025-03-02T00:00:00Z")
            .await["rows"],
        json!([cash("2025-03-01T00:00:00Z", "1150.00", 3, "25.00", 2)])
    );
    let band = |label: &str, lower: &str, upper: Value, accounts: i64, total: &str| {
        json!({"label": label, "lower": lower, "upper": upper, "accounts": accounts,
               "total": total})
    };
    let balances = console.get("/reports/balances").await;
    assert_eq!(
        balances["bands"],
        json!([
            band("£0–£100", "0.00", json!("100.00"), 2, "125.00"),
            band("£100–£1,000", "100.00", json!("1000.00"), 0, "0.00"),
            band("£1,000–£10,000", "1000.00", json!("10000.00"), 1, "1000.00"),
            band(
                "£10,000–£100,000",
                "10000.00",
                json!("100000.00"),
                0,
                "0.00"
            ),
            band("£100,000 and over", "100000.00", Value::Null, 0, "0.00"),
        ])
    );
    assert_eq!(
        balances["largest"],
        json!([
            {"account_id": 3, "username": "alice", "balance": "1000.00"},
            {"account_id": 2, "username": "bob", "balance": "75.00"},
            {"account_id": 1, "username": "alice", "balance": "50.00"},
        ])
    );
    let total = |event_type: &str, events: i64, amount: &str| json!({"event_type": event_type, "events": events, "amount": amount});
    assert_eq!(
        console.get("/reports/totals").await["rows"],
        json!([
            total("AcceptedTransaction", 1, "30.00"),
            total("AccountCreated", 3, "0.00"),
            total("AccountCreationRequest", 3, "0.00"),
            total("ConfirmedCredit", 4, "1180.00"),
            total("ConfirmedDebit", 3, "55.00"),
            total("PendingTransaction", 2, "530.00"),
            total("RejectedTransaction", 1, "500.00"),
        ])
    );
    assert_eq!(
        console.get("/freshness").await,
        json!({"applied_position": 17, "applied_at": "2025-03-01T15:20:10Z"})
    );
    // The defaults: the last day (or hour) up to now, which is empty here.
    assert_eq!(console.get("/reports/events").await["rows"], json!([]));
    assert_eq!(
        console.get("/reports/events?bucket=minute").await["bucket"],
        "minute"
    );
    assert_eq!(console.get("/reports/transfers").await["rows"], json!([]));
    assert_eq!(
        console.get("/reports/cash?bucket=day").await["rows"],
        json!([])
    );
    console.stop().await;
}

#[tokio::test]
async fn only_staff_may_look_and_bad_input_is_refused_precisely() {
    let console = Console::start(&fixture::events()).await;
    for path in [
        "/events",
        "/freshness",
        "/reports/totals",
        "/as-of?at=2025-03-01T12:00:00Z",
    ] {
        let (status, body) = console.get_as(path, &console.customer_token).await;
        assert_eq!(status, 403, "{path}: {body}");
        assert_eq!(
            body["error"]["message"],
            "the reporting API is for bank staff"
        );
        let (status, _) = console.get_as(path, "not-a-token").await;
        assert_eq!(status, 401, "{path}");
    }
    let cases = [
        ("/events?types=UserCreated", "UserCreated"),
        ("/events?types=Nope", "Nope"),
        ("/events?at=yesterday", "at is an RFC 3339 time"),
        ("/events?from=2025-03-01", "from is an RFC 3339 time"),
        (
            "/events?before=3&after=1",
            "at most one of before, after and at",
        ),
        ("/events?before=3&at=2025-03-01T12:00:00Z", "at most one"),
        ("/events?limit=0", "limit is a whole number from 1 to 200"),
        ("/events?limit=201", "limit"),
        ("/events?before=x", "before is a whole number"),
        ("/events?account=x", "account is a whole number"),
        ("/events?correlation=x", "correlation is a UUID"),
        ("/events?min_amount=1.001", "min_amount is an amount"),
        (
            "/events?min_amount=5&max_amount=1",
            "min_amount must be at most max_amount",
        ),
        (
            "/events?from=2025-03-01T12:00:00Z&to=2025-03-01T11:00:00Z",
            "from must be before to",
        ),
        ("/as-of", "at is required"),
        ("/as-of?at=2025-03-01", "at is an RFC 3339 time"),
        ("/as-of?at=9999-01-01T00:00:00Z", "out of the range"),
        (
            "/reports/events?bucket=day",
            "bucket is one of minute, hour",
        ),
        ("/reports/cash?bucket=minute", "bucket is one of hour, day"),
        (
            "/reports/events?bucket=minute&from=2025-01-01T00:00:00Z&to=2025-03-02T00:00:00Z",
            "",
        ),
    ];
    for (path, wanted) in cases {
        let (status, body) = console.get_as(path, &console.staff_token).await;
        if wanted.is_empty() {
            // A long range of a sparse log is fine: only rows count.
            assert_eq!(status, 200, "{path}: {body}");
            continue;
        }
        assert_eq!(status, 400, "{path}: {body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(wanted), "{path}: {message}");
    }
    console.stop().await;
}
