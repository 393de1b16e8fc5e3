-- The tally test service: how many events of each type and key it applied.
CREATE TABLE tallies (
    event_type text NOT NULL,
    key        text NOT NULL,
    applied    bigint NOT NULL,
    PRIMARY KEY (event_type, key)
);
