-- +goose Up
-- The outbox takes the shape every service's has (platform/outbox), so
-- the one relay publishes it: the columns are named as everywhere else,
-- and each row says its ce-type (every event written so far is a
-- DeliveryEvent, dead letters included).
ALTER TABLE outbox RENAME COLUMN event_id TO id;
ALTER TABLE outbox RENAME COLUMN occurred_at TO created_at;
ALTER TABLE outbox RENAME COLUMN published_at TO sent_at;
ALTER TABLE outbox RENAME CONSTRAINT outbox_event_id_key TO outbox_id_key;
ALTER TABLE outbox ADD COLUMN type text NOT NULL DEFAULT 'sidekick.support.v1.DeliveryEvent';
ALTER TABLE outbox ALTER COLUMN type DROP DEFAULT;
ALTER INDEX outbox_unpublished RENAME TO outbox_pending;
ALTER INDEX outbox_published RENAME TO outbox_sent_at;

-- +goose Down
ALTER INDEX outbox_sent_at RENAME TO outbox_published;
ALTER INDEX outbox_pending RENAME TO outbox_unpublished;
ALTER TABLE outbox DROP COLUMN type;
ALTER TABLE outbox RENAME CONSTRAINT outbox_id_key TO outbox_event_id_key;
ALTER TABLE outbox RENAME COLUMN sent_at TO published_at;
ALTER TABLE outbox RENAME COLUMN created_at TO occurred_at;
ALTER TABLE outbox RENAME COLUMN id TO event_id;
