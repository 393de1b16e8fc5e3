//! The event browser: pages of events matching a filter, by position.
//!
//! Every page is a keyset range on the position (`<` going older, `>`
//! going newer), so it reads one index range whatever the page's depth:
//! the primary key, or the index of the narrowest filter
//! (`(event_type, position)`, `(key, position)`, `(correlation_id,
//! position)`, and for an account `event_accounts`' `(account_id,
//! position)`, whose position drives the order then).

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use sqlx::{PgPool, Postgres, QueryBuilder};
use uuid::Uuid;

use super::{EventRow, event_columns};

/// Which events a page shows. Empty means no condition.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub types: Vec<String>,
    /// `recorded_at` at or after.
    pub from: Option<DateTime<Utc>>,
    /// `recorded_at` before.
    pub to: Option<DateTime<Utc>>,
    pub key: Option<String>,
    pub correlation: Option<Uuid>,
    pub account: Option<i64>,
    pub min_amount: Option<Decimal>,
    pub max_amount: Option<Decimal>,
    /// Free text (`websearch_to_tsquery` syntax).
    pub text: Option<String>,
}

/// Where a page is, by position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Range {
    /// The newest events, newest first.
    Newest,
    /// Positions below this one, newest first.
    Below(i64),
    /// Positions above this one, oldest first (the caller turns them round).
    Above(i64),
}

impl Filter {
    /// The column the order and the keyset use: the account's index
    /// drives the page when there is one.
    fn position(&self) -> &'static str {
        if self.account.is_some() {
            "ea.position"
        } else {
            "e.position"
        }
    }

    /// `FROM … WHERE …` with every condition bound.
    fn push_from_where(&self, query: &mut QueryBuilder<'static, Postgres>) {
        match self.account {
            Some(account) => {
                query
                    .push(" FROM event_accounts ea JOIN events e ON e.position = ea.position")
                    .push(" WHERE ea.account_id = ")
                    .push_bind(account);
            }
            None => {
                query.push(" FROM events e WHERE true");
            }
        }
        if !self.types.is_empty() {
            query
                .push(" AND e.event_type = ANY(")
                .push_bind(self.types.clone())
                .push(")");
        }
        if let Some(from) = self.from {
            query.push(" AND e.recorded_at >= ").push_bind(from);
        }
        if let Some(to) = self.to {
            query.push(" AND e.recorded_at < ").push_bind(to);
        }
        if let Some(key) = &self.key {
            query.push(" AND e.key = ").push_bind(key.clone());
        }
        if let Some(correlation) = self.correlation {
            query
                .push(" AND e.correlation_id = ")
                .push_bind(correlation);
        }
        if let Some(min) = self.min_amount {
            query.push(" AND e.amount >= ").push_bind(min);
        }
        if let Some(max) = self.max_amount {
            query.push(" AND e.amount <= ").push_bind(max);
        }
        if let Some(text) = &self.text {
            query
                .push(" AND e.search @@ websearch_to_tsquery('simple', ")
                .push_bind(text.clone())
                .push(")");
        }
    }
}

/// A page of at most `limit` events in `range`, after `prefix` (empty, or
/// `EXPLAIN …` in tests).
pub fn page_query(
    prefix: &str,
    filter: &Filter,
    range: Range,
    limit: i64,
) -> QueryBuilder<'static, Postgres> {
    let mut query = QueryBuilder::new(prefix);
    query.push(concat!(" SELECT ", event_columns!()));
    filter.push_from_where(&mut query);
    let position = filter.position();
    let order = match range {
        Range::Newest => "DESC",
        Range::Below(below) => {
            query
                .push(format_args!(" AND {position} < "))
                .push_bind(below);
            "DESC"
        }
        Range::Above(above) => {
            query
                .push(format_args!(" AND {position} > "))
                .push_bind(above);
            "ASC"
        }
    };
    query
        .push(format_args!(" ORDER BY {position} {order} LIMIT "))
        .push_bind(limit);
    query
}

/// The position of the newest event recorded at or before `at` (by time,
/// then position): where a seek by time lands.
pub fn seek_query(
    prefix: &str,
    filter: &Filter,
    at: DateTime<Utc>,
) -> QueryBuilder<'static, Postgres> {
    let position = filter.position();
    let mut query = QueryBuilder::new(prefix);
    query.push(format_args!(" SELECT {position}"));
    filter.push_from_where(&mut query);
    query
        .push(" AND e.recorded_at <= ")
        .push_bind(at)
        .push(format_args!(
            " ORDER BY e.recorded_at DESC, {position} DESC LIMIT 1"
        ));
    query
}

pub async fn page(
    db: &PgPool,
    filter: &Filter,
    range: Range,
    limit: i64,
) -> Result<Vec<EventRow>, sqlx::Error> {
    page_query("", filter, range, limit)
        .build_query_as()
        .fetch_all(db)
        .await
}

/// Whether any event matches in `range`.
pub async fn any(db: &PgPool, filter: &Filter, range: Range) -> Result<bool, sqlx::Error> {
    Ok(!page(db, filter, range, 1).await?.is_empty())
}

pub async fn seek(
    db: &PgPool,
    filter: &Filter,
    at: DateTime<Utc>,
) -> Result<Option<i64>, sqlx::Error> {
    seek_query("", filter, at)
        .build_query_scalar()
        .fetch_optional(db)
        .await
}
