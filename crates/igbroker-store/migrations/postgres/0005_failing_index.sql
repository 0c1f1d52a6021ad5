-- `/metrics` counts accounts whose refresh is failing on every scrape: a small
-- partial index keeps that proportional to the failing few, not the table.
CREATE INDEX accounts_failing ON accounts (id) WHERE refresh_failing = 1;
