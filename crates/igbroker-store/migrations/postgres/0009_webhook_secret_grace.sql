-- A rotated webhook secret keeps signing deliveries beside the new one until
-- previous_webhook_secret_until, so the owning service can switch secrets without a gap.
ALTER TABLE apps ADD COLUMN previous_webhook_secret_enc BYTEA;
ALTER TABLE apps ADD COLUMN previous_webhook_secret_until BIGINT;
