-- +goose Up

-- One notification per idempotency key: a conversation event that asks for
-- people to be told, or a Notify call.
CREATE TABLE notifications (
    id               text PRIMARY KEY DEFAULT gen_random_uuid()::text,
    idempotency_key  text NOT NULL UNIQUE,
    -- "conversation" for notifications made from conversation events, "grpc"
    -- for NotifierService.Notify.
    origin           text NOT NULL,
    urgency          smallint NOT NULL,
    title            text NOT NULL,
    body             text NOT NULL,
    links            jsonb NOT NULL DEFAULT '[]',
    conversation_id  text NOT NULL DEFAULT '',
    created_at       timestamptz NOT NULL,
    acknowledged_at  timestamptz,
    acknowledged_by  text NOT NULL DEFAULT '',
    -- Set when the conversation was answered or closed: no more deliveries.
    stopped_at       timestamptz,
    stop_reason      text NOT NULL DEFAULT ''
);

CREATE INDEX notifications_conversation ON notifications (conversation_id) WHERE conversation_id <> '';

-- One row per (notification, recipient, step): recorded before anything is
-- sent, so a redelivered event or a restart never sends twice and never
-- forgets a send it had promised.
CREATE TABLE deliveries (
    id               text PRIMARY KEY DEFAULT gen_random_uuid()::text,
    notification_id  text NOT NULL REFERENCES notifications (id) ON DELETE CASCADE,
    dedup_key        text NOT NULL UNIQUE,
    step             integer NOT NULL DEFAULT 0,
    -- Snapshot of the recipient as resolved when the delivery was recorded.
    person_id        text NOT NULL DEFAULT '',
    person_name      text NOT NULL DEFAULT '',
    person_email     text NOT NULL DEFAULT '',
    person_slack_id  text NOT NULL DEFAULT '',
    slack_channel    text NOT NULL DEFAULT '',
    -- Why this person, e.g. "Support Hero".
    role_label       text NOT NULL DEFAULT '',
    channel          text NOT NULL,
    -- pending: to send (at next_attempt_at); sending: claimed until
    -- lease_until; delivered; failed (for good); cancelled.
    status           text NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'sending', 'delivered', 'failed', 'cancelled')),
    attempts         integer NOT NULL DEFAULT 0,
    last_error       text NOT NULL DEFAULT '',
    -- Channel receipt, e.g. Slack "channel/ts", for later updates.
    receipt          text NOT NULL DEFAULT '',
    next_attempt_at  timestamptz NOT NULL,
    lease_until      timestamptz,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    delivered_at     timestamptz
);

CREATE INDEX deliveries_notification ON deliveries (notification_id);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status IN ('pending', 'sending');

-- Conversations answered or closed, so an OPENED event handled late (after
-- a retry) does not notify anyone about a conversation already dealt with.
CREATE TABLE conversation_stops (
    conversation_id  text PRIMARY KEY,
    reason           text NOT NULL,
    occurred_at      timestamptz NOT NULL
);

-- Transactional outbox for support.notify.* events: written in the same
-- transaction as the state change, published by the relay.
CREATE TABLE outbox (
    seq           bigserial PRIMARY KEY,
    event_id      text NOT NULL UNIQUE,
    subject       text NOT NULL,
    payload       bytea NOT NULL,
    occurred_at   timestamptz NOT NULL,
    published_at  timestamptz
);

CREATE INDEX outbox_unpublished ON outbox (seq) WHERE published_at IS NULL;

-- +goose Down
DROP TABLE outbox;
DROP TABLE conversation_stops;
DROP TABLE deliveries;
DROP TABLE notifications;
