-- +goose Up

-- Full-text search (ConversationService.SearchConversations): a tsvector
-- per message, note, conversation and customer, each with a GIN index.
-- English stemming, so "crashes" finds "crash"; the configuration is
-- spelled out so the generated columns are immutable.

-- A message's body is protobuf, which SQL cannot read, so triage writes
-- the words to search (subject, text, author's name and handle) beside it
-- in search_text: on insert, on edit, and empty on delete. NULL means not
-- yet filled: messages stored before this migration are filled in batches
-- by triage when it starts (store.FillSearchText).
ALTER TABLE messages
    ADD COLUMN search_text text,
    ADD COLUMN search tsvector GENERATED ALWAYS AS (to_tsvector('english'::regconfig, coalesce(search_text, ''))) STORED;
CREATE INDEX messages_search ON messages USING gin (search);
CREATE INDEX messages_search_unfilled ON messages (seq) WHERE search_text IS NULL;

ALTER TABLE notes
    ADD COLUMN search tsvector GENERATED ALWAYS AS (to_tsvector('english'::regconfig, text)) STORED;
CREATE INDEX notes_search ON notes USING gin (search);

-- The subject and the author who opened it (protojson field names).
ALTER TABLE conversations
    ADD COLUMN search tsvector GENERATED ALWAYS AS (to_tsvector('english'::regconfig,
        subject || ' ' || coalesce(author->>'name', '') || ' ' || coalesce(author->>'handle', '') || ' ' ||
        coalesce(author->>'email', '') || ' ' || coalesce(author->>'organisation', ''))) STORED;
CREATE INDEX conversations_search ON conversations USING gin (search);

ALTER TABLE customers
    ADD COLUMN search tsvector GENERATED ALWAYS AS (to_tsvector('english'::regconfig, name || ' ' || organisation)) STORED;
CREATE INDEX customers_search ON customers USING gin (search);

-- +goose Down
ALTER TABLE customers DROP COLUMN search;
ALTER TABLE conversations DROP COLUMN search;
ALTER TABLE notes DROP COLUMN search;
ALTER TABLE messages DROP COLUMN search, DROP COLUMN search_text;
