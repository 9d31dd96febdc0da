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

-- +goose Down
ALTER TABLE conversations DROP COLUMN last_closed_at, DROP COLUMN first_responder;
