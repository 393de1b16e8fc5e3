-- The transactions service's tables (schema `transactions`): a cache of the
-- events it has applied, rebuilt from the bus when dropped.

-- Where new transfer ids start looking. Uniqueness itself comes from the
-- bus: a transfer's PendingTransaction is the first event of `trans-N`.
CREATE SEQUENCE transaction_ids;

-- Who owns which account (from AccountCreated): a transfer's source must
-- belong to the user asking for it.
CREATE TABLE account_owners (
    account_id bigint PRIMARY KEY,
    username   text NOT NULL
);

CREATE TABLE transfers (
    transaction_id  bigint PRIMARY KEY,
    from_account_id bigint NOT NULL,
    to_account_id   bigint NOT NULL,
    amount          numeric(20, 2) NOT NULL CHECK (amount > 0),
    reference       text NOT NULL,
    username        text NOT NULL,
    status          text NOT NULL CHECK (status IN ('pending', 'accepted', 'rejected')),
    reason          text,
    requested_at    timestamptz NOT NULL,
    decided_at      timestamptz
);

CREATE INDEX transfers_by_user ON transfers (username, transaction_id DESC);
CREATE INDEX transfers_from ON transfers (from_account_id, transaction_id DESC);
CREATE INDEX transfers_to ON transfers (to_account_id, transaction_id DESC);
