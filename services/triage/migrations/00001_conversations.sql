-- +goose Up

-- Inbound message ids already handled. The row is written in the same
-- transaction as the message's effect, so a redelivery (JetStream, or a
-- channel that redelivers days later) changes nothing.
CREATE TABLE inbox (
    message_id   text PRIMARY KEY,
    subject      text NOT NULL DEFAULT '',
    handled_at   timestamptz NOT NULL
);

CREATE INDEX inbox_handled_at ON inbox (handled_at);

-- The customer directory behind tiers, imported with
-- CustomerService.UpsertCustomers.
CREATE TABLE customers (
    id                     text PRIMARY KEY,
    name                   text NOT NULL DEFAULT '',
    organisation           text NOT NULL DEFAULT '',
    plan                   text NOT NULL DEFAULT '',
    monthly_revenue_cents  bigint NOT NULL DEFAULT 0 CHECK (monthly_revenue_cents >= 0),
    in_sales_process       boolean NOT NULL DEFAULT false,
    created_at             timestamptz NOT NULL,
    updated_at             timestamptz NOT NULL
);

-- How a message author is recognised as a customer: an email domain, a
-- Slack user id, a GitHub login or a Sentry user. One identity belongs to
-- one customer; matching ignores case.
CREATE TABLE customer_identities (
    kind         text NOT NULL CHECK (kind IN ('email_domain', 'slack', 'github', 'sentry')),
    value        text NOT NULL,
    customer_id  text NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    position     integer NOT NULL DEFAULT 0
);

CREATE UNIQUE INDEX customer_identities_key ON customer_identities (kind, lower(value));
CREATE INDEX customer_identities_customer ON customer_identities (customer_id);

-- One tracked conversation per (channel, thread_key).
CREATE TABLE conversations (
    id                        text PRIMARY KEY,
    channel                   smallint NOT NULL,
    thread_key                text NOT NULL,
    status                    smallint NOT NULL,
    close_reason              smallint NOT NULL DEFAULT 0,
    tier                      smallint NOT NULL,
    tier_reason               text NOT NULL DEFAULT '',
    categories                text[] NOT NULL DEFAULT '{}',
    tags                      text[] NOT NULL DEFAULT '{}',
    subject                   text NOT NULL DEFAULT '',
    customer_id               text REFERENCES customers (id) ON DELETE SET NULL,
    -- The author who opened it (protobuf sidekick.support.v1.Author as
    -- JSON), used to match the customer again when the directory changes.
    author                    jsonb NOT NULL DEFAULT '{}',
    assignee                  text NOT NULL DEFAULT '',
    team                      text NOT NULL DEFAULT '',
    opened_at                 timestamptz NOT NULL,
    first_response_at         timestamptz,
    last_customer_message_at  timestamptz,
    -- Deadlines are computed by a later part of triage; null until then.
    next_deadline_at          timestamptz,
    deadline_level            smallint NOT NULL DEFAULT 0,
    message_count             integer NOT NULL DEFAULT 0,
    permalink                 text NOT NULL DEFAULT '',
    updated_at                timestamptz NOT NULL,
    UNIQUE (channel, thread_key)
);

CREATE INDEX conversations_queue ON conversations (tier, next_deadline_at, opened_at) WHERE status <> 3;
CREATE INDEX conversations_assignee ON conversations (assignee) WHERE assignee <> '';
CREATE INDEX conversations_tags ON conversations USING gin (tags);
CREATE INDEX conversations_categories ON conversations USING gin (categories);
CREATE INDEX conversations_customer ON conversations (customer_id);

-- Every inbound message, attached to its conversation when there is one
-- (automated and bot messages, and staff messages in a thread no customer
-- opened, are recorded without).
CREATE TABLE messages (
    seq              bigserial PRIMARY KEY,
    id               text NOT NULL UNIQUE,
    conversation_id  text REFERENCES conversations (id) ON DELETE CASCADE,
    channel          smallint NOT NULL,
    thread_key       text NOT NULL,
    source_id        text NOT NULL DEFAULT '',
    kind             smallint NOT NULL,
    author_role      smallint NOT NULL,
    -- The message as last known (protobuf sidekick.support.v1.InboundMessage).
    body             bytea NOT NULL,
    received_at      timestamptz NOT NULL,
    edited_at        timestamptz,
    deleted_at       timestamptz
);

CREATE INDEX messages_conversation ON messages (conversation_id, seq);
CREATE INDEX messages_thread ON messages (channel, thread_key, source_id);

-- Private notes staff write on a conversation.
CREATE TABLE notes (
    id               text PRIMARY KEY,
    conversation_id  text NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    author           text NOT NULL,
    text             text NOT NULL,
    handoff          boolean NOT NULL DEFAULT false,
    created_at       timestamptz NOT NULL
);

CREATE INDEX notes_conversation ON notes (conversation_id, created_at);

-- Who did what to a conversation.
CREATE TABLE audit (
    seq              bigserial PRIMARY KEY,
    conversation_id  text NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    actor            text NOT NULL,
    action           text NOT NULL,
    detail           text NOT NULL DEFAULT '',
    at               timestamptz NOT NULL
);

CREATE INDEX audit_conversation ON audit (conversation_id, seq);

-- Transactional outbox: events written with the change that caused them,
-- published in seq order by the relay, marked sent after JetStream's ack.
CREATE TABLE outbox (
    seq         bigserial PRIMARY KEY,
    id          text NOT NULL UNIQUE,
    subject     text NOT NULL,
    type        text NOT NULL,
    payload     bytea NOT NULL,
    created_at  timestamptz NOT NULL,
    sent_at     timestamptz
);

CREATE INDEX outbox_pending ON outbox (seq) WHERE sent_at IS NULL;
CREATE INDEX outbox_sent_at ON outbox (sent_at) WHERE sent_at IS NOT NULL;

-- +goose Down
DROP TABLE outbox;
DROP TABLE audit;
DROP TABLE notes;
DROP TABLE messages;
DROP TABLE conversations;
DROP TABLE customer_identities;
DROP TABLE customers;
DROP TABLE inbox;
