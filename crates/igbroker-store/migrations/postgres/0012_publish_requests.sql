-- Publishing through the broker: one row per request, keyed by the account and the
-- caller's Idempotency-Key (or a generated one), so that a retried request publishes once
-- whichever replica it reaches, also after a restart. `lease_token` names the attempt
-- working on an `in_progress` row until `lease_until`; an expired lease may be taken over.
-- `stage` is 'containers' until `media_publish` is about to be sent, then 'publishing':
-- an attempt that died in 'publishing' may have published, so it is never repeated.
CREATE TABLE publish_requests (
    account_id TEXT NOT NULL,
    idem_key TEXT NOT NULL,
    body_hash TEXT NOT NULL,
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    stage TEXT NOT NULL,
    lease_token TEXT NOT NULL,
    lease_until BIGINT NOT NULL,
    container_id TEXT,
    media_id TEXT,
    permalink TEXT,
    error_code TEXT,
    error_message TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (account_id, idem_key)
);
