-- The users service's tables (schema `users`): a cache of the events it
-- has applied, rebuilt from the bus when dropped.

CREATE TABLE users (
    username      text PRIMARY KEY,
    display_name  text NOT NULL,
    -- argon2id, PHC string. Never returned by any API, never logged.
    password_hash text NOT NULL,
    created_at    timestamptz NOT NULL
);

-- One row per account a user asked for; `account_id` once it exists.
CREATE TABLE account_requests (
    request_id   uuid PRIMARY KEY,
    username     text NOT NULL,
    requested_at timestamptz NOT NULL,
    account_id   bigint UNIQUE,
    created_at   timestamptz
);

CREATE INDEX account_requests_by_user ON account_requests (username, requested_at);
