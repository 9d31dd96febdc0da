-- +goose Up

-- The console's lists other than the open queue, in the queue's order
-- (tier, deadline, age): closed conversations and all of them. Without
-- it a page of 50 sorted the whole history (3.6–3.8 s at a
-- million conversations; docs/performance.md).
CREATE INDEX conversations_list ON conversations (tier, next_deadline_at, opened_at, id);

-- The console's Breached view: open conversations past their deadline
-- pile up over the years (every forgotten one is breached), and the
-- planner, taking status and level as independent, expected a few dozen
-- and sorted thousands (0.2 s at a million conversations).
CREATE INDEX conversations_breached ON conversations (tier, next_deadline_at, opened_at, id) WHERE status <> 3 AND deadline_level = 4;

-- +goose Down
DROP INDEX conversations_breached;
DROP INDEX conversations_list;
