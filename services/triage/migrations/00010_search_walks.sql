-- +goose Up

-- Search walks the newest conversations (by opened_at) and notes (by
-- created_at) for a word found in many of them, testing each one's
-- tsvector until it has its 250 newest matches (store.Search). From the
-- table each step of the walk is a random read of a whole row (875
-- bytes a conversation on average, updated rows anywhere in the table):
-- for "timeout" over a million conversations, 5,200 rows, 7 ms on an
-- idle machine and up to 224 ms at a load of 12-19, the largest part of
-- the slow searches (docs/performance.md). These indexes hold the key
-- with the id and tsvector each walk returns, so the walk reads the
-- index alone (index-only, where the visibility map allows) in the
-- order it wants. They replace the plain indexes on the same key.
CREATE INDEX conversations_opened_search ON conversations (opened_at) INCLUDE (id, search);
DROP INDEX conversations_opened;
CREATE INDEX notes_created_search ON notes (created_at) INCLUDE (conversation_id, id, search);
DROP INDEX notes_created;

-- +goose Down
CREATE INDEX notes_created ON notes (created_at);
DROP INDEX notes_created_search;
CREATE INDEX conversations_opened ON conversations (opened_at);
DROP INDEX conversations_opened_search;
