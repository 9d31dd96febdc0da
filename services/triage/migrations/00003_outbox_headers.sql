-- +goose Up
-- The outbox takes the shape every service's has (platform/outbox): extra
-- NATS headers ride with each event (dead-letter headers, trace context).
ALTER TABLE outbox ADD COLUMN headers jsonb NOT NULL DEFAULT '{}';

-- +goose Down
ALTER TABLE outbox DROP COLUMN headers;
