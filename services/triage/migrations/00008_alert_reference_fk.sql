-- +goose Up

-- A conversation's alert references go with it: a deleted conversation
-- (an operator's erasure, a retention rule) left its references behind,
-- listed on the alert as links to nothing. The transaction that opens a
-- conversation writes its row before its references (the engine's pipe
-- inserts new conversations first), so the key can be checked at once.
-- References already orphaned are deleted first. (The thread key has no
-- foreign key: a conversation may refer to an alert that does not exist
-- yet.)
DELETE FROM alert_references r
WHERE NOT EXISTS (SELECT 1 FROM conversations c WHERE c.id = r.conversation_id);

ALTER TABLE alert_references
    ADD CONSTRAINT alert_references_conversation_fk
    FOREIGN KEY (conversation_id) REFERENCES conversations (id) ON DELETE CASCADE;

-- +goose Down
ALTER TABLE alert_references DROP CONSTRAINT alert_references_conversation_fk;
