//! A million events: the tables filled in bulk the way applying would
//! fill them (10,000 accounts, 5,000 users, thirty days), then the exact
//! SQL of the routes run under `EXPLAIN ANALYZE`: no sequential scan of a
//! big table anywhere in a plan. The execution times are printed for
//! `services/BENCHMARKS.md`, not asserted: a time depends on the machine's
//! load (one CI run saw 145 ms for a plan that otherwise takes under 2), the plan's shape
//! does not.

mod common;

mod big;

use std::time::{Duration, Instant};

use big::{Arg, Plan, Target};
use chrono::{DateTime, TimeDelta, Utc};
use reporting::store::{
    browse::{self, Filter, Range},
    history, time_travel,
};
use testkit::TestDb;

#[tokio::test]
async fn the_routes_queries_stay_fast_on_a_million_events() {
    let started = Instant::now();
    let db = TestDb::new().await;
    let mut connection = common::migrated(&db.url).await;
    big::fill(&mut connection).await;
    let filled = started.elapsed();
    let target = Target::new(&mut connection).await;

    let mid: DateTime<Utc> = big::start() + TimeDelta::days(15) + TimeDelta::seconds(12_345);
    let account = 4242;
    let all = Filter::default();
    let debits = Filter {
        types: vec!["ConfirmedDebit".into()],
        ..Filter::default()
    };
    let transfers = Filter {
        types: vec!["PendingTransaction".into(), "RejectedTransaction".into()],
        ..Filter::default()
    };
    let of_account = Filter {
        account: Some(account),
        ..Filter::default()
    };
    let credits_of_account = Filter {
        types: vec!["ConfirmedCredit".into()],
        account: Some(account),
        ..Filter::default()
    };
    let of_key = Filter {
        key: Some(format!("acc-{account}")),
        ..Filter::default()
    };
    let (correlation, event_id): (uuid::Uuid, uuid::Uuid) =
        sqlx::query_as("SELECT correlation_id, event_id FROM events WHERE position = 500000")
            .fetch_one(&mut connection)
            .await
            .expect("an event");
    let of_correlation = Filter {
        correlation: Some(correlation),
        ..Filter::default()
    };
    let last_hour = Filter {
        from: Some(mid - TimeDelta::hours(1)),
        to: Some(mid),
        ..Filter::default()
    };

    let mut plans: Vec<Plan> = Vec::new();
    let pages = [
        ("newest page", &all, Range::Newest),
        ("older page", &all, Range::Below(500_000)),
        ("newer page", &all, Range::Above(500_000)),
        ("debits", &debits, Range::Newest),
        ("transfers, older", &transfers, Range::Below(700_000)),
        ("an account", &of_account, Range::Newest),
        ("an account, older", &of_account, Range::Below(600_000)),
        ("an account, newer", &of_account, Range::Above(600_000)),
        ("an account's credits", &credits_of_account, Range::Newest),
        ("a key", &of_key, Range::Newest),
        ("a correlation", &of_correlation, Range::Newest),
        ("an hour", &last_hour, Range::Newest),
    ];
    for (name, filter, range) in pages {
        let query = || browse::page_query(big::EXPLAIN, filter, range, 51);
        plans.push(target.explain_built(&mut connection, name, query).await);
    }
    for (name, filter) in [
        ("seek", &all),
        ("seek debits", &debits),
        ("seek an account", &of_account),
    ] {
        let query = || browse::seek_query(big::EXPLAIN, filter, mid);
        plans.push(target.explain_built(&mut connection, name, query).await);
    }
    let [hour, minute, bound] = time_travel::bounds(mid).expect("bounds");
    let key = format!("acc-{account}");
    let statements: Vec<(&str, &str, Vec<Arg>)> = vec![
        (
            "key history",
            history::KEY_EVENTS,
            vec![Arg::Text(key), Arg::I64(-1), Arg::I64(51)],
        ),
        (
            "correlation",
            history::CORRELATION,
            vec![Arg::Uuid(correlation), Arg::I64(1000)],
        ),
        ("one event", history::BY_POSITION, vec![Arg::I64(500_000)]),
        ("its cause", history::BY_EVENT_ID, vec![Arg::Uuid(event_id)]),
        (
            "what it caused",
            history::CAUSED_BY,
            vec![Arg::Uuids(vec![event_id]), Arg::I64(100)],
        ),
        ("freshness", history::FRESHNESS, vec![]),
        (
            "as-of totals",
            time_travel::TYPE_TOTALS_BEFORE,
            vec![Arg::Time(hour), Arg::Time(minute), Arg::Time(bound)],
        ),
        (
            "as-of users",
            time_travel::USERS_BEFORE,
            vec![Arg::Time(mid)],
        ),
        (
            "account at",
            time_travel::ACCOUNT_AT,
            vec![Arg::I64(account), Arg::Time(mid)],
        ),
        (
            "its last line",
            time_travel::LAST_LINE_AT,
            vec![Arg::I64(account), Arg::Time(mid)],
        ),
        (
            "its lines",
            time_travel::LINES_AT,
            vec![
                Arg::I64(account),
                Arg::I64(i64::MAX),
                Arg::Time(mid),
                Arg::I64(51),
            ],
        ),
    ];
    for (name, sql, args) in statements {
        plans.push(target.explain(&mut connection, name, sql, args).await);
    }

    for plan in &plans {
        println!(
            "{:<22} {:>8.3} ms  rows {:>5}  {}",
            plan.name, plan.execution_ms, plan.rows, plan.nodes
        );
    }
    println!(
        "filled in {filled:?}; the whole test took {:?}",
        started.elapsed()
    );
    let scanning: Vec<&Plan> = plans.iter().filter(|p| !p.big_scans.is_empty()).collect();
    assert!(
        scanning.is_empty(),
        "sequential scans of big tables: {scanning:#?}"
    );
    // The pages are full: the plans did real work.
    for plan in &plans[..6] {
        assert!(plan.rows > 0, "{plan:?}");
    }
    assert!(started.elapsed() < Duration::from_secs(240));
}
