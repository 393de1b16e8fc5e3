-- Protocol v1.1: a parked event blocks its key for its client type. The
-- key's later events are held here, not delivered, until staff replay the
-- parked event (it is delivered first, then these, in order) or skip it.
CREATE TABLE bus.blocked (
    client_type     TEXT   NOT NULL,
    position        BIGINT NOT NULL REFERENCES bus.events,
    -- The parked event this one waits behind (same client type, same key).
    parked_position BIGINT NOT NULL,
    PRIMARY KEY (client_type, position)
);

CREATE INDEX blocked_behind ON bus.blocked (client_type, parked_position, position);

-- Staff decisions on parked events, kept for the record.
CREATE TABLE bus.parking_decisions (
    id          BIGINT      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    client_type TEXT        NOT NULL,
    position    BIGINT      NOT NULL REFERENCES bus.events,
    decision    TEXT        NOT NULL CHECK (decision IN ('replay', 'skip')),
    -- The name of the staff credential that decided.
    decided_by  TEXT        NOT NULL,
    note        TEXT        NOT NULL,
    -- How many held events the decision released.
    released    INTEGER     NOT NULL,
    decided_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- A skipped parked event is delivered once more, marked skipped, so that a
-- consumer that applies every key's events gap-free can step over it.
ALTER TABLE bus.replays ADD COLUMN skipped BOOLEAN NOT NULL DEFAULT false;
