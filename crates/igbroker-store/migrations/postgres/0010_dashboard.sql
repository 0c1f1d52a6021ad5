-- Dashboard sign-ins, shared by every replica: only the SHA-256 of the cookie
-- (or of a one-time sign-in link) is kept. `kind` is 'session' or 'link'.
CREATE TABLE ui_sessions (
    id_hash TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    actor TEXT NOT NULL,
    -- The admin API key that signed in, when one did: revoking it ends the session.
    api_key_id TEXT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX ui_sessions_by_expiry ON ui_sessions (expires_at);

-- The dashboard's username search walks this index from the typed prefix.
CREATE INDEX accounts_by_username ON accounts (username, id);
-- The overview's "expiring this week" counts a range of this index.
CREATE INDEX accounts_by_expiry ON accounts (status, expires_at);
-- The overview's refresh outcomes and usage count one action over a time range.
CREATE INDEX audit_by_action ON audit_log (action, at);
