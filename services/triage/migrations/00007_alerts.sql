-- +goose Up

-- An alert conversation (a Sentry issue) keeps what it counts here
-- (protobuf sidekick.support.v1.Alert as JSON: occurrences, first and
-- last seen, level, project, acknowledgement); null for a customer's
-- conversation.
ALTER TABLE conversations ADD COLUMN alert jsonb;

-- Which alerts a conversation refers to, by the alert's thread key (a
-- Sentry issue link in a message or note gives "sentry:<issue id>"),
-- whether or not the alert exists yet: the link shows on both sides once
-- it does. (No foreign key: the reference is written in the transaction
-- that opens the conversation, before its row is.)
CREATE TABLE alert_references (
    thread_key       text NOT NULL,
    conversation_id  text NOT NULL,
    created_at       timestamptz NOT NULL,
    PRIMARY KEY (thread_key, conversation_id)
);

CREATE INDEX alert_references_conversation ON alert_references (conversation_id);

-- +goose Down
DROP TABLE alert_references;
ALTER TABLE conversations DROP COLUMN alert;
