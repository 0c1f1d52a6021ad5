-- Relaying Instagram's webhooks to the owning service: a per-app switch and the verify token
-- Meta sends back when it verifies the callback URL (sealed like the app's other secrets).
ALTER TABLE apps ADD COLUMN relay_instagram_webhooks BIGINT NOT NULL DEFAULT 0;
ALTER TABLE apps ADD COLUMN webhook_verify_token_enc BLOB;

-- Each relayed entry is looked up by the Instagram account it names.
CREATE INDEX accounts_by_ig_user ON accounts (app_id, ig_user_id) WHERE status <> 'revoked';
