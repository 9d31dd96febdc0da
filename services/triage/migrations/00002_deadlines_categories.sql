-- +goose Up

-- The response clock and the classification of each conversation.
ALTER TABLE conversations
    -- The first-response clock (worktime.Clock as JSON): the spans during
    -- which a customer waited for staff.
    ADD COLUMN clock                        jsonb NOT NULL DEFAULT '{}',
    -- Covered working time from the opening to the first staff reply, and
    -- the level of the guideline it reached (sidekick.support.v1.DeadlineLevel);
    -- null and 0 until the first response.
    ADD COLUMN first_response_work_seconds  double precision,
    ADD COLUMN first_response_level         smallint NOT NULL DEFAULT 0,
    -- What the classifier suggested last, with its confidence and source
    -- ("rules", "model", "weak-rules", "default", "spam").
    ADD COLUMN suggested_categories         text[] NOT NULL DEFAULT '{}',
    ADD COLUMN suggestion_confidence        double precision NOT NULL DEFAULT 0,
    ADD COLUMN suggestion_source            text NOT NULL DEFAULT '',
    -- True once a person set or confirmed the categories: suggestions no
    -- longer replace them.
    ADD COLUMN categories_confirmed         boolean NOT NULL DEFAULT false,
    -- What the classifier reads (classify.Input as JSON): the opening
    -- message's channel facts and the customer's text so far.
    ADD COLUMN classify_input               jsonb NOT NULL DEFAULT '{}',
    -- What the model learned from this conversation, so that a correction
    -- unlearns exactly that.
    ADD COLUMN learned_input                jsonb,
    ADD COLUMN learned_categories           text[] NOT NULL DEFAULT '{}';

CREATE INDEX conversations_opened ON conversations (opened_at);

-- One deadline timer per conversation: due when its response clock
-- reaches the next threshold (or when its deadline must be recomputed).
-- Replicas claim due rows with FOR UPDATE SKIP LOCKED and re-arm or idle
-- them in the transaction that writes the deadline event to the outbox.
CREATE TABLE timers (
    conversation_id  text PRIMARY KEY REFERENCES conversations (id) ON DELETE CASCADE,
    -- 1 armed, 2 idle (clock stopped or breached).
    status           smallint NOT NULL,
    due_at           timestamptz NOT NULL,
    armed_at         timestamptz NOT NULL,
    fired_at         timestamptz,
    fires            integer NOT NULL DEFAULT 0
);

CREATE INDEX timers_due ON timers (due_at) WHERE status = 1;

-- The learned category model (classify.Model as JSON), shared by every
-- replica; version increases with each change.
CREATE TABLE classifier_model (
    id          smallint PRIMARY KEY CHECK (id = 1),
    version     bigint NOT NULL,
    docs        integer NOT NULL,
    model       jsonb NOT NULL,
    updated_at  timestamptz NOT NULL
);

-- Hero handoffs already summarised, one per rotation and instant.
CREATE TABLE handoffs (
    rotation_id    text NOT NULL,
    at             timestamptz NOT NULL,
    from_person    text NOT NULL DEFAULT '',
    to_person      text NOT NULL DEFAULT '',
    open_count     integer NOT NULL DEFAULT 0,
    missing_count  integer NOT NULL DEFAULT 0,
    event_id       text NOT NULL DEFAULT '',
    created_at     timestamptz NOT NULL,
    PRIMARY KEY (rotation_id, at)
);

-- +goose Down
DROP TABLE handoffs;
DROP TABLE classifier_model;
DROP TABLE timers;
DROP INDEX conversations_opened;
ALTER TABLE conversations
    DROP COLUMN clock,
    DROP COLUMN first_response_work_seconds,
    DROP COLUMN first_response_level,
    DROP COLUMN suggested_categories,
    DROP COLUMN suggestion_confidence,
    DROP COLUMN suggestion_source,
    DROP COLUMN categories_confirmed,
    DROP COLUMN classify_input,
    DROP COLUMN learned_input,
    DROP COLUMN learned_categories;
