-- The reporting service's tables (schema `reporting`): a cache of every
-- banking event but `UserCreated`, rebuilt from the bus when dropped. Every
-- page the API serves reads one index range; the aggregates are additive,
-- so the order in which keys are applied does not change them.

-- The log as the staff console browses it. `summary` and `amount` are
-- worked out when the event is applied (an acceptance takes its
-- transfer's amount), so a page never joins to find them.
CREATE TABLE events (
    position       bigint PRIMARY KEY,
    event_id       uuid NOT NULL UNIQUE,
    event_type     text NOT NULL,
    key            text NOT NULL,
    value          bigint NOT NULL,
    correlation_id uuid NOT NULL,
    causation_id   uuid,
    recorded_at    timestamptz NOT NULL,
    -- Credits, debits and transfers (accepted and rejected ones take the
    -- transfer's amount); null for the rest.
    amount         numeric(20, 2),
    -- Credits, debits and the transfer events; null for a deposit or a
    -- withdrawal, and for account events.
    transaction_id bigint,
    -- For `acc-N` events: the account's balance after it (0 once opened).
    balance_after  numeric(20, 2),
    summary        text NOT NULL,
    -- Which credential and connection published it, as the bus recorded
    -- (`accounts@127.0.0.1:53122`): the instance that handled the step.
    published_by   text,
    data           jsonb NOT NULL,
    -- Free text over the payload's strings and numbers. The form with an
    -- explicit configuration is immutable, so it can be a stored column.
    search         tsvector GENERATED ALWAYS AS
                       (jsonb_to_tsvector('simple'::regconfig, data, '["string", "numeric"]')) STORED,
    UNIQUE (key, value)
);

-- A key's events newest first by position (the browser's `key` filter).
CREATE INDEX events_by_key ON events (key, position);
CREATE INDEX events_by_correlation ON events (correlation_id, position);
CREATE INDEX events_by_cause ON events (causation_id) WHERE causation_id IS NOT NULL;
CREATE INDEX events_by_type ON events (event_type, position);
CREATE INDEX events_by_time ON events (recorded_at, position);
CREATE INDEX events_search ON events USING gin (search);

-- Every account an event concerns: an account's own events, and both
-- sides of a transfer's.
CREATE TABLE event_accounts (
    account_id bigint NOT NULL,
    position   bigint NOT NULL,
    PRIMARY KEY (account_id, position)
);

CREATE TABLE accounts (
    account_id      bigint PRIMARY KEY,
    username        text NOT NULL,
    balance         numeric(20, 2) NOT NULL,
    -- The value of the account's last event applied (`acc-N`).
    version         bigint NOT NULL,
    opened_at       timestamptz NOT NULL,
    opened_position bigint NOT NULL
);

CREATE INDEX accounts_by_balance ON accounts (balance DESC, account_id);

-- An account's money movements, with the running balance after each.
CREATE TABLE account_lines (
    account_id     bigint NOT NULL,
    value          bigint NOT NULL,
    position       bigint NOT NULL,
    recorded_at    timestamptz NOT NULL,
    event_type     text NOT NULL,
    amount         numeric(20, 2) NOT NULL,
    delta          numeric(20, 2) NOT NULL,
    balance_after  numeric(20, 2) NOT NULL,
    transaction_id bigint,
    note           text NOT NULL,
    PRIMARY KEY (account_id, value)
);

-- An account as of a time: its last line at or before it.
CREATE INDEX account_lines_by_time ON account_lines (account_id, recorded_at, value);
-- The diff: which accounts moved in a time range, and by how much.
CREATE INDEX account_lines_in_range ON account_lines (recorded_at) INCLUDE (account_id, delta);

CREATE TABLE transfers (
    transaction_id  bigint PRIMARY KEY,
    from_account_id bigint NOT NULL,
    to_account_id   bigint NOT NULL,
    amount          numeric(20, 2) NOT NULL,
    reference       text NOT NULL,
    username        text NOT NULL,
    status          text NOT NULL CHECK (status IN ('pending', 'accepted', 'rejected')),
    reason          text,
    requested_at    timestamptz NOT NULL,
    decided_at      timestamptz
);

CREATE INDEX transfers_by_time ON transfers (requested_at);

-- Users as the banking events name them (never from `UserCreated`): the
-- earliest event that names one, by position, whatever order keys are
-- applied in.
CREATE TABLE users (
    username       text PRIMARY KEY,
    first_seen_at  timestamptz NOT NULL,
    first_position bigint NOT NULL
);

CREATE INDEX users_by_first_seen ON users (first_seen_at);

-- Additive totals per minute and per hour (UTC) and event type: time
-- travel sums whole hours, then whole minutes, then the events of one
-- minute. `cash_*` count deposits (credits) and withdrawals (debits):
-- money events that are not a transfer's.
CREATE TABLE hour_totals (
    hour        timestamptz NOT NULL,
    event_type  text NOT NULL,
    events      bigint NOT NULL,
    amount      numeric(24, 2) NOT NULL,
    cash_events bigint NOT NULL,
    cash_amount numeric(24, 2) NOT NULL,
    PRIMARY KEY (hour, event_type)
);

CREATE TABLE minute_totals (
    minute      timestamptz NOT NULL,
    event_type  text NOT NULL,
    events      bigint NOT NULL,
    amount      numeric(24, 2) NOT NULL,
    cash_events bigint NOT NULL,
    cash_amount numeric(24, 2) NOT NULL,
    PRIMARY KEY (minute, event_type)
);

-- Rejected transfers by reason.
CREATE TABLE rejection_totals (
    reason    text PRIMARY KEY,
    transfers bigint NOT NULL,
    amount    numeric(24, 2) NOT NULL
);
