-- Per-app refresh budget and holds, shared by every replica.
CREATE TABLE app_budgets (
    app_id TEXT PRIMARY KEY REFERENCES apps(id),
    window_start BIGINT NOT NULL,
    used BIGINT NOT NULL,
    hold_until BIGINT NOT NULL
);

-- The signing secret of an app's webhook (sealed like the client secret).
ALTER TABLE apps ADD COLUMN webhook_secret_enc BYTEA;

-- Events for the owning service, delivered at least once with retries.
CREATE TABLE webhook_outbox (
    id TEXT PRIMARY KEY,
    app_id TEXT NOT NULL REFERENCES apps(id),
    event TEXT NOT NULL,
    account_id TEXT,
    payload TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    delivered_at BIGINT,
    failed_at BIGINT,
    last_error TEXT,
    lease_owner TEXT,
    lease_until BIGINT
);
CREATE INDEX webhook_outbox_due ON webhook_outbox (next_attempt_at) WHERE delivered_at IS NULL AND failed_at IS NULL;

CREATE TABLE webhook_deliveries (
    id TEXT PRIMARY KEY,
    outbox_id TEXT NOT NULL REFERENCES webhook_outbox(id),
    at BIGINT NOT NULL,
    status_code BIGINT,
    error TEXT,
    duration_ms BIGINT NOT NULL
);
CREATE INDEX webhook_deliveries_by_outbox ON webhook_deliveries (outbox_id, at);
