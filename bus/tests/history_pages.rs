//! Reading history in pages, on a log that just grew by 200,000 events
//! (no statistics yet): pages follow each other without a gap or a repeat,
//! whether the types asked for are nearly every event or a rare few, and a
//! rare type's history is covered in a few wide reads, not thousands of
//! narrow ones.

mod common;

use std::collections::BTreeSet;

use bus::{
    protocol::EventTypes,
    store::{self, events::Page},
};
use common::TestDb;
use sqlx::PgPool;

const EVENTS: i64 = 200_000;
/// Every this many positions, a `Rare` event; the others are `Common`.
const RARE_EVERY: i64 = 20_000;

async fn a_log_that_just_grew(db: &TestDb) -> PgPool {
    let pool = store::connect(&db.url, 2)
        .await
        .expect("connect and migrate");
    sqlx::query(
        "INSERT INTO bus.events (position, event_id, event_type, consistency_key,
                                 consistency_value, correlation_id, causation_id, recorded_at, data)
         SELECT g, gen_random_uuid(),
                CASE WHEN g % $2 = 0 THEN 'Rare' ELSE 'Common' END,
                'key-' || g, 0, gen_random_uuid(), NULL, now(), '{}'
           FROM generate_series(1, $1::bigint) AS g",
    )
    .bind(EVENTS)
    .bind(RARE_EVERY)
    .execute(&pool)
    .await
    .expect("fill the log");
    pool
}

fn types(names: &[&str]) -> EventTypes {
    EventTypes::Only(
        names
            .iter()
            .map(|name| (*name).to_owned())
            .collect::<BTreeSet<_>>(),
    )
}

/// Every event of `types` read page by page from the start; the positions
/// and the number of pages.
async fn read_all(pool: &PgPool, types: &EventTypes, limit: i64) -> (Vec<i64>, usize) {
    let mut db = pool.acquire().await.expect("a connection");
    let (mut positions, mut pages, mut after) = (Vec::new(), 0, 0);
    while after < EVENTS {
        let page = Page {
            after,
            through: EVENTS,
            types,
            limit,
        };
        let read = store::events::read_page(&mut db, &page)
            .await
            .expect("a page");
        assert!(read.events.len() as i64 <= limit);
        assert!(read.covered_through > after, "no progress after {after}");
        for event in &read.events {
            assert!(event.position > after && event.position <= read.covered_through);
        }
        positions.extend(read.events.iter().map(|event| event.position));
        after = read.covered_through;
        pages += 1;
    }
    (positions, pages)
}

#[tokio::test]
async fn pages_cover_dense_and_rare_types_without_gaps_or_repeats() {
    let db = TestDb::new().await;
    let pool = a_log_that_just_grew(&db).await;

    let (every, pages) = read_all(&pool, &types(&["Common", "Rare"]), 1000).await;
    assert_eq!(every, (1..=EVENTS).collect::<Vec<_>>());
    assert_eq!(pages, (EVENTS / 1000) as usize, "each page full");

    let (common, _) = read_all(&pool, &types(&["Common", "Absent"]), 777).await;
    assert_eq!(
        common,
        (1..=EVENTS)
            .filter(|position| position % RARE_EVERY != 0)
            .collect::<Vec<_>>()
    );

    let (rare, pages) = read_all(&pool, &types(&["Rare", "Absent"]), 1000).await;
    assert_eq!(
        rare,
        (1..=EVENTS / RARE_EVERY)
            .map(|n| n * RARE_EVERY)
            .collect::<Vec<_>>()
    );
    // Each read widens its window while it finds too little, up to 50,000
    // positions: four reads cover the 200,000.
    assert_eq!(pages, 4, "a rare type's history in wide reads");
}
