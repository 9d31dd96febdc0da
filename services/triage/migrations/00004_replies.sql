-- +goose Up

-- What Sidekick sent out: replies to customers and the posts of the
-- support-channel mirror, one row per OutboundMessage (its id is the
-- idempotency key of the send). The row is written in the transaction that
-- stores the staff message and the outbox row that publishes the request;
-- receipts move its state.
CREATE TABLE outbound (
    id               text PRIMARY KEY,
    conversation_id  text NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    -- sidekick.support.v1.OutboundKind: 1 reply, 2 mirror header, 3 mirror
    -- copy, 4 mirror update.
    kind             smallint NOT NULL,
    -- The staff message (messages.id) a reply is; empty for mirror posts.
    message_id       text NOT NULL DEFAULT '',
    channel          smallint NOT NULL,
    -- sidekick.triage.v1.DeliveryState (1 sending, 2 sent, 3 failed), or 0
    -- for a mirror copy waiting for its header to be posted.
    state            smallint NOT NULL,
    -- The retry generation last requested; receipts of older ones are stale.
    retry            integer NOT NULL DEFAULT 0,
    provider_id      text NOT NULL DEFAULT '',
    permalink        text NOT NULL DEFAULT '',
    reason           text NOT NULL DEFAULT '',
    permanent        boolean NOT NULL DEFAULT false,
    -- The OutboundMessage as first requested (protobuf); a retry sends it
    -- again with the next retry number.
    request          bytea NOT NULL,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL
);

CREATE INDEX outbound_conversation ON outbound (conversation_id, created_at);
CREATE INDEX outbound_waiting ON outbound (conversation_id) WHERE state = 0;

-- Thread keys that lead to a conversation besides its own: the Message-ID
-- of an email reply we sent ("email:<id>"; a customer's answer may name
-- only it, in In-Reply-To) and the conversation's thread in the support
-- channel ("mirror:<channel>/<ts>").
CREATE TABLE thread_aliases (
    alias            text PRIMARY KEY,
    conversation_id  text NOT NULL REFERENCES conversations (id) ON DELETE CASCADE
);

CREATE INDEX thread_aliases_conversation ON thread_aliases (conversation_id);

-- A conversation's mirror in the support channel: its header message (the
-- outbound id of its post, and its ts once the receipt came) and what the
-- header shows, so that it is rewritten only when that changes.
CREATE TABLE mirrors (
    conversation_id  text PRIMARY KEY REFERENCES conversations (id) ON DELETE CASCADE,
    channel          text NOT NULL,
    header_id        text NOT NULL,
    ts               text NOT NULL DEFAULT '',
    shown            text NOT NULL DEFAULT ''
);

-- +goose Down
DROP TABLE mirrors;
DROP TABLE thread_aliases;
DROP TABLE outbound;
