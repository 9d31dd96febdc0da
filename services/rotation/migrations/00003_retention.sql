-- +goose Up

-- Indexes for the retention pruner (internal/store/retention.go).
CREATE INDEX overrides_ended ON overrides (ends_at) WHERE announced;
CREATE INDEX config_versions_applied ON config_versions (applied_at);

-- +goose Down
DROP INDEX config_versions_applied;
DROP INDEX overrides_ended;
