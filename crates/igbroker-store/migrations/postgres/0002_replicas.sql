-- Key storage: the replica registry, and the indexes that make counting by key version,
-- listing accounts and finding the next due cost what their answer costs.

-- Each running broker records the key versions it holds (with their public fingerprints),
-- so that `igbroker keys rotate` refuses a key that a live replica lacks or holds
-- different material for. A replica is live while its heartbeat is recent.
CREATE TABLE replicas (
    node_id TEXT PRIMARY KEY,
    -- host, pid and listen address: what an operator needs to find the process
    description TEXT NOT NULL,
    -- "1,2": the versions of its ring
    key_versions TEXT NOT NULL,
    -- "1:3f2a…,2:9bc1…": version:fingerprint pairs
    fingerprints TEXT NOT NULL,
    -- the version it seals new records with
    current_version BIGINT NOT NULL,
    started_at BIGINT NOT NULL,
    heartbeat_at BIGINT NOT NULL
);

-- Counting and re-encrypting by key version read only the rows of that version.
CREATE INDEX accounts_by_key_version ON accounts (token_key_version, id);

-- Connect sessions accumulate (one per connect attempt), so their key version gets a column
-- too; the store fills it from the sealed value's header. Apps are few and are read whole.
ALTER TABLE connect_sessions ADD COLUMN state_key_version BIGINT;
CREATE INDEX connect_sessions_by_key_version ON connect_sessions (state_key_version, id);

-- "Accounts of this app", a page at a time in id order, without sorting all of the app's.
CREATE INDEX accounts_by_app_id ON accounts (app_id, id);

-- The next N due: equality on status, range and order on next_refresh_at, and the id in the
-- index, so the answer is read from the index alone. Replaces the partial index on
-- next_refresh_at, which SQLite's planner passed over for the status index and a sort of
-- every active account.
DROP INDEX accounts_due;
CREATE INDEX accounts_due ON accounts (status, next_refresh_at, id);
