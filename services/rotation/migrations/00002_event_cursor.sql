-- +goose Up
-- How far schedule events (shift started/ended, override created, coverage
-- gap ahead) have been published; one row, locked by the replica that
-- publishes, so replicas never publish the same window twice.
CREATE TABLE event_cursor (
    name       text        PRIMARY KEY,
    checked_to timestamptz NOT NULL
);

-- Overrides not yet announced on support.rotation.override_created: an
-- outbox, so each is announced once whatever the clocks say.
ALTER TABLE overrides ADD COLUMN announced boolean NOT NULL DEFAULT false;
CREATE INDEX overrides_unannounced ON overrides (created_at) WHERE NOT announced;

-- +goose Down
ALTER TABLE overrides DROP COLUMN announced;
DROP TABLE event_cursor;
