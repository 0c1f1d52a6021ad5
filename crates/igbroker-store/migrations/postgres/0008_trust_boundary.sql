-- A key's own request rate per second (NULL: the configured [limits] default).
ALTER TABLE api_keys ADD COLUMN rate_limit_per_second BIGINT;

-- The browser that opened a connect link: the SHA-256 of the cookie it was given. The
-- callback completes the session only for a browser that presents that cookie.
ALTER TABLE connect_sessions ADD COLUMN browser_hash TEXT;
