//! Applying a batch of events to the transactions service's tables with a
//! few set-based statements, whatever its size: the account owners in one
//! insert, the new transfers in another, their decisions in one update.
//!
//! The framework hands the events over in order, each exactly its key's
//! next: a transfer's decision (value 1 of `trans-N`) always follows its
//! `PendingTransaction` (value 0), so inserting the batch's transfers
//! before deciding any is the order a one-by-one apply would take.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use events::{
    AcceptedTransaction, AccountCreated, DomainEvent, PendingTransaction, RejectedTransaction,
};
use rust_decimal::Decimal;
use sqlx::PgConnection;
use superclient::{EventRecord, HandlerError};

use crate::decisions;

pub async fn apply_all(db: &mut PgConnection, events: &[&EventRecord]) -> Result<(), HandlerError> {
    let mut owners = Owners::default();
    let mut asked = Asked::default();
    let mut decided = Decided::default();
    for event in events {
        let data = event.data.get();
        let bad = |e| HandlerError::bad_data(event, e);
        match event.event_type.as_str() {
            AccountCreated::TYPE => {
                let created = AccountCreated::decode(data).map_err(bad)?;
                HandlerError::check_key(event, &created.key())?;
                owners.accounts.push(created.account_id);
                owners.usernames.push(created.username);
            }
            PendingTransaction::TYPE => {
                let pending = PendingTransaction::decode(data).map_err(bad)?;
                HandlerError::check_key(event, &pending.key())?;
                asked.push(pending, event.timestamp);
            }
            AcceptedTransaction::TYPE => {
                let accepted = AcceptedTransaction::decode(data).map_err(bad)?;
                HandlerError::check_key(event, &accepted.key())?;
                decided.push(accepted.transaction_id, "accepted", None, event.timestamp);
            }
            RejectedTransaction::TYPE => {
                let rejected = RejectedTransaction::decode(data).map_err(bad)?;
                HandlerError::check_key(event, &rejected.key())?;
                let reason = Some(rejected.reason);
                decided.push(rejected.transaction_id, "rejected", reason, event.timestamp);
            }
            _ => {}
        }
    }
    owners.insert(db).await?;
    asked.insert(db).await?;
    decided.update(db).await
}

#[derive(Default)]
struct Owners {
    accounts: Vec<i64>,
    usernames: Vec<String>,
}

impl Owners {
    async fn insert(&self, db: &mut PgConnection) -> Result<(), sqlx::Error> {
        if self.accounts.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO account_owners (account_id, username)
             SELECT * FROM unnest($1::bigint[], $2::text[])",
        )
        .bind(&self.accounts)
        .bind(&self.usernames)
        .execute(db)
        .await?;
        Ok(())
    }
}

/// New transfers, column by column.
#[derive(Default)]
struct Asked {
    ids: Vec<i64>,
    from: Vec<i64>,
    to: Vec<i64>,
    amounts: Vec<Decimal>,
    references: Vec<String>,
    usernames: Vec<String>,
    at: Vec<DateTime<Utc>>,
}

impl Asked {
    fn push(&mut self, pending: PendingTransaction, at: DateTime<Utc>) {
        self.ids.push(pending.transaction_id);
        self.from.push(pending.from_account_id);
        self.to.push(pending.to_account_id);
        self.amounts.push(pending.amount.value());
        self.references.push(pending.reference);
        self.usernames.push(pending.username);
        self.at.push(at);
    }

    /// Inserts the transfers; in the same statement, ids taken elsewhere
    /// (another instance, or before a rebuild) are no longer offered.
    async fn insert(&self, db: &mut PgConnection) -> Result<(), sqlx::Error> {
        if self.ids.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "WITH asked AS (
                 INSERT INTO transfers (transaction_id, from_account_id, to_account_id, amount,
                     reference, username, status, requested_at)
                 SELECT id, from_id, to_id, amount, reference, username, 'pending', at
                   FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::numeric[],
                        $5::text[], $6::text[], $7::timestamptz[])
                        AS n(id, from_id, to_id, amount, reference, username, at)
                 RETURNING transaction_id)
             SELECT setval('transaction_ids', GREATEST((SELECT max(transaction_id) FROM asked),
                                                      (SELECT last_value FROM transaction_ids)))",
        )
        .bind(&self.ids)
        .bind(&self.from)
        .bind(&self.to)
        .bind(&self.amounts)
        .bind(&self.references)
        .bind(&self.usernames)
        .bind(&self.at)
        .execute(db)
        .await?;
        Ok(())
    }
}

/// Decisions, column by column.
#[derive(Default)]
struct Decided {
    ids: Vec<i64>,
    statuses: Vec<&'static str>,
    reasons: Vec<Option<String>>,
    at: Vec<DateTime<Utc>>,
}

impl Decided {
    fn push(&mut self, id: i64, status: &'static str, reason: Option<String>, at: DateTime<Utc>) {
        self.ids.push(id);
        self.statuses.push(status);
        self.reasons.push(reason);
        self.at.push(at);
    }

    async fn update(&self, db: &mut PgConnection) -> Result<(), HandlerError> {
        if self.ids.is_empty() {
            return Ok(());
        }
        let updated: HashSet<i64> = sqlx::query_scalar(
            "UPDATE transfers AS t SET status = d.status, reason = d.reason, decided_at = d.at
               FROM unnest($1::bigint[], $2::text[], $3::text[], $4::timestamptz[])
                    AS d(id, status, reason, at)
              WHERE t.transaction_id = d.id AND t.transaction_id = ANY($1)
             RETURNING t.transaction_id",
        )
        .bind(&self.ids)
        .bind(&self.statuses)
        .bind(&self.reasons)
        .bind(&self.at)
        .fetch_all(&mut *db)
        .await?
        .into_iter()
        .collect();
        if let Some(unknown) = self.ids.iter().find(|id| !updated.contains(id)) {
            return Err(HandlerError::Other(format!(
                "a decision on transfer {unknown}, which is unknown"
            )));
        }
        decisions::announce(db, &self.ids).await?;
        Ok(())
    }
}
