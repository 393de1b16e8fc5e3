//! Applying a batch of events to the accounts' tables with a few
//! set-based statements, whatever its size: the new accounts in one
//! insert, then every movement's balance computed here in order and
//! written with one update of the balances and one insert of the
//! statement lines.
//!
//! The framework hands the events over in order, each exactly its key's
//! next, so an account's money always comes after its `AccountCreated`
//! (value 0 of the same key) and the running balances are those a
//! one-by-one apply would book.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use events::{AccountCreated, ConfirmedCredit, ConfirmedDebit, DomainEvent};
use rust_decimal::Decimal;
use sqlx::PgConnection;
use superclient::{EventRecord, HandlerError, consistency_value};
use uuid::Uuid;

use crate::store::Movement;

pub async fn apply_all(db: &mut PgConnection, events: &[&EventRecord]) -> Result<(), HandlerError> {
    let mut created = Created::default();
    let mut booked = Booked::default();
    for event in events {
        let data = event.data.get();
        let bad = |e| HandlerError::bad_data(event, e);
        match event.event_type.as_str() {
            AccountCreated::TYPE => {
                let account = AccountCreated::decode(data).map_err(bad)?;
                HandlerError::check_key(event, &account.key())?;
                created.push(&account, event.timestamp);
            }
            ConfirmedCredit::TYPE => {
                let credit = ConfirmedCredit::decode(data).map_err(bad)?;
                HandlerError::check_key(event, &credit.key())?;
                booked.push(&Movement::credit(&credit), event);
            }
            ConfirmedDebit::TYPE => {
                let debit = ConfirmedDebit::decode(data).map_err(bad)?;
                HandlerError::check_key(event, &debit.key())?;
                booked.push(&Movement::debit(&debit), event);
            }
            _ => {}
        }
    }
    created.insert(db).await?;
    booked.write(db).await
}

/// New accounts, column by column.
#[derive(Default)]
struct Created {
    ids: Vec<i64>,
    usernames: Vec<String>,
    requests: Vec<Uuid>,
    at: Vec<DateTime<Utc>>,
}

impl Created {
    fn push(&mut self, account: &AccountCreated, at: DateTime<Utc>) {
        self.ids.push(account.account_id);
        self.usernames.push(account.username.clone());
        self.requests.push(account.request_id);
        self.at.push(at);
    }

    /// Inserts the accounts; in the same statement, ids handed out
    /// elsewhere (another instance, or before a rebuild) are no longer
    /// offered.
    async fn insert(&self, db: &mut PgConnection) -> Result<(), sqlx::Error> {
        if self.ids.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "WITH opened AS (
                 INSERT INTO accounts (account_id, username, request_id, balance, created_at)
                 SELECT id, username, request_id, 0, at
                   FROM unnest($1::bigint[], $2::text[], $3::uuid[], $4::timestamptz[])
                        AS n(id, username, request_id, at)
                 RETURNING account_id)
             SELECT setval('account_ids', GREATEST((SELECT max(account_id) FROM opened),
                                                  (SELECT last_value FROM account_ids)))",
        )
        .bind(&self.ids)
        .bind(&self.usernames)
        .bind(&self.requests)
        .bind(&self.at)
        .execute(db)
        .await?;
        Ok(())
    }
}

/// Statement lines, column by column, in the order they are booked.
#[derive(Default)]
struct Booked {
    accounts: Vec<i64>,
    versions: Vec<i64>,
    positions: Vec<i64>,
    at: Vec<DateTime<Utc>>,
    kinds: Vec<&'static str>,
    amounts: Vec<Decimal>,
    notes: Vec<String>,
    transactions: Vec<Option<i64>>,
    /// Each line's event type, to name the one whose account is unknown.
    event_types: Vec<String>,
}

impl Booked {
    fn push(&mut self, movement: &Movement<'_>, event: &EventRecord) {
        self.accounts.push(movement.account_id);
        self.versions.push(consistency_value(event));
        self.positions.push(event.position);
        self.at.push(event.timestamp);
        self.kinds.push(movement.kind);
        self.amounts.push(movement.amount.value());
        self.notes.push(movement.note.to_owned());
        self.transactions.push(movement.transaction_id);
        self.event_types.push(event.event_type.clone());
    }

    /// Reads the balances of the accounts moved, books every line on them
    /// in order, and writes the balances and the lines back.
    async fn write(&self, db: &mut PgConnection) -> Result<(), HandlerError> {
        if self.accounts.is_empty() {
            return Ok(());
        }
        let mut balances: HashMap<i64, Decimal> =
            sqlx::query_as("SELECT account_id, balance FROM accounts WHERE account_id = ANY($1)")
                .bind(&self.accounts)
                .fetch_all(&mut *db)
                .await?
                .into_iter()
                .collect();
        let mut after = Vec::with_capacity(self.accounts.len());
        for (i, account) in self.accounts.iter().enumerate() {
            let balance = balances.get_mut(account).ok_or_else(|| {
                HandlerError::Other(format!(
                    "{} for account {account}, which does not exist",
                    self.event_types[i]
                ))
            })?;
            match self.kinds[i] {
                "debit" => *balance -= self.amounts[i],
                _ => *balance += self.amounts[i],
            }
            // The log cannot hold an overdraft; if it ever did, applying it
            // fails loudly instead of showing it (as the table's check would
            // for a balance written line by line).
            if *balance < Decimal::ZERO {
                return Err(HandlerError::Other(format!(
                    "{} would take account {account} below zero",
                    self.event_types[i]
                )));
            }
            after.push(*balance);
        }
        let (ids, finals): (Vec<i64>, Vec<Decimal>) = balances.into_iter().unzip();
        sqlx::query(
            "UPDATE accounts AS a SET balance = n.balance
               FROM unnest($1::bigint[], $2::numeric[]) AS n(account_id, balance)
              WHERE a.account_id = n.account_id AND a.account_id = ANY($1)",
        )
        .bind(&ids)
        .bind(&finals)
        .execute(&mut *db)
        .await?;
        sqlx::query(
            "INSERT INTO statement_entries (account_id, version, position, recorded_at, kind,
                 amount, description, transaction_id, balance_after)
             SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::timestamptz[],
                 $5::text[], $6::numeric[], $7::text[], $8::bigint[], $9::numeric[])",
        )
        .bind(&self.accounts)
        .bind(&self.versions)
        .bind(&self.positions)
        .bind(&self.at)
        .bind(&self.kinds)
        .bind(&self.amounts)
        .bind(&self.notes)
        .bind(&self.transactions)
        .bind(&after)
        .execute(db)
        .await?;
        Ok(())
    }
}
