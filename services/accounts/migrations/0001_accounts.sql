-- The accounts service's tables (schema `accounts`): a cache of the events
-- it has applied, rebuilt from the bus when dropped.

-- Where new account ids start looking. Uniqueness itself comes from the
-- bus: an account's AccountCreated is the first event of `acc-N` (value 0).
CREATE SEQUENCE account_ids;

CREATE TABLE accounts (
    account_id bigint PRIMARY KEY,
    username   text NOT NULL,
    request_id uuid NOT NULL UNIQUE,
    -- Never negative: the log cannot hold an overdraft; if it ever did,
    -- applying it fails loudly instead of showing it.
    balance    numeric(20, 2) NOT NULL CHECK (balance >= 0),
    -- The consistency value of the last applied event of `acc-N`.
    version    bigint NOT NULL,
    created_at timestamptz NOT NULL
);

CREATE INDEX accounts_by_owner ON accounts (username, account_id);

-- One row per credit or debit, with the balance after it.
CREATE TABLE statement_entries (
    account_id     bigint NOT NULL REFERENCES accounts,
    version        bigint NOT NULL,
    position       bigint NOT NULL,
    recorded_at    timestamptz NOT NULL,
    kind           text NOT NULL CHECK (kind IN ('credit', 'debit')),
    amount         numeric(20, 2) NOT NULL CHECK (amount > 0),
    description    text NOT NULL,
    transaction_id bigint,
    balance_after  numeric(20, 2) NOT NULL,
    PRIMARY KEY (account_id, version)
);
