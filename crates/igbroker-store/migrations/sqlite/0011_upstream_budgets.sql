-- What Instagram last reported of an app's or an account's rate-limit budget, shared by
-- every replica: the share used, and a hold after a throttling error until the time
-- Instagram said access returns. scope is 'app:{app_id}' or 'account:{account_id}'.
CREATE TABLE upstream_budgets (
    scope       TEXT PRIMARY KEY,
    used_pct    BIGINT NOT NULL,
    regain_at   BIGINT,
    held_until  BIGINT,
    hold_code   BIGINT,
    updated_at  BIGINT NOT NULL
);
