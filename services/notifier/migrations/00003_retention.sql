-- +goose Up

-- Indexes for the retention pruner (internal/store/retention.go): each
-- DELETE finds its oldest candidates without a scan of the table.
CREATE INDEX outbox_published ON outbox (published_at) WHERE published_at IS NOT NULL;
CREATE INDEX notifications_created ON notifications (created_at);
CREATE INDEX escalations_closed ON escalations (updated_at) WHERE status IN ('acked', 'stopped');
CREATE INDEX digest_items_finished ON digest_items (added_at) WHERE notification_id IS NOT NULL OR dropped;
CREATE INDEX hero_shifts_start ON hero_shifts (start_at);
CREATE INDEX conversation_stops_occurred ON conversation_stops (occurred_at);
CREATE INDEX conversation_deadlines_updated ON conversation_deadlines (updated_at);

-- +goose Down
DROP INDEX conversation_deadlines_updated;
DROP INDEX conversation_stops_occurred;
DROP INDEX hero_shifts_start;
DROP INDEX digest_items_finished;
DROP INDEX escalations_closed;
DROP INDEX notifications_created;
DROP INDEX outbox_published;
