-- Meta's deauthorize and data-deletion callbacks, and usage anomalies.

-- A client-secret change keeps the previous secret verifying Meta's signed requests until
-- previous_client_secret_until, since Meta may still sign with it for a while.
ALTER TABLE apps ADD COLUMN previous_client_secret_enc BYTEA;
ALTER TABLE apps ADD COLUMN previous_client_secret_until BIGINT;

-- One row per data-deletion request Meta sent, shown by its confirmation code. It names no
-- Instagram user: subject_hash (SHA-256 of the app id and the user id Meta sent) only lets a
-- repeated request find its code again.
CREATE TABLE data_deletions (
    code TEXT PRIMARY KEY,
    app_id TEXT NOT NULL,
    subject_hash TEXT NOT NULL,
    requested_at BIGINT NOT NULL,
    completed_at BIGINT,
    accounts_deleted BIGINT NOT NULL DEFAULT 0,
    sessions_deleted BIGINT NOT NULL DEFAULT 0,
    events_deleted BIGINT NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX data_deletions_by_subject ON data_deletions (app_id, subject_hash);

-- Each account's usual hourly use (token reads and Graph calls), learned from the audit log
-- by a background worker: an exponentially weighted mean and deviation in millionths.
CREATE TABLE usage_baselines (
    account_id TEXT PRIMARY KEY,
    mean_micros BIGINT NOT NULL,
    dev_micros BIGINT NOT NULL,
    first_interval BIGINT NOT NULL,
    folded_through BIGINT NOT NULL,
    current_interval BIGINT NOT NULL,
    current_count BIGINT NOT NULL,
    flagged_interval BIGINT
);

-- The actors (API keys, CLI users) that have read each account: a new one is a signal.
CREATE TABLE usage_readers (
    account_id TEXT NOT NULL,
    actor TEXT NOT NULL,
    first_seen_at BIGINT NOT NULL,
    PRIMARY KEY (account_id, actor)
);

-- How far the worker has read the audit log, and the lease of the replica reading it.
CREATE TABLE usage_cursor (
    id BIGINT PRIMARY KEY,
    after_seq BIGINT NOT NULL,
    lease_owner TEXT,
    lease_until BIGINT
);
INSERT INTO usage_cursor (id, after_seq) VALUES (1, 0);
