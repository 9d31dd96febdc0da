-- +goose Up

-- An escalation policy's ack_timeout: how long an acknowledged
-- conversation may go without a staff reply before it escalates again
-- (PagerDuty's acknowledgement timeout). ack_timeout_ms is the policy's
-- setting, copied when the escalation starts (0: none); the
-- acknowledgement sets ack_due_at, and the runner re-escalates an acked
-- escalation whose ack_due_at has passed once, clearing it. A staff reply
-- or a close stops the escalation first ('stopped'), so it never comes.
ALTER TABLE escalations ADD COLUMN ack_timeout_ms bigint NOT NULL DEFAULT 0;
ALTER TABLE escalations ADD COLUMN ack_due_at timestamptz;

CREATE INDEX escalations_ack_due ON escalations (ack_due_at) WHERE status = 'acked' AND ack_due_at IS NOT NULL;

-- +goose Down
DROP INDEX escalations_ack_due;
ALTER TABLE escalations DROP COLUMN ack_due_at;
ALTER TABLE escalations DROP COLUMN ack_timeout_ms;
