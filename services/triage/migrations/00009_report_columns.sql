-- +goose Up

-- What the report needs of a conversation's audit trail, on its row: who
-- wrote the first response (the actor of the first 'responded' line
-- whose detail is 'first response') and when it was last closed (the
-- latest 'closed' line). The engine writes both in the transaction that
-- writes those lines (store.WriteReportFacts), so the 90-day report reads
-- rows instead of every conversation's audit trail (10.6 s at a million
-- conversations; docs/performance.md). Existing rows are filled from
-- their audit trails here.
ALTER TABLE conversations
    ADD COLUMN first_responder text,
    ADD COLUMN last_closed_at timestamptz;

UPDATE conversations c SET first_responder = a.responder, last_closed_at = a.last_closed
FROM (
    SELECT conversation_id,
        (array_agg(actor ORDER BY seq) FILTER (WHERE action = 'responded' AND detail = 'first response'))[1] AS responder,
        max(at) FILTER (WHERE action = 'closed') AS last_closed
    FROM audit WHERE action IN ('responded', 'closed')
    GROUP BY conversation_id
) a
WHERE c.id = a.conversation_id AND (a.responder IS NOT NULL OR a.last_closed IS NOT NULL);

-- The report's passes over a range read these indexes alone (index-only
-- scans), not the table: the rows of 90 days lie anywhere in it once
-- updated (the backfill above moves every row), and reading them from
-- the table took 2-3 s a pass at a million conversations. Customer
-- conversations with every column the report groups and measures by;
-- alerts by when they opened; the conversations whose categories a
-- person confirmed, for the classifier's agreement.
CREATE INDEX conversations_report ON conversations (opened_at)
    INCLUDE (channel, tier, categories, assignee, status, close_reason, deadline_level,
        first_response_work_seconds, first_response_level, first_responder, last_closed_at)
    WHERE alert IS NULL;
CREATE INDEX conversations_alerts_opened ON conversations (opened_at) WHERE alert IS NOT NULL;
CREATE INDEX conversations_confirmed ON conversations (opened_at) INCLUDE (suggested_categories, categories)
    WHERE categories_confirmed;

-- Search's newest notes first (store.Search walks them newest first for a
-- common word, as it walks messages by seq and conversations by
-- opened_at).
CREATE INDEX notes_created ON notes (created_at);

-- +goose Down
DROP INDEX notes_created;
DROP INDEX conversations_confirmed;
DROP INDEX conversations_alerts_opened;
DROP INDEX conversations_report;
ALTER TABLE conversations DROP COLUMN last_closed_at, DROP COLUMN first_responder;
