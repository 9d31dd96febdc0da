-- +goose Up

-- A burst is one chat message (Slack) that lists the pings of many
-- conversations to one recipient: the first ping of a burst posts it, the
-- pings that follow within the burst window are added to it by rewriting
-- it (chat.update), at most once per update interval, instead of posting
-- one message each. The deliveries it lists point at it (burst_id); a
-- rewrite always renders every member from these rows, so repeating one
-- after a crash changes nothing.
CREATE TABLE bursts (
    id               text PRIMARY KEY DEFAULT gen_random_uuid()::text,
    -- The channel and recipient the burst is for: "slack|person:alice".
    burst_key        text NOT NULL,
    channel          text NOT NULL,
    -- open: takes new members until opened_at + the burst window;
    -- closed: takes none (the window passed, or the message can no longer
    -- be edited), though it is still rewritten when a member is
    -- acknowledged or answered.
    status           text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'closed')),
    opened_at        timestamptz NOT NULL,
    -- Slack "channel/ts" once the message is posted; '' before.
    receipt          text NOT NULL DEFAULT '',
    -- Held by the sender posting or rewriting it until then; NULL when
    -- free. A sender that died leaves it to expire: the next one looks the
    -- message up before posting again.
    lease_until      timestamptz,
    -- When the message was last posted or rewritten, and how many members
    -- it listed then.
    sent_at          timestamptz,
    listed           integer NOT NULL DEFAULT 0,
    -- A member was acknowledged or answered since the last rewrite.
    dirty            boolean NOT NULL DEFAULT false,
    updated_at       timestamptz NOT NULL
);

CREATE UNIQUE INDEX bursts_open ON bursts (burst_key) WHERE status = 'open';
CREATE INDEX bursts_leased ON bursts (lease_until) WHERE lease_until IS NOT NULL;
CREATE INDEX bursts_dirty ON bursts (burst_key) WHERE dirty;
CREATE INDEX bursts_opened ON bursts (opened_at);

-- burst_key is set on deliveries that may be coalesced into a burst (a
-- conversation's ping through a channel that can rewrite its messages);
-- they are sent by their burst, never one by one. burst_id is the burst
-- that lists them.
ALTER TABLE deliveries ADD COLUMN burst_key text NOT NULL DEFAULT '';
ALTER TABLE deliveries ADD COLUMN burst_id text REFERENCES bursts (id) ON DELETE SET NULL;
CREATE INDEX deliveries_burst_due ON deliveries (burst_key, next_attempt_at)
    WHERE burst_key <> '' AND status IN ('pending', 'sending');
CREATE INDEX deliveries_burst ON deliveries (burst_id, created_at) WHERE burst_id IS NOT NULL;

-- +goose Down
DROP INDEX deliveries_burst;
DROP INDEX deliveries_burst_due;
ALTER TABLE deliveries DROP COLUMN burst_id;
ALTER TABLE deliveries DROP COLUMN burst_key;
DROP TABLE bursts;
