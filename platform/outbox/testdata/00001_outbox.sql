-- +goose Up
-- The outbox shape every service's migrations create (see the package
-- comment).
CREATE TABLE outbox (
    seq         bigserial PRIMARY KEY,
    id          text NOT NULL UNIQUE,
    subject     text NOT NULL,
    type        text NOT NULL,
    payload     bytea NOT NULL,
    headers     jsonb NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL,
    sent_at     timestamptz
);

CREATE INDEX outbox_pending ON outbox (seq) WHERE sent_at IS NULL;
CREATE INDEX outbox_sent_at ON outbox (sent_at) WHERE sent_at IS NOT NULL;

-- +goose Down
DROP TABLE outbox;
