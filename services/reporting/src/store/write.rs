//! Writing what a batch of events means into the tables, inside the
//! framework's transaction for it, with a few set-based statements per
//! table whatever the batch's size.
//!
//! Rows several keys share (a user, the totals of a minute) are summed up
//! here first and upserted once each, in key order (users, accounts,
//! transfers, lines, decisions, rejections, events, hours, minutes). Two
//! transactions can still take those rows in opposite orders across
//! tables; a deadlock that follows is a transient error the framework runs
//! the transaction again after (`superclient::transient`).

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use events::PendingTransaction;
use rust_decimal::Decimal;
use sqlx::{FromRow, PgConnection};
use superclient::{EventRecord, HandlerError, consistency_value};
use uuid::Uuid;

use super::{Bucket, floor};
use crate::summary;

/// What applying an event works out beyond its envelope.
#[derive(Debug, Clone, Default)]
pub struct Derived {
    pub amount: Option<Decimal>,
    pub transaction_id: Option<i64>,
    pub balance_after: Option<Decimal>,
    pub summary: String,
    /// The accounts the event concerns, distinct.
    pub accounts: Vec<i64>,
    /// A deposit or a withdrawal: money that is no transfer's.
    pub cash: bool,
}

impl Derived {
    pub fn plain(summary: String) -> Self {
        Self {
            summary,
            ..Self::default()
        }
    }
}

/// A credit (`delta` = `amount`) or a debit (`delta` = −`amount`).
pub struct Line {
    pub account_id: i64,
    pub amount: Decimal,
    pub delta: Decimal,
    pub transaction_id: Option<i64>,
    pub note: String,
}

/// A transfer as its `PendingTransaction` asked for it.
#[derive(Debug, Clone, FromRow)]
pub struct TransferFacts {
    pub transaction_id: i64,
    pub from_account_id: i64,
    pub to_account_id: i64,
    pub amount: Decimal,
    pub reference: String,
    pub username: String,
}

impl TransferFacts {
    pub fn of(pending: &PendingTransaction) -> Self {
        Self {
            transaction_id: pending.transaction_id,
            from_account_id: pending.from_account_id,
            to_account_id: pending.to_account_id,
            amount: pending.amount.value(),
            reference: pending.reference.clone(),
            username: pending.username.clone(),
        }
    }

    pub fn summary(&self) -> summary::Transfer<'_> {
        summary::Transfer {
            transaction_id: self.transaction_id,
            from: self.from_account_id,
            to: self.to_account_id,
            amount: self.amount,
            reference: &self.reference,
            username: &self.username,
        }
    }
}

/// Keeps each user's earliest event by position: keys are applied in any
/// order, so a later event may arrive first.
pub async fn see_users(
    db: &mut PgConnection,
    seen: &[(&str, &EventRecord)],
) -> Result<(), sqlx::Error> {
    let mut earliest: BTreeMap<&str, (DateTime<Utc>, i64)> = BTreeMap::new();
    for (username, event) in seen {
        let first = earliest
            .entry(username)
            .or_insert((event.timestamp, event.position));
        if event.position < first.1 {
            *first = (event.timestamp, event.position);
        }
    }
    if earliest.is_empty() {
        return Ok(());
    }
    let (mut names, mut at, mut positions) = (Vec::new(), Vec::new(), Vec::new());
    for (name, (first_at, position)) in earliest {
        names.push(name);
        at.push(first_at);
        positions.push(position);
    }
    sqlx::query(
        "INSERT INTO users (username, first_seen_at, first_position)
         SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::bigint[])
         ON CONFLICT (username) DO UPDATE
            SET first_seen_at = excluded.first_seen_at, first_position = excluded.first_position
          WHERE users.first_position > excluded.first_position",
    )
    .bind(&names)
    .bind(&at)
    .bind(&positions)
    .execute(db)
    .await?;
    Ok(())
}

/// Opens accounts: `(account_id, username, AccountCreated)`.
pub async fn open_accounts(
    db: &mut PgConnection,
    opened: &[(i64, &str, &EventRecord)],
) -> Result<(), sqlx::Error> {
    if opened.is_empty() {
        return Ok(());
    }
    let ids: Vec<i64> = opened.iter().map(|o| o.0).collect();
    let names: Vec<&str> = opened.iter().map(|o| o.1).collect();
    let versions: Vec<i64> = opened.iter().map(|o| consistency_value(o.2)).collect();
    let at: Vec<DateTime<Utc>> = opened.iter().map(|o| o.2.timestamp).collect();
    let positions: Vec<i64> = opened.iter().map(|o| o.2.position).collect();
    sqlx::query(
        "INSERT INTO accounts (account_id, username, balance, version, opened_at, opened_position)
         SELECT id, username, 0, version, at, position
           FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::timestamptz[], $5::bigint[])
                AS o(id, username, version, at, position)",
    )
    .bind(&ids)
    .bind(&names)
    .bind(&versions)
    .bind(&at)
    .bind(&positions)
    .execute(db)
    .await?;
    Ok(())
}

/// Moves the accounts' balances by the lines, in order, and records the
/// lines; the balance after each line.
pub async fn book_lines(
    db: &mut PgConnection,
    lines: &[(&Line, &EventRecord)],
) -> Result<Vec<Decimal>, HandlerError> {
    if lines.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<i64> = lines.iter().map(|(line, _)| line.account_id).collect();
    let mut accounts: HashMap<i64, (Decimal, i64)> = sqlx::query_as::<_, (i64, Decimal, i64)>(
        "SELECT account_id, balance, version FROM accounts WHERE account_id = ANY($1)",
    )
    .bind(&ids)
    .fetch_all(&mut *db)
    .await?
    .into_iter()
    .map(|(id, balance, version)| (id, (balance, version)))
    .collect();
    let mut after = Vec::with_capacity(lines.len());
    for (line, event) in lines {
        // Its AccountCreated is value 0 of the same key: applied before, always.
        let (balance, version) = accounts.get_mut(&line.account_id).ok_or_else(|| {
            HandlerError::Other(format!(
                "money on account {}, which is unknown",
                line.account_id
            ))
        })?;
        *balance += line.delta;
        *version = consistency_value(event);
        after.push(*balance);
    }
    let mut moved = (Vec::new(), Vec::new(), Vec::new());
    for (id, (balance, version)) in accounts {
        moved.0.push(id);
        moved.1.push(balance);
        moved.2.push(version);
    }
    sqlx::query(
        "UPDATE accounts AS a SET balance = m.balance, version = m.version
           FROM unnest($1::bigint[], $2::numeric[], $3::bigint[]) AS m(account_id, balance, version)
          WHERE a.account_id = m.account_id AND a.account_id = ANY($1)",
    )
    .bind(&moved.0)
    .bind(&moved.1)
    .bind(&moved.2)
    .execute(&mut *db)
    .await?;
    let column = |f: fn(&Line) -> Decimal| lines.iter().map(|(l, _)| f(l)).collect::<Vec<_>>();
    sqlx::query(
        "INSERT INTO account_lines (account_id, value, position, recorded_at, event_type, amount,
             delta, balance_after, transaction_id, note)
         SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::timestamptz[],
             $5::text[], $6::numeric[], $7::numeric[], $8::numeric[], $9::bigint[], $10::text[])",
    )
    .bind(&ids)
    .bind(
        lines
            .iter()
            .map(|(_, e)| consistency_value(e))
            .collect::<Vec<_>>(),
    )
    .bind(lines.iter().map(|(_, e)| e.position).collect::<Vec<_>>())
    .bind(lines.iter().map(|(_, e)| e.timestamp).collect::<Vec<_>>())
    .bind(
        lines
            .iter()
            .map(|(_, e)| e.event_type.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(column(|l| l.amount))
    .bind(column(|l| l.delta))
    .bind(&after)
    .bind(
        lines
            .iter()
            .map(|(l, _)| l.transaction_id)
            .collect::<Vec<_>>(),
    )
    .bind(
        lines
            .iter()
            .map(|(l, _)| l.note.as_str())
            .collect::<Vec<_>>(),
    )
    .execute(db)
    .await?;
    Ok(after)
}

/// Records new transfers: `(PendingTransaction, when)`.
pub async fn insert_transfers(
    db: &mut PgConnection,
    asked: &[(&PendingTransaction, DateTime<Utc>)],
) -> Result<(), sqlx::Error> {
    if asked.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO transfers (transaction_id, from_account_id, to_account_id, amount, reference,
             username, status, requested_at)
         SELECT id, from_id, to_id, amount, reference, username, 'pending', at
           FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::numeric[], $5::text[],
                $6::text[], $7::timestamptz[])
                AS a(id, from_id, to_id, amount, reference, username, at)",
    )
    .bind(
        asked
            .iter()
            .map(|(p, _)| p.transaction_id)
            .collect::<Vec<_>>(),
    )
    .bind(
        asked
            .iter()
            .map(|(p, _)| p.from_account_id)
            .collect::<Vec<_>>(),
    )
    .bind(
        asked
            .iter()
            .map(|(p, _)| p.to_account_id)
            .collect::<Vec<_>>(),
    )
    .bind(
        asked
            .iter()
            .map(|(p, _)| p.amount.value())
            .collect::<Vec<_>>(),
    )
    .bind(
        asked
            .iter()
            .map(|(p, _)| p.reference.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(
        asked
            .iter()
            .map(|(p, _)| p.username.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(asked.iter().map(|(_, at)| *at).collect::<Vec<_>>())
    .execute(db)
    .await?;
    Ok(())
}

/// A decision on a transfer.
pub struct Decision {
    pub transaction_id: i64,
    pub status: &'static str,
    pub reason: Option<String>,
    pub at: DateTime<Utc>,
}

/// Records the decisions; the transfers they decide, by id (each one's
/// `PendingTransaction` is value 0 of the same key, so it is known).
pub async fn decide_transfers(
    db: &mut PgConnection,
    decisions: &[&Decision],
) -> Result<HashMap<i64, TransferFacts>, HandlerError> {
    if decisions.is_empty() {
        return Ok(HashMap::new());
    }
    let decided: HashMap<i64, TransferFacts> = sqlx::query_as::<_, TransferFacts>(
        "UPDATE transfers AS t SET status = d.status, reason = d.reason, decided_at = d.at
           FROM unnest($1::bigint[], $2::text[], $3::text[], $4::timestamptz[])
                AS d(id, status, reason, at)
          WHERE t.transaction_id = d.id AND t.transaction_id = ANY($1)
         RETURNING t.transaction_id, t.from_account_id, t.to_account_id, t.amount, t.reference,
                   t.username",
    )
    .bind(
        decisions
            .iter()
            .map(|d| d.transaction_id)
            .collect::<Vec<_>>(),
    )
    .bind(decisions.iter().map(|d| d.status).collect::<Vec<_>>())
    .bind(
        decisions
            .iter()
            .map(|d| d.reason.as_deref())
            .collect::<Vec<_>>(),
    )
    .bind(decisions.iter().map(|d| d.at).collect::<Vec<_>>())
    .fetch_all(&mut *db)
    .await?
    .into_iter()
    .map(|facts| (facts.transaction_id, facts))
    .collect();
    if let Some(unknown) = decisions
        .iter()
        .find(|d| !decided.contains_key(&d.transaction_id))
    {
        return Err(HandlerError::Other(format!(
            "a decision on transfer {}, which is unknown",
            unknown.transaction_id
        )));
    }
    let mut rejected: BTreeMap<&str, (i64, Decimal)> = BTreeMap::new();
    for decision in decisions {
        if let Some(reason) = &decision.reason {
            let total = rejected.entry(reason).or_default();
            total.0 += 1;
            total.1 += decided[&decision.transaction_id].amount;
        }
    }
    if !rejected.is_empty() {
        let (mut reasons, mut counts, mut amounts) = (Vec::new(), Vec::new(), Vec::new());
        for (reason, (count, amount)) in rejected {
            reasons.push(reason);
            counts.push(count);
            amounts.push(amount);
        }
        sqlx::query(
            "INSERT INTO rejection_totals AS r (reason, transfers, amount)
             SELECT * FROM unnest($1::text[], $2::bigint[], $3::numeric[])
             ON CONFLICT (reason) DO UPDATE
                SET transfers = r.transfers + excluded.transfers,
                    amount = r.amount + excluded.amount",
        )
        .bind(&reasons)
        .bind(&counts)
        .bind(&amounts)
        .execute(db)
        .await?;
    }
    Ok(decided)
}

const ADD_TO_HOURS: &str = "INSERT INTO hour_totals AS t
         (hour, event_type, events, amount, cash_events, cash_amount)
     SELECT * FROM unnest($1::timestamptz[], $2::text[], $3::bigint[], $4::numeric[],
         $5::bigint[], $6::numeric[])
     ON CONFLICT (hour, event_type) DO UPDATE
        SET events = t.events + excluded.events, amount = t.amount + excluded.amount,
            cash_events = t.cash_events + excluded.cash_events,
            cash_amount = t.cash_amount + excluded.cash_amount";

const ADD_TO_MINUTES: &str = "INSERT INTO minute_totals AS t
         (minute, event_type, events, amount, cash_events, cash_amount)
     SELECT * FROM unnest($1::timestamptz[], $2::text[], $3::bigint[], $4::numeric[],
         $5::bigint[], $6::numeric[])
     ON CONFLICT (minute, event_type) DO UPDATE
        SET events = t.events + excluded.events, amount = t.amount + excluded.amount,
            cash_events = t.cash_events + excluded.cash_events,
            cash_amount = t.cash_amount + excluded.cash_amount";

/// The events' rows, the accounts they concern, and their share of the
/// totals.
pub async fn insert_events(
    db: &mut PgConnection,
    events: &[(&EventRecord, Derived)],
) -> Result<(), HandlerError> {
    if events.is_empty() {
        return Ok(());
    }
    let envelope =
        |f: fn(&EventRecord) -> i64| events.iter().map(|(e, _)| f(e)).collect::<Vec<_>>();
    let positions = envelope(|e| e.position);
    sqlx::query(
        "INSERT INTO events (position, event_id, event_type, key, value, correlation_id,
             causation_id, recorded_at, amount, transaction_id, balance_after, summary,
             published_by, data)
         SELECT position, event_id, event_type, key, value, correlation_id, causation_id,
                recorded_at, amount, transaction_id, balance_after, summary, published_by,
                data::jsonb
           FROM unnest($1::bigint[], $2::uuid[], $3::text[], $4::text[], $5::bigint[],
                $6::uuid[], $7::uuid[], $8::timestamptz[], $9::numeric[], $10::bigint[],
                $11::numeric[], $12::text[], $13::text[], $14::text[])
                AS e(position, event_id, event_type, key, value, correlation_id, causation_id,
                     recorded_at, amount, transaction_id, balance_after, summary,
                     published_by, data)",
    )
    .bind(&positions)
    .bind(
        events
            .iter()
            .map(|(e, _)| e.event_id)
            .collect::<Vec<Uuid>>(),
    )
    .bind(
        events
            .iter()
            .map(|(e, _)| e.event_type.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(
        events
            .iter()
            .map(|(e, _)| e.consistency.key.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(envelope(consistency_value))
    .bind(
        events
            .iter()
            .map(|(e, _)| e.correlation_id)
            .collect::<Vec<Uuid>>(),
    )
    .bind(
        events
            .iter()
            .map(|(e, _)| e.causation_id)
            .collect::<Vec<Option<Uuid>>>(),
    )
    .bind(events.iter().map(|(e, _)| e.timestamp).collect::<Vec<_>>())
    .bind(events.iter().map(|(_, d)| d.amount).collect::<Vec<_>>())
    .bind(
        events
            .iter()
            .map(|(_, d)| d.transaction_id)
            .collect::<Vec<_>>(),
    )
    .bind(
        events
            .iter()
            .map(|(_, d)| d.balance_after)
            .collect::<Vec<_>>(),
    )
    .bind(
        events
            .iter()
            .map(|(_, d)| d.summary.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(
        events
            .iter()
            .map(|(e, _)| e.published_by.as_deref())
            .collect::<Vec<_>>(),
    )
    .bind(events.iter().map(|(e, _)| e.data.get()).collect::<Vec<_>>())
    .execute(&mut *db)
    .await?;
    let (mut accounts, mut at) = (Vec::new(), Vec::new());
    for (event, derived) in events {
        for account in &derived.accounts {
            accounts.push(*account);
            at.push(event.position);
        }
    }
    sqlx::query(
        "INSERT INTO event_accounts (account_id, position)
         SELECT * FROM unnest($1::bigint[], $2::bigint[])",
    )
    .bind(&accounts)
    .bind(&at)
    .execute(&mut *db)
    .await?;
    for (sql, bucket) in [
        (ADD_TO_HOURS, Bucket::Hour),
        (ADD_TO_MINUTES, Bucket::Minute),
    ] {
        add_to_totals(db, sql, bucket, events).await?;
    }
    Ok(())
}

/// Sums the events per bucket and type, and adds each sum to its row.
async fn add_to_totals(
    db: &mut PgConnection,
    sql: &str,
    bucket: Bucket,
    events: &[(&EventRecord, Derived)],
) -> Result<(), HandlerError> {
    #[derive(Default)]
    struct Sum {
        events: i64,
        amount: Decimal,
        cash_events: i64,
        cash_amount: Decimal,
    }
    let mut sums: BTreeMap<(DateTime<Utc>, &str), Sum> = BTreeMap::new();
    for (event, derived) in events {
        let sum = sums
            .entry((floor(event.timestamp, bucket)?, event.event_type.as_str()))
            .or_default();
        let amount = derived.amount.unwrap_or_default();
        sum.events += 1;
        sum.amount += amount;
        if derived.cash {
            sum.cash_events += 1;
            sum.cash_amount += amount;
        }
    }
    let mut columns = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut cash = (Vec::new(), Vec::new());
    for ((start, event_type), sum) in sums {
        columns.0.push(start);
        columns.1.push(event_type);
        columns.2.push(sum.events);
        columns.3.push(sum.amount);
        cash.0.push(sum.cash_events);
        cash.1.push(sum.cash_amount);
    }
    sqlx::query(sql)
        .bind(&columns.0)
        .bind(&columns.1)
        .bind(&columns.2)
        .bind(&columns.3)
        .bind(&cash.0)
        .bind(&cash.1)
        .execute(db)
        .await?;
    Ok(())
}
