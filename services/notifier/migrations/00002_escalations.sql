-- +goose Up

-- One escalation per triggering event (a conversation opened, a deadline
-- passed, an explicit escalation, a handoff, a coverage gap): a policy's
-- steps fired one after the other by the timer loop. Firing a step records
-- its notification and deliveries and advances next_step in one
-- transaction, so a crash re-fires nothing and skips nothing.
CREATE TABLE escalations (
    id               text PRIMARY KEY DEFAULT gen_random_uuid()::text,
    -- Idempotency: the triggering event, e.g. "conversation.opened/<id>".
    key              text NOT NULL UNIQUE,
    -- Storm protection: at most one open escalation per group, e.g.
    -- "sentry/<conversation>"; '' for none.
    group_key        text NOT NULL DEFAULT '',
    kind             text NOT NULL,
    policy_id        text NOT NULL,
    -- Snapshot of the policy when the escalation started: a restart with
    -- another configuration finishes what was started as it was planned.
    policy           jsonb NOT NULL,
    conversation_id  text NOT NULL DEFAULT '',
    team             text NOT NULL DEFAULT '',
    tier             text NOT NULL DEFAULT '',
    category         text NOT NULL DEFAULT '',
    -- Handoffs: the incoming hero.
    person_id        text NOT NULL DEFAULT '',
    title            text NOT NULL,
    body             text NOT NULL DEFAULT '',
    links            jsonb NOT NULL DEFAULT '[]',
    -- Steps' durations count from here.
    started_at       timestamptz NOT NULL,
    -- Position of the next step in the plan (round * steps + rule).
    next_step        integer NOT NULL DEFAULT 0,
    -- When the next step is due; NULL while it waits for a response
    -- deadline nobody knows yet.
    due_at           timestamptz,
    -- The step before reached nobody: next_step is due at due_at, sooner
    -- than planned.
    hurried          boolean NOT NULL DEFAULT false,
    -- A handoff waiting for the incoming hero's shift to start.
    held             boolean NOT NULL DEFAULT false,
    -- active: steps to fire; done: every step fired, nobody acknowledged;
    -- acked; stopped (answered, closed).
    status           text NOT NULL DEFAULT 'active'
                     CHECK (status IN ('active', 'done', 'acked', 'stopped')),
    stop_reason      text NOT NULL DEFAULT '',
    -- Storm protection: the latest update of the group, sent to the
    -- messages already delivered no more often than once per interval.
    refresh_text     text NOT NULL DEFAULT '',
    refresh_event_at timestamptz,
    refresh_due_at   timestamptz,
    refreshed_at     timestamptz,
    refreshes        integer NOT NULL DEFAULT 0,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL
);

CREATE UNIQUE INDEX escalations_open_group ON escalations (group_key)
    WHERE group_key <> '' AND status IN ('active', 'done');
CREATE INDEX escalations_due ON escalations (due_at) WHERE status = 'active';
CREATE INDEX escalations_refresh_due ON escalations (refresh_due_at) WHERE refresh_due_at IS NOT NULL;
CREATE INDEX escalations_conversation ON escalations (conversation_id) WHERE conversation_id <> '';
CREATE INDEX escalations_held ON escalations (person_id) WHERE held;

-- Each fired step is one notification.
ALTER TABLE notifications ADD COLUMN escalation_id text REFERENCES escalations (id) ON DELETE SET NULL;
ALTER TABLE notifications ADD COLUMN step integer NOT NULL DEFAULT 0;
CREATE INDEX notifications_escalation ON notifications (escalation_id) WHERE escalation_id IS NOT NULL;

-- Per-recipient rate limits count recent deliveries.
CREATE INDEX deliveries_recent ON deliveries (channel, person_id, slack_channel, delivered_at)
    WHERE status = 'delivered';

-- Response deadlines as triage reports them (next_deadline_at with the
-- level, and deadline events), for steps anchored on a deadline.
CREATE TABLE conversation_deadlines (
    conversation_id  text PRIMARY KEY,
    great            timestamptz,
    okay             timestamptz,
    too_late         timestamptz,
    updated_at       timestamptz NOT NULL
);

-- Support Hero shifts that started (support.rotation.shift_started), so a
-- handoff summary arriving after the shift began is sent at once.
CREATE TABLE hero_shifts (
    event_id   text PRIMARY KEY,
    person_id  text NOT NULL,
    start_at   timestamptz NOT NULL
);

CREATE INDEX hero_shifts_person ON hero_shifts (person_id, start_at);

-- Conversations collected for a digest instead of notified one by one.
CREATE TABLE digest_items (
    key              text PRIMARY KEY,
    policy_id        text NOT NULL,
    target           text NOT NULL,
    -- When the digest holding this item goes out.
    due_at           timestamptz NOT NULL,
    conversation_id  text NOT NULL,
    title            text NOT NULL,
    link             text NOT NULL DEFAULT '',
    added_at         timestamptz NOT NULL,
    -- Set when sent (the digest's notification) or dropped (answered or
    -- closed before the digest).
    notification_id  text,
    dropped          boolean NOT NULL DEFAULT false
);

CREATE INDEX digest_items_due ON digest_items (due_at, policy_id) WHERE notification_id IS NULL AND NOT dropped;

-- Extra headers of outbox events (dead letters carry error_location and
-- error).
ALTER TABLE outbox ADD COLUMN headers jsonb NOT NULL DEFAULT '{}';

-- +goose Down
ALTER TABLE outbox DROP COLUMN headers;
DROP TABLE digest_items;
DROP TABLE hero_shifts;
DROP TABLE conversation_deadlines;
DROP INDEX deliveries_recent;
ALTER TABLE notifications DROP COLUMN step;
ALTER TABLE notifications DROP COLUMN escalation_id;
DROP TABLE escalations;
