//! Filling the reporting tables with a million events in bulk, and
//! reading query plans.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{
    Executor, PgConnection, Postgres, QueryBuilder, Row, postgres::PgArguments, query::Query,
};
use uuid::Uuid;

pub const EXPLAIN: &str = "EXPLAIN (ANALYZE, FORMAT JSON)";

pub const EVENTS: i64 = 1_000_000;

/// 2025-01-01T00:00:00Z; the log spans thirty days from here.
pub fn start() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2025-01-01T00:00:00Z")
        .expect("a time")
        .with_timezone(&Utc)
}

/// One generated event per position: its kind by `g % 100` (2% account
/// openings, 56% transfers: pending, accepted, debit, credit in turn, 25%
/// deposits, 15% withdrawals, 2% rejections), its accounts spread over
/// 10,000, one every 2.592 seconds.
const GENERATE: &str = "
CREATE TEMP TABLE gen AS
SELECT g, at, a, b, kind, amount,
       CASE kind WHEN 'request' THEN 'AccountCreationRequest' WHEN 'created' THEN 'AccountCreated'
                 WHEN 'pending' THEN 'PendingTransaction' WHEN 'accepted' THEN 'AcceptedTransaction'
                 WHEN 'rejected' THEN 'RejectedTransaction'
                 WHEN 'deposit' THEN 'ConfirmedCredit' WHEN 'credit' THEN 'ConfirmedCredit'
                 ELSE 'ConfirmedDebit' END AS event_type,
       CASE WHEN kind IN ('pending', 'accepted', 'debit', 'credit') THEN g / 4
            WHEN kind = 'rejected' THEN g END AS transaction_id
  FROM (SELECT g, timestamptz '2025-01-01T00:00:00Z' + g * interval '2.592 seconds' AS at,
               (g * 7919) % 10000 + 1 AS a, (g * 104729 + 17) % 10000 + 1 AS b,
               ((g * 37) % 50000 + 100) / 100.0 AS amount,
               CASE WHEN g % 100 = 0 THEN 'request' WHEN g % 100 = 1 THEN 'created'
                    WHEN g % 100 < 58 THEN (ARRAY['pending', 'accepted', 'debit', 'credit'])[g % 4 + 1]
                    WHEN g % 100 < 83 THEN 'deposit' WHEN g % 100 < 98 THEN 'withdrawal'
                    ELSE 'rejected' END AS kind
          FROM generate_series(1::bigint, 1000000) AS g) raw;

INSERT INTO events (position, event_id, event_type, key, value, correlation_id, causation_id,
                    recorded_at, amount, transaction_id, balance_after, summary, data)
SELECT g, md5('e' || g)::uuid, event_type,
       CASE WHEN kind = 'request' THEN 'creation-' || g
            WHEN transaction_id IS NOT NULL AND kind NOT IN ('debit', 'credit')
              THEN 'trans-' || transaction_id
            ELSE 'acc-' || a END,
       g, md5('c' || g / 4)::uuid,
       CASE WHEN kind = 'created' THEN md5('e' || g - 1)::uuid
            WHEN kind IN ('accepted', 'debit', 'credit') THEN md5('e' || g - g % 4)::uuid END,
       at,
       CASE WHEN kind NOT IN ('request', 'created') THEN amount END,
       transaction_id,
       CASE WHEN kind IN ('deposit', 'withdrawal', 'debit', 'credit')
            THEN (g % 100000) / 100.0 WHEN kind = 'created' THEN 0 END,
       event_type || ' ' || g,
       jsonb_build_object('account_id', a, 'amount', amount::text, 'note', 'note ' || g % 997,
                          'username', 'user' || a % 5000, 'transaction_id', transaction_id)
  FROM gen;

INSERT INTO event_accounts (account_id, position)
SELECT a, g FROM gen WHERE kind NOT IN ('request')
UNION ALL
SELECT b, g FROM gen WHERE kind IN ('pending', 'accepted', 'rejected') AND b <> a;

INSERT INTO account_lines (account_id, value, position, recorded_at, event_type, amount, delta,
                           balance_after, transaction_id, note)
SELECT a, g, g, at, event_type, amount,
       CASE WHEN event_type = 'ConfirmedCredit' THEN amount ELSE -amount END,
       (g % 100000) / 100.0, transaction_id, 'note ' || g % 997
  FROM gen WHERE event_type IN ('ConfirmedCredit', 'ConfirmedDebit');

INSERT INTO accounts (account_id, username, balance, version, opened_at, opened_position)
SELECT id, 'user' || id % 5000, (id * 7717) % 5000000 / 100.0, 100,
       timestamptz '2025-01-01T00:00:00Z' + id * interval '1 second', id
  FROM generate_series(1, 10000) AS id;

INSERT INTO users (username, first_seen_at, first_position)
SELECT 'user' || n, timestamptz '2025-01-01T00:00:00Z' + n * interval '2 seconds', n
  FROM generate_series(0, 4999) AS n;

INSERT INTO transfers (transaction_id, from_account_id, to_account_id, amount, reference,
                       username, status, reason, requested_at, decided_at)
SELECT transaction_id, a, b, amount, 'ref ' || g % 50, 'user' || a % 5000,
       CASE WHEN kind = 'rejected' THEN 'rejected' ELSE 'accepted' END,
       CASE WHEN kind = 'rejected' THEN 'insufficient funds' END, at, at
  FROM gen WHERE kind IN ('pending', 'rejected');

INSERT INTO minute_totals
SELECT date_trunc('minute', recorded_at), event_type, count(*), coalesce(sum(amount), 0),
       count(*) FILTER (WHERE cash), coalesce(sum(amount) FILTER (WHERE cash), 0)
  FROM (SELECT recorded_at, event_type, amount,
               transaction_id IS NULL AND event_type IN ('ConfirmedCredit', 'ConfirmedDebit') AS cash
          FROM events) e
 GROUP BY 1, 2;

INSERT INTO hour_totals
SELECT date_trunc('hour', minute), event_type, sum(events), sum(amount), sum(cash_events),
       sum(cash_amount)
  FROM minute_totals GROUP BY 1, 2;

INSERT INTO rejection_totals
SELECT reason, count(*), sum(amount) FROM transfers WHERE reason IS NOT NULL GROUP BY reason;
";

/// Fills the tables as applying a million events would, fast: the
/// secondary indexes are dropped, the rows inserted, and the indexes made
/// again from the migrations' own definitions.
pub async fn fill(db: &mut PgConnection) {
    db.execute(
        "SET timezone TO 'UTC'; SET synchronous_commit TO off;
         SET maintenance_work_mem TO '256MB'; SET work_mem TO '64MB'",
    )
    .await
    .expect("settings");
    let indexes: Vec<(String, String)> = sqlx::query_as(
        "SELECT indexname::text, indexdef FROM pg_indexes i
          WHERE schemaname = 'reporting'
            AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)",
    )
    .fetch_all(&mut *db)
    .await
    .expect("the indexes");
    assert!(indexes.len() >= 8, "{indexes:?}");
    for (name, _) in &indexes {
        // Names from the catalogue of this test's own database.
        db.execute(format!("DROP INDEX reporting.{name}").as_str())
            .await
            .expect("drop an index");
    }
    db.execute(GENERATE).await.expect("fill the tables");
    for (_, definition) in &indexes {
        db.execute(definition.as_str())
            .await
            .expect("make an index");
    }
    db.execute("VACUUM ANALYZE").await.expect("vacuum");
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&mut *db)
        .await
        .expect("count");
    assert_eq!(count, EVENTS);
}

/// A bind of a statement under test.
pub enum Arg {
    I64(i64),
    Text(String),
    Uuid(Uuid),
    Uuids(Vec<Uuid>),
    Time(DateTime<Utc>),
}

fn bind(query: Query<'_, Postgres, PgArguments>, arg: Arg) -> Query<'_, Postgres, PgArguments> {
    match arg {
        Arg::I64(value) => query.bind(value),
        Arg::Text(value) => query.bind(value),
        Arg::Uuid(value) => query.bind(value),
        Arg::Uuids(value) => query.bind(value),
        Arg::Time(value) => query.bind(value),
    }
}

/// What a plan showed.
#[derive(Debug)]
pub struct Plan {
    pub name: String,
    pub execution_ms: f64,
    pub rows: i64,
    /// `Seq Scan`s of big tables.
    pub big_scans: Vec<String>,
    /// The node types, outermost first.
    pub nodes: String,
}

/// The big tables (over 50,000 rows), whose sequential scan fails a plan.
pub struct Target {
    big: Vec<String>,
}

impl Target {
    pub async fn new(db: &mut PgConnection) -> Self {
        let big = sqlx::query_scalar(
            "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE n.nspname = 'reporting' AND c.relkind = 'r' AND c.reltuples > 50000",
        )
        .fetch_all(db)
        .await
        .expect("the big tables");
        Self { big }
    }

    /// Runs `EXPLAIN …` twice (the first warms the cache) and reads the second.
    pub async fn explain(
        &self,
        db: &mut PgConnection,
        name: &str,
        sql: &str,
        args: Vec<Arg>,
    ) -> Plan {
        let sql = format!("{EXPLAIN} {sql}");
        let mut plan = Value::Null;
        for _ in 0..2 {
            let args = args.iter().map(Arg::copy).collect::<Vec<_>>();
            let query = args.into_iter().fold(sqlx::query(&sql), bind);
            let row = query.fetch_one(&mut *db).await.expect(name);
            plan = row.get(0);
        }
        self.read(name, &plan)
    }

    pub async fn explain_built(
        &self,
        db: &mut PgConnection,
        name: &str,
        make: impl Fn() -> QueryBuilder<'static, Postgres>,
    ) -> Plan {
        let mut plan = Value::Null;
        for _ in 0..2 {
            let mut query = make();
            let row = query.build().fetch_one(&mut *db).await.expect(name);
            plan = row.get(0);
        }
        self.read(name, &plan)
    }

    fn read(&self, name: &str, plan: &Value) -> Plan {
        let top = &plan[0];
        let mut found = Plan {
            name: name.to_owned(),
            execution_ms: top["Execution Time"].as_f64().expect("an execution time"),
            rows: top["Plan"]["Actual Rows"].as_i64().unwrap_or(0),
            big_scans: Vec::new(),
            nodes: String::new(),
        };
        self.walk(&top["Plan"], &mut found);
        found
    }

    fn walk(&self, node: &Value, found: &mut Plan) {
        let kind = node["Node Type"].as_str().unwrap_or("?");
        let relation = node["Relation Name"].as_str();
        found.nodes.push_str(kind);
        if let Some(relation) = relation {
            found.nodes.push_str(&format!("({relation})"));
            if kind == "Seq Scan" && self.big.iter().any(|big| big == relation) {
                found.big_scans.push(relation.to_owned());
            }
        }
        found.nodes.push(' ');
        for child in node["Plans"].as_array().into_iter().flatten() {
            self.walk(child, found);
        }
    }
}

impl Arg {
    fn copy(&self) -> Self {
        match self {
            Self::I64(value) => Self::I64(*value),
            Self::Text(value) => Self::Text(value.clone()),
            Self::Uuid(value) => Self::Uuid(*value),
            Self::Uuids(value) => Self::Uuids(value.clone()),
            Self::Time(value) => Self::Time(*value),
        }
    }
}
