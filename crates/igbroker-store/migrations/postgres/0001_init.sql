CREATE TABLE apps (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    client_id TEXT NOT NULL,
    client_secret_enc BYTEA NOT NULL,
    scopes TEXT NOT NULL,
    redirect_uri TEXT NOT NULL,
    return_origins TEXT NOT NULL,
    webhook_url TEXT,
    created_at BIGINT NOT NULL,
    deleted_at BIGINT
);

CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    key_hash TEXT NOT NULL UNIQUE,
    scopes TEXT NOT NULL,
    app_ids TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT,
    revoked_at BIGINT
);

CREATE TABLE accounts (
    id TEXT PRIMARY KEY,
    app_id TEXT NOT NULL REFERENCES apps(id),
    end_user TEXT NOT NULL,
    ig_user_id TEXT NOT NULL,
    ig_scoped_id TEXT NOT NULL,
    username TEXT,
    scopes TEXT NOT NULL,
    status TEXT NOT NULL,
    status_reason TEXT,
    token_enc BYTEA,
    token_key_version BIGINT,
    issued_at BIGINT,
    expires_at BIGINT,
    refreshed_at BIGINT,
    next_refresh_at BIGINT,
    refresh_attempts BIGINT NOT NULL DEFAULT 0,
    refresh_failing BIGINT NOT NULL DEFAULT 0,
    backoff_until BIGINT,
    last_error TEXT,
    lease_owner TEXT,
    lease_until BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- One live account per Instagram user, app and end user (CONTRACT §3).
CREATE UNIQUE INDEX accounts_identity ON accounts (app_id, end_user, ig_user_id) WHERE status <> 'revoked';
CREATE INDEX accounts_due ON accounts (next_refresh_at) WHERE status = 'active';
CREATE INDEX accounts_by_app ON accounts (app_id, status, id);
CREATE INDEX accounts_by_end_user ON accounts (end_user, id);
CREATE INDEX accounts_by_status ON accounts (status, id);

CREATE TABLE connect_sessions (
    id TEXT PRIMARY KEY,
    app_id TEXT NOT NULL REFERENCES apps(id),
    end_user TEXT NOT NULL,
    scopes TEXT NOT NULL,
    return_url TEXT,
    account_id TEXT,
    state_hash TEXT NOT NULL UNIQUE,
    -- Sealed: /connect/{id} must send the state again; lookups use the hash.
    state_enc BYTEA NOT NULL,
    status TEXT NOT NULL,
    code_hash TEXT,
    result_account_id TEXT,
    error TEXT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    completed_at BIGINT
);

CREATE TABLE audit_log (
    seq BIGSERIAL PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    account_id TEXT,
    app_id TEXT,
    detail TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX audit_by_account ON audit_log (account_id, seq);

-- The chain head: updating it first serialises appends across processes and replicas.
CREATE TABLE audit_head (
    id BIGINT PRIMARY KEY,
    seq BIGINT NOT NULL,
    hash TEXT NOT NULL
);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');
