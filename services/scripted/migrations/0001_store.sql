-- A script's storage: its keys and their JSON values. Each script has a
-- schema of its own (its service name), so each has its own table.
-- COLLATE "C": byte order, so that a prefix scan is a range of the index.
CREATE TABLE store (
    key   text COLLATE "C" PRIMARY KEY,
    value jsonb NOT NULL
);
