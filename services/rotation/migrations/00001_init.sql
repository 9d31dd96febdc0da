-- +goose Up
-- The organisation configuration as applied (config as code); one row per
-- apply, the newest is in force.
CREATE TABLE config_versions (
    version     bigserial PRIMARY KEY,
    yaml        text        NOT NULL,
    digest      text        NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now(),
    applied_by  text        NOT NULL DEFAULT ''
);

-- Overrides created through the API (CreateOverride, SwapShifts), on top of
-- the ones in the configuration file.
CREATE TABLE overrides (
    id          text        PRIMARY KEY,
    rotation_id text        NOT NULL,
    kind        text        NOT NULL CHECK (kind IN ('replace', 'add', 'remove')),
    person_id   text        NOT NULL DEFAULT '',
    with_person text        NOT NULL DEFAULT '',
    starts_at   timestamptz NOT NULL,
    ends_at     timestamptz NOT NULL CHECK (ends_at > starts_at),
    swap_id     text        NOT NULL DEFAULT '',
    note        text        NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX overrides_rotation_range ON overrides (rotation_id, starts_at, ends_at);

-- +goose Down
DROP TABLE overrides;
DROP TABLE config_versions;
