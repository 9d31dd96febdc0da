-- +goose Up

-- The latest update of a storm group (a Sentry issue's new events) that
-- was handled before the group's first escalation was recorded: the events
-- of one conversation are handled concurrently, so an issue's first MESSAGE
-- can be handled while its OPENED is still starting the escalation. The
-- escalation takes the update over when it starts.
CREATE TABLE group_updates (
    group_key   text PRIMARY KEY,
    text        text NOT NULL,
    event_at    timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL
);

CREATE INDEX group_updates_updated ON group_updates (updated_at);

-- +goose Down
DROP TABLE group_updates;
