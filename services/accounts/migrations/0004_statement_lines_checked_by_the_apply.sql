-- A statement line's account exists: the apply reads the row of every
-- account a batch moves, in the same transaction, and refuses the batch
-- if one is missing (accounts are never deleted). The foreign key checked
-- the same thing again, with one trigger call per line, which more than
-- doubled the cost of writing the lines of a rebuild.
ALTER TABLE statement_entries DROP CONSTRAINT statement_entries_account_id_fkey;
