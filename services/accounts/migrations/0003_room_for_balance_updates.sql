-- Every movement rewrites its account's row. Room left in each page lets
-- PostgreSQL write the new row version beside the old one without
-- touching the indexes (a HOT update: the balance is in none of them).
ALTER TABLE accounts SET (fillfactor = 70);
