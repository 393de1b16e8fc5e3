-- An account's version is the value of the last event of `acc-N` this
-- service has claimed (the framework's `applied_keys`), not a column of its
-- own: an event staff skipped moves the claim without being applied, and a
-- decision must see that move.
ALTER TABLE accounts DROP COLUMN version;
