-- What bank staff did in the console that reaches beyond looking: exports
-- of events, and replays and skips of parked events. Kept for the record
-- with the staff member's name; the bus records its own side of each
-- decision (bus.parking_decisions) under the console's credential.
CREATE TABLE web.staff_audit (
    id        BIGINT      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    staff     TEXT        NOT NULL,
    action    TEXT        NOT NULL CHECK (action IN ('export', 'replay', 'skip')),
    -- What it was about: an export's filters, a decision's client type and position.
    subject   TEXT        NOT NULL,
    note      TEXT        NOT NULL DEFAULT '',
    -- What came of it: rows exported, events released, or the refusal.
    outcome   TEXT        NOT NULL,
    at        TIMESTAMPTZ NOT NULL DEFAULT now()
);
