//! On a log of a million events, every read of one key goes through the
//! `(key, value)` index: none scans the log, so its cost does not grow with
//! the log. (How fast they are is measured by the benchmark; here the
//! plans are checked, which is what can regress.)

mod common;

use bus::{
    protocol::EventTypes,
    store::{self, events::KeyPage},
};
use common::TestDb;
use sqlx::PgPool;

const EVENTS: i64 = 1_000_000;

async fn a_million_events(db: &TestDb) -> PgPool {
    let pool = store::connect(&db.url, 4)
        .await
        .expect("connect and migrate");
    // 100,000 accounts with ten movements each, as one statement.
    sqlx::query(
        "INSERT INTO bus.events (position, event_id, event_type, consistency_key,
                                 consistency_value, correlation_id, causation_id, recorded_at, data)
         SELECT g, gen_random_uuid(),
                CASE WHEN g % 3 = 0 THEN 'ConfirmedDebit' ELSE 'ConfirmedCredit' END,
                'acc-' || (g % 100000), g / 100000, gen_random_uuid(), NULL,
                now() - make_interval(secs => $1 - g), '{\"amount\": \"1.00\"}'
           FROM generate_series(1, $1::bigint) AS g",
    )
    .bind(EVENTS)
    .execute(&pool)
    .await
    .expect("fill the log");
    sqlx::query("ANALYZE bus.events")
        .execute(&pool)
        .await
        .expect("analyze");
    pool
}

fn assert_by_index(plan: &str, what: &str) {
    assert!(
        plan.contains("events_consistency_unique"),
        "{what} does not use the (key, value) index:\n{plan}"
    );
    assert!(
        !plan.contains("Seq Scan on events"),
        "{what} scans the log:\n{plan}"
    );
}

async fn plan_of(
    query: sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments>,
    pool: &PgPool,
) -> String {
    lines(query.fetch_all(pool).await.expect("explain"))
}

fn lines(rows: Vec<sqlx::postgres::PgRow>) -> String {
    rows.iter()
        .map(|row| sqlx::Row::get::<String, _>(row, 0))
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn key_reads_use_the_key_index_on_a_million_events() {
    let db = TestDb::new().await;
    let pool = a_million_events(&db).await;

    let explain = format!("EXPLAIN {}", store::events::LAST_VALUES_SQL);
    let plan = plan_of(
        sqlx::query(&explain).bind(vec!["acc-7", "acc-no-such-account"]),
        &pool,
    )
    .await;
    assert_by_index(
        &plan,
        "the writer's and consistency's look-up of a key's value",
    );

    let explain = format!("EXPLAIN {}", store::events::KEY_VALUE_AT_SQL);
    let plan = plan_of(sqlx::query(&explain).bind("acc-7").bind(EVENTS / 2), &pool).await;
    assert_by_index(&plan, "where a key query starts");

    let types = EventTypes::from_list(
        vec!["ConfirmedCredit".into(), "ConfirmedDebit".into()],
        "types",
    )
    .unwrap();
    for key in ["acc-7", "acc-no-such-account"] {
        let page = KeyPage {
            key,
            types: &types,
            after_value: 3,
            since: None,
            through: EVENTS,
            limit: 1000,
        };
        let mut query = store::events::key_page_query("EXPLAIN ", &page);
        let plan = lines(query.build().fetch_all(&pool).await.expect("explain"));
        assert_by_index(&plan, "a key query's page");
    }

    // And they answer: the key's events after a value, in order.
    let events = store::events::read_key_page(
        &pool,
        &KeyPage {
            key: "acc-7",
            types: &types,
            after_value: 3,
            since: None,
            through: EVENTS,
            limit: 1000,
        },
    )
    .await
    .unwrap();
    let values: Vec<String> = events
        .iter()
        .map(|e| serde_json::to_string(&e.consistency.value).unwrap())
        .collect();
    assert_eq!(values, ["4", "5", "6", "7", "8", "9"]);
    let last = store::events::last_values(&pool, &["acc-7", "nope"])
        .await
        .unwrap();
    assert_eq!(last.get("acc-7"), Some(&9));
    assert_eq!(last.get("nope"), None);
}
