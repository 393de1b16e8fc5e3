-- The event bus: the log of every event (the truth) and the durable state of
-- every consume-mode subscription.
CREATE SCHEMA IF NOT EXISTS bus;

-- Positions are given by the bus's single writer, in commit order. `data` is
-- `json`, not `jsonb`: stored as sent, cheaper to write and to read back
-- whole, and reporting can still use ->> on it.
CREATE TABLE bus.events (
    position          BIGINT      PRIMARY KEY,
    event_id          UUID        NOT NULL,
    event_type        TEXT        NOT NULL,
    consistency_key   TEXT        NOT NULL,
    consistency_value BIGINT      NOT NULL CHECK (consistency_value >= 0),
    correlation_id    UUID        NOT NULL,
    causation_id      UUID,
    recorded_at       TIMESTAMPTZ NOT NULL,
    data              JSON        NOT NULL,
    CONSTRAINT events_event_id_unique UNIQUE (event_id),
    CONSTRAINT events_consistency_unique UNIQUE (consistency_key, consistency_value)
);

-- Staff look-ups: a unit of work by correlation id, a type over time. Times
-- only grow along positions, so a BRIN index (tiny, nearly free to keep up)
-- serves time ranges; a B-tree on it would cost every append.
CREATE INDEX events_by_correlation ON bus.events (correlation_id);
CREATE INDEX events_by_type ON bus.events (event_type, position);
CREATE INDEX events_by_time ON bus.events USING brin (recorded_at);

-- A client type's subscription, durable from its first registration.
-- `acked_through`: every owed event at or below it is acknowledged or parked.
CREATE TABLE bus.subscriptions (
    client_type   TEXT        PRIMARY KEY,
    acked_through BIGINT      NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- The types a subscription takes ('*': all), each owed from the position
-- after `owed_after` (the head when an instance first registered for it).
CREATE TABLE bus.subscription_types (
    client_type TEXT   NOT NULL REFERENCES bus.subscriptions ON DELETE CASCADE,
    event_type  TEXT   NOT NULL,
    owed_after  BIGINT NOT NULL,
    PRIMARY KEY (client_type, event_type)
);

-- Acknowledgements above a subscription's `acked_through`.
CREATE TABLE bus.acks (
    client_type TEXT   NOT NULL,
    position    BIGINT NOT NULL,
    PRIMARY KEY (client_type, position)
);

-- Failed deliveries (nacks, ack timeouts) of events still owed, so that a
-- restart of the bus does not forget how close an event is to parking.
CREATE TABLE bus.delivery_failures (
    client_type TEXT    NOT NULL,
    position    BIGINT  NOT NULL,
    failures    INTEGER NOT NULL,
    last_reason TEXT    NOT NULL,
    PRIMARY KEY (client_type, position)
);

-- Events a client type failed to process `max_deliveries` times.
CREATE TABLE bus.parked (
    client_type TEXT        NOT NULL,
    position    BIGINT      NOT NULL REFERENCES bus.events,
    deliveries  INTEGER     NOT NULL,
    reason      TEXT        NOT NULL,
    parked_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (client_type, position)
);

-- Parked events that staff asked to deliver again, until they are acked.
CREATE TABLE bus.replays (
    client_type  TEXT        NOT NULL,
    position     BIGINT      NOT NULL REFERENCES bus.events,
    requested_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (client_type, position)
);
