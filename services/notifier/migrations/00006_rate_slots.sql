-- +goose Up

-- rate_at is when a ping took its place in its recipient's rate limit
-- (SIDEKICK_NOTIFIER_RATE_LIMIT per window), taken under a per-recipient
-- lock before the send: counting only what was delivered let every worker
-- that checked at once through (23 pings through a limit of 20). A send
-- that fails gives its place back.
ALTER TABLE deliveries ADD COLUMN rate_at timestamptz;

UPDATE deliveries SET rate_at = delivered_at
WHERE status = 'delivered' AND delivered_at > now() - interval '1 day';

CREATE INDEX deliveries_rate ON deliveries (channel, person_id, slack_channel, rate_at) WHERE rate_at IS NOT NULL;

-- +goose Down
DROP INDEX deliveries_rate;
ALTER TABLE deliveries DROP COLUMN rate_at;
